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
