"""PDF files, from their text layer, with `<!-- page: N -->` markers for the chunker."""

from __future__ import annotations

import io
from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders._common import (
    LoadProblem,
    LoadResult,
    collapse_blank_lines,
    path_document_id,
    short_title,
    title_from_stem,
)
from ingest.types import DocType, Document

_OCR_HINT = "run OCR first (e.g. `ocrmypdf in.pdf out.pdf`) and ingest the result"


def load_pdf(path: Path, data: bytes) -> LoadResult:
    from pypdf import PdfReader  # imported here: only PDF ingests pay for it

    if b"%PDF-" not in data[:1024]:
        raise LoaderError(path, "not a PDF file (no %PDF- header); check the file or its suffix")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(path, "PDF is password-protected; save an unprotected copy")
        pages = list(reader.pages)
    except LoaderError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise LoaderError(path, f"broken or unreadable PDF ({_short(exc)})") from None

    result = LoadResult()
    parts: list[str] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = collapse_blank_lines(page.extract_text() or "")
        except Exception as exc:  # one damaged page should not lose the others
            reason = f"page {number} skipped: cannot extract text ({_short(exc)})"
            result.problems.append(LoadProblem(str(path), reason))
            continue
        if text.strip():
            parts.append(f"<!-- page: {number} -->\n\n{text}")
    if not pages:
        raise LoaderError(path, "PDF has no pages")
    if not parts:
        raise LoaderError(path, f"PDF has no text layer (scanned or image-only?); {_OCR_HINT}")

    first_line = next(line for part in parts for line in part.split("\n")[1:] if line.strip())
    doc = Document(
        id=path_document_id(path),
        title=_metadata_title(reader) or short_title(first_line) or title_from_stem(path),
        doc_type=DocType.research,
        text="\n\n".join(parts),
        source_path=str(path),
    )
    result.documents.append(doc)
    return result


def _metadata_title(reader: object) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None  # type: ignore[attr-defined]
    except Exception:  # a damaged info dictionary is no reason to reject the text
        return None
    if not title or not str(title).strip() or str(title).strip().lower() in {"untitled", "title"}:
        return None
    return short_title(str(title))


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
