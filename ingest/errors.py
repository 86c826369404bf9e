"""Our own exceptions. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class CliniqError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class LoaderError(CliniqError):
    """A file could not be read into a Document. The ingest skips that file, not the run."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFileType(LoaderError):
    """No loader handles this file's type."""


class IndexMissingError(CliniqError):
    """No index where the settings point."""


class IndexMismatchError(CliniqError):
    """The index was built with another embedding model (or dimension)."""


class IndexBusyError(CliniqError):
    """Another ingest holds the index lock."""


class StoreUnavailableError(CliniqError):
    """The Chroma server cannot be reached."""


class IndexDamagedError(CliniqError):
    """A part of the index (manifest, BM25, vectors) cannot be read; the message names it."""


class IndexSpaceError(CliniqError):
    """The disk under the index filled up during a write."""


def out_of_space(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the disk is full."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(seen).lower()
        if "disk is full" in text or "no space left" in text or "database or disk" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
