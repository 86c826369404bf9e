"""Plain text files: the first line is the title, the rest is taken as prose."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders._common import (
    LoadResult,
    collapse_blank_lines,
    path_document_id,
    short_title,
    title_from_stem,
)
from ingest.types import DocType, Document


def load_text(path: Path, text: str) -> LoadResult:
    body = collapse_blank_lines(text)
    first = next((line for line in body.split("\n") if line.strip()), "")
    doc = Document(
        id=path_document_id(path),
        title=short_title(first) if first else title_from_stem(path),
        doc_type=DocType.research,
        text=body,
        source_path=str(path),
    )
    return LoadResult([doc])
