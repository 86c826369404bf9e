"""Plain text files: the first line is the title, the rest is taken as prose.

A header of `Key: value` lines at the top (an article's bibliographic record: title, authors,
date, DOI, licence, URL ...) is read into the Document's metadata and left out of its text
(`ingest.loaders.header`).
"""

from __future__ import annotations

from pathlib import Path

from ingest.loaders._common import (
    LoadResult,
    collapse_blank_lines,
    path_document_id,
    short_title,
    title_from_stem,
)
from ingest.loaders.boilerplate import strip_interface
from ingest.loaders.header import Header, split_header
from ingest.types import DocType, Document


def load_text(path: Path, text: str) -> LoadResult:
    body = collapse_blank_lines(text)
    header = split_header(body)
    if header is not None and _without_interface(header.body).strip():
        return LoadResult([_with_header(path, header)])
    body = _without_interface(body) or body
    first = next((line for line in body.split("\n") if line.strip()), "")
    doc = Document(
        id=path_document_id(path),
        title=short_title(first) if first else title_from_stem(path),
        doc_type=DocType.research,
        text=body,
        source_path=str(path),
    )
    return LoadResult([doc])


def _without_interface(text: str) -> str:
    """Sentences about the page (click, share, cookies ...) and lines of bare links dropped."""
    return "\n\n".join(kept for p in text.split("\n\n") if (kept := strip_interface(p)))


def _with_header(path: Path, header: Header) -> Document:
    title = header.title()
    return Document(
        id=path_document_id(path),
        title=short_title(title, 300) if title else title_from_stem(path),
        authors=header.authors(),
        year=header.year(),
        publication_date=header.publication_date(),
        journal=header.get("journal"),
        doi=header.doi(),
        pmid=header.pmid(),
        url=header.url_value(),
        license=header.get("license"),
        doc_type=DocType.research,
        text=_without_interface(collapse_blank_lines(header.body)),
        source_path=str(path),
    )
