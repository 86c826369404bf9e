"""Files -> Documents. One loader per format, picked by suffix; every failure is a LoaderError.

`load_file` returns the documents of a file. Formats holding many records (JSONL, JSON) skip
a bad record instead of the whole file: `load_file_result` returns those skipped parts as
`LoadResult.problems` so an ingest report can list them; `load_file` logs them as warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ingest.errors import UnsupportedFileType
from ingest.loaders._common import LoadProblem, LoadResult, decode_text, read_checked
from ingest.loaders.files import IGNORE_FILE, iter_files
from ingest.loaders.html import load_html
from ingest.loaders.jsonexport import (
    is_recommendation_export,
    load_recommendation_export,
    looks_like_export,
    parse_json,
)
from ingest.loaders.markdown import FRONT_MATTER_KEYS, load_markdown
from ingest.loaders.medquad import load_medquad_jsonl, load_medquad_xml
from ingest.loaders.pdf import load_pdf
from ingest.loaders.pubmedqa import load_pubmedqa
from ingest.loaders.text import load_text
from ingest.settings import IngestSettings
from ingest.types import Document

__all__ = [
    "FRONT_MATTER_KEYS",
    "IGNORE_FILE",
    "SUPPORTED_SUFFIXES",
    "LoadProblem",
    "LoadResult",
    "is_supported",
    "iter_files",
    "load_file",
    "load_file_result",
]

logger = logging.getLogger(__name__)

_TEXT_LOADERS: dict[str, Callable[[Path, str], LoadResult]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".xml": load_medquad_xml,
    ".jsonl": load_medquad_jsonl,
    ".json": lambda path, text: _load_json(path, text),
}


def _load_json(path: Path, text: str) -> LoadResult:
    """A guideline recommendation export (USPSTF ePSS API) or PubMedQA, told apart by shape."""
    if looks_like_export(text):
        data = parse_json(path, text)
        if is_recommendation_export(data):
            return load_recommendation_export(path, data)  # type: ignore[arg-type]
    return load_pubmedqa(path, text)


_BYTES_LOADERS: dict[str, Callable[[Path, bytes], LoadResult]] = {
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_TEXT_LOADERS) | frozenset(_BYTES_LOADERS)


def load_file_result(path: Path, settings: IngestSettings | None = None) -> LoadResult:
    """Load one file: its documents, and the records or pages skipped on the way.

    Raises UnsupportedFileType for an unknown suffix and LoaderError when nothing usable is in
    the file (empty, binary, not UTF-8, too large, malformed); the message names the file,
    the reason and what to do.
    """
    settings = settings or IngestSettings()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileType(
            path,
            f"unsupported file type {suffix or '(no suffix)'!r}; supported: "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))} (list files to skip in {IGNORE_FILE})",
        )
    data = read_checked(path, settings)
    if suffix in _BYTES_LOADERS:
        return _BYTES_LOADERS[suffix](path, data)
    return _TEXT_LOADERS[suffix](path, decode_text(path, data))


def load_file(path: Path, settings: IngestSettings | None = None) -> list[Document]:
    """Load one file into its documents (JSONL and JSON give many); see `load_file_result`."""
    result = load_file_result(path, settings)
    for problem in result.problems:
        logger.warning("skipped part of a file: %s", problem)
    return result.documents


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES
