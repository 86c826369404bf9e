"""PubMedQA (Jin et al., EMNLP 2019): abstracts keyed by PMID, one research Document each."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders._common import LoadProblem, LoadResult, short_title
from ingest.types import DocType, Document

JSON_SHAPE = (
    "expected PubMedQA JSON: an object keyed by PMID whose values hold QUESTION, CONTEXTS, "
    "LABELS and LONG_ANSWER (optionally YEAR and MESHES)"
)


def load_pubmedqa(path: Path, text: str) -> LoadResult:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoaderError(
            path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    first = next(iter(data.values()), None) if isinstance(data, dict) else None
    if not isinstance(first, dict) or "QUESTION" not in first or "CONTEXTS" not in first:
        found = type(data).__name__ if not isinstance(data, dict) else "an object of other values"
        raise LoaderError(path, f"{JSON_SHAPE}; found {found}")
    result = LoadResult()
    for pmid, item in data.items():
        try:
            result.documents.append(_document(path, str(pmid), item))
        except ValueError as exc:
            result.problems.append(LoadProblem(str(path), f"PMID {pmid}: {exc}; skipped"))
    if not result.documents:
        shown = "; ".join(str(p) for p in result.problems[:3])
        raise LoaderError(path, f"no documents could be loaded: {shown}")
    return result


def _document(path: Path, pmid: str, item: object) -> Document:
    if not re.fullmatch(r"\d{1,9}", pmid):
        raise ValueError("key is not a PMID")
    if not isinstance(item, dict):
        raise ValueError("value is not an object")
    question = " ".join(str(item.get("QUESTION") or "").split())
    contexts = item.get("CONTEXTS")
    labels = item.get("LABELS") or []
    if not question:
        raise ValueError("QUESTION is empty")
    if not isinstance(contexts, list) or not isinstance(labels, list):
        raise ValueError("CONTEXTS and LABELS must be lists")
    sections = []
    for index, context in enumerate(contexts):
        label = " ".join(str(labels[index]).split()) if index < len(labels) else ""
        body = " ".join(str(context or "").split())
        if body:
            sections.append(f"## {label or 'Abstract'}\n\n{body}")
    if conclusion := " ".join(str(item.get("LONG_ANSWER") or "").split()):
        sections.append(f"## Conclusion\n\n{conclusion}")
    if not sections:
        raise ValueError("no abstract text")
    year = str(item.get("YEAR") or "").strip()
    return Document(
        id=f"pubmed-{pmid}",
        title=short_title(question, 300),
        year=int(year) if re.fullmatch(r"(19|20)\d\d", year) else None,
        pmid=pmid,
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
        doc_type=DocType.research,
        tags=[str(mesh) for mesh in item.get("MESHES") or [] if str(mesh).strip()],
        text="\n\n".join(sections),
        source_path=str(path),
    )
