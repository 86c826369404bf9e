"""PDF files, from their text layer: clean page text, metadata, graded recommendations.

The library is pypdf (BSD-3-Clause, pure Python). On the seven shared guidelines it kept the
publishers' column order (their content streams are written column by column) and was 3-13x
faster than pdfplumber and 1.5-3x faster than PyMuPDF, whose AGPL-3.0 licence would bind
every distribution of cliniq; docs/ingest.md has the figures. What pypdf leaves, this module
and `ingest.loaders.guideline` clean: running headers and footers, page numbers, ligatures,
line-end hyphens, journal boilerplate. Every chunk keeps its page through `<!-- page: N -->`.
"""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders._common import LoadProblem, LoadResult, path_document_id, title_from_stem
from ingest.loaders.guideline import Extracted, Line, clean_pages, to_markdown
from ingest.loaders.legend_tables import DrawingCollector, may_hold_colour_table
from ingest.loaders.metadata import document_fields, read_sidecar
from ingest.types import DocType, Document

# pypdf logs a warning per font it cannot fully decode (it still extracts the text).
logging.getLogger("pypdf").setLevel(logging.ERROR)
_OCR_HINT = "run OCR first (e.g. `ocrmypdf in.pdf out.pdf`) and ingest the result"
# Bounds that keep a pathological file from holding an ingest for minutes.
MAX_PAGES = 2000
MAX_SECONDS = 300.0


def load_pdf(path: Path, data: bytes) -> LoadResult:
    raw, info, problems, tables = extract_pages(path, data)
    result = document_from_pages(path, raw, info, tables)
    result.problems[:0] = problems
    return result


def extract_pages(
    path: Path, data: bytes
) -> tuple[
    list[tuple[int, list[str]]], dict[str, str], list[LoadProblem], dict[int, list[Extracted]]
]:
    """The text layer's lines of each page, the info dictionary, the parts skipped, and the
    recommendations of each page's colour-coded tables (read from the same pass's drawing)."""
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
    if not pages:
        raise LoaderError(path, "PDF has no pages")

    problems: list[LoadProblem] = []
    if len(pages) > MAX_PAGES:
        problems.append(
            LoadProblem(str(path), f"only the first {MAX_PAGES} of {len(pages)} pages read")
        )
        pages = pages[:MAX_PAGES]
    started = time.monotonic()
    raw: list[tuple[int, list[str]]] = []
    tables: dict[int, list[Extracted]] = {}
    for number, page in enumerate(pages, start=1):
        if number > 1 and time.monotonic() - started > MAX_SECONDS:
            reason = (
                f"pages {number}-{len(pages)} skipped: text extraction over {MAX_SECONDS:.0f} s"
            )
            problems.append(LoadProblem(str(path), reason))
            break
        drawing = DrawingCollector()
        try:
            visitors = (
                {"visitor_operand_before": drawing.operand, "visitor_text": drawing.text}
                if may_hold_colour_table(page)
                else {}
            )
            text = page.extract_text(**visitors) or ""
        except Exception as exc:  # one damaged page should not lose the others
            reason = f"page {number} skipped: cannot extract text ({_short(exc)})"
            problems.append(LoadProblem(str(path), reason))
            continue
        if text.strip():
            raw.append((number, text.split("\n")))
        if found := drawing.recommendations(number):
            tables[number] = found
    if not raw:
        raise LoaderError(path, f"PDF has no text layer (scanned or image-only?); {_OCR_HINT}")
    return raw, _info(reader), problems, tables


def document_from_pages(
    path: Path,
    raw: list[tuple[int, list[str]]],
    info: dict[str, str],
    tables: dict[int, list[Extracted]] | None = None,
) -> LoadResult:
    """Extracted pages -> one Document: clean text, recommendations, metadata."""
    lines = clean_pages(raw)
    if not lines:
        raise LoaderError(path, "PDF has no text left after removing headers and footers")
    fields = document_fields(
        path, info=info, first_pages="\n\n".join("\n".join(r[1]) for r in raw[:3])
    )
    fields.setdefault("title", title_from_stem(path))
    body = to_markdown(_title_as_heading(lines, fields["title"]), tables)
    if body.recommendations:  # recommendations make it a guideline, unless a sidecar says
        override = read_sidecar(path)
        fields["doc_type"] = override.get("doc_type", DocType.guideline)
        if "strength_scale" not in override and body.scales:
            fields["strength_scale"] = body.scales.most_common(1)[0][0]
    doc = Document(
        id=fields.pop("id", None) or path_document_id(path),
        text=body.markdown,
        source_path=str(path),
        **fields,
    )
    return LoadResult([doc])


def _title_as_heading(lines: list[Line], title: str) -> list[Line]:
    """The title printed over the first lines of page 1 becomes one `# title` line: the
    document's name, not a passage to cite."""
    want = re.sub(r"\W+", "", title.lower())
    joined = ""
    for k, line in enumerate(lines[:6]):
        joined += re.sub(r"\W+", "", line.text.lower())
        if joined == want:
            return [Line(lines[0].page, f"# {title}"), *lines[k + 1 :]]
        if not want.startswith(joined):
            break
    return lines


def _info(reader: object) -> dict[str, str]:
    """The PDF's info dictionary as plain strings (a damaged one is simply empty)."""
    try:
        meta = reader.metadata or {}  # type: ignore[attr-defined]
        return {str(k).lstrip("/").lower(): str(v) for k, v in meta.items() if v is not None}
    except Exception:
        return {}


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
