"""MedQuAD question-answer collections (Ben Abacha & Demner-Fushman, BMC Bioinformatics 2019).

A MedQuAD document is one NIH/CDC web page cut into question-answer pairs. Both the native XML
(one file per page) and the JSONL export (one line per pair) become the same Document: title =
focus, one `## question` section per answered pair, and an id that is the same for both forms
(`medquad-<collection>-<doc id>`), so re-ingesting a page in the other form does not duplicate it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders._common import LoadProblem, LoadResult, slugify
from ingest.loaders.boilerplate import repeated_paragraphs, strip_interface
from ingest.types import DocType, Document

MEDQUAD_REFERENCE = "MedQuAD, Ben Abacha & Demner-Fushman, BMC Bioinformatics 2019;20:511"
SOURCE_NAMES = {
    "ADAM": "A.D.A.M. Medical Encyclopedia (MedlinePlus)",
    "CancerGov": "National Cancer Institute",
    "CDC": "Centers for Disease Control and Prevention",
    "GARD": "Genetic and Rare Diseases Information Center",
    "GHR": "Genetics Home Reference (NLM)",
    "MPlusDrugs": "MedlinePlus Drugs (NLM)",
    "MPlusHealthTopics": "MedlinePlus Health Topics (NLM)",
    "MPlusHerbsSupplements": "MedlinePlus Herbs and Supplements (NLM)",
    "NHLBI": "National Heart, Lung, and Blood Institute",
    "NIDDK": "National Institute of Diabetes and Digestive and Kidney Diseases",
    "NIHSeniorHealth": "NIHSeniorHealth (NIH)",
    "NINDS": "National Institute of Neurological Disorders and Stroke",
}
JSONL_SHAPE = (
    "expected MedQuAD JSONL: one JSON object per line with collection, doc_id, source, url, "
    "focus, question and answer"
)
XML_SHAPE = "expected a MedQuAD XML file: <Document id source url> with <Focus> and <QAPairs>"
_REQUIRED_RECORD_KEYS = ("question", "answer")
_INLINE_BULLET_RE = re.compile(r"(?<![ \t])[ \t]{2,}-[ \t]+(?=\S)")  # lookbehind: linear
_FILE_STEM_RE = re.compile(r"(?P<collection>\d+_\w+?)_(?P<doc_id>\d+)")


def clean_answer(text: str) -> str:
    """MedQuAD answers are scraped HTML: runs of spaces, and bullets flattened into one line.

    Each source line becomes a paragraph and each inline `  - item` its own bullet line.
    """
    text = _INLINE_BULLET_RE.sub("\n- ", text.replace("\r", "\n"))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n\n".join(line for line in lines if line)


def clean_question(text: str) -> str:
    """'What causes X ?' -> 'What causes X?' (and 'X? ?' -> 'X?')."""
    text = re.sub(r" ([?.!])", r"\1", " ".join(text.split()))
    return re.sub(r"([?.!])\1+", r"\1", text)


def medquad_id(collection: str, doc_id: str) -> str:
    return f"medquad-{slugify(collection, 64)}-{slugify(doc_id, 32)}"


@dataclass
class _Page:
    """The records of one MedQuAD document, gathered before it becomes a Document."""

    collection: str
    doc_id: str
    source: str
    url: str | None
    first_line: int | None = None
    focuses: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def add_focus(self, focus: object) -> None:
        text = " ".join(str(focus or "").split())
        if text and text not in self.focuses:
            self.focuses.append(text)

    def add_pair(self, question: object, answer: object) -> None:
        cleaned = "\n\n".join(
            kept
            for p in clean_answer(str(answer or "")).split("\n\n")
            if (kept := strip_interface(p))
        )
        if cleaned:
            q = clean_question(str(question or "")) or "Question"
            self.pairs.append((q, cleaned))

    def to_document(self, path: Path) -> Document:
        title = self.focuses[0] if self.focuses else f"{self.source} page {self.doc_id}"
        body = "\n\n".join(f"## {question}\n\n{answer}" for question, answer in self.pairs)
        source_name = SOURCE_NAMES.get(self.source, self.source)
        return Document(
            id=medquad_id(self.collection, self.doc_id),
            title=title,
            organization=source_name,
            url=self.url or None,
            citation=f"{source_name} web page, via {MEDQUAD_REFERENCE}",
            doc_type=DocType.patient_info,
            tags=self.focuses,
            text=body,
            source_path=str(path),
        )


def load_medquad_xml(path: Path, text: str) -> LoadResult:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise LoaderError(path, f"not well-formed XML at line {line}, column {column}") from None
    pairs = root.find("QAPairs")
    if root.tag != "Document" or pairs is None:
        raise LoaderError(path, f"{XML_SHAPE}; found root element <{root.tag}>")
    doc_id = (root.get("id") or "").strip()
    source = (root.get("source") or "").strip() or "MedQuAD"
    if not doc_id:
        raise LoaderError(path, "MedQuAD <Document> has no id attribute")
    page = _Page(_collection_from_path(path, doc_id, source), doc_id, source, root.get("url"))
    page.add_focus(root.findtext("Focus"))
    for pair in pairs.iter("QAPair"):
        page.add_pair(pair.findtext("Question"), pair.findtext("Answer"))
    if not page.pairs:
        raise LoaderError(path, "no answered questions (every <Answer> is empty); nothing to index")
    return LoadResult([page.to_document(path)])


def _collection_from_path(path: Path, doc_id: str, source: str) -> str:
    """`2_GARD_QA_0005317.xml` or `2_GARD_QA/0005317.xml` -> `2_GARD_QA`; else the source."""
    match = _FILE_STEM_RE.fullmatch(path.stem)
    if match and match["doc_id"] == doc_id:
        return match["collection"]
    if path.stem == doc_id and re.fullmatch(r"\d+_\w+", path.parent.name):
        return path.parent.name
    return source


def load_medquad_jsonl(path: Path, text: str) -> LoadResult:
    """Group records by collection + doc_id. Bad lines become problems; the rest still loads."""
    result = LoadResult()
    pages: dict[tuple[str, str], _Page] = {}
    shape_checked = False
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(
                LoadProblem(str(path), f"not valid JSON ({exc.msg}, column {exc.colno})", number)
            )
            continue
        if not isinstance(record, dict):
            result.problems.append(LoadProblem(str(path), "not a JSON object", number))
            continue
        if not shape_checked:
            if any(key not in record for key in _REQUIRED_RECORD_KEYS) or not (
                "collection" in record or "source" in record
            ):
                keys = ", ".join(sorted(map(str, record))[:12]) or "none"
                raise LoaderError(
                    path, f"{JSONL_SHAPE}; the record on line {number} has keys: {keys}"
                )
            shape_checked = True
        problem = _add_record(pages, record, number)
        if problem:
            result.problems.append(LoadProblem(str(path), problem, number))

    _drop_furniture(list(pages.values()))
    for page in pages.values():
        if page.pairs:
            result.documents.append(page.to_document(path))
        else:
            result.problems.append(
                LoadProblem(
                    str(path),
                    f"document {page.collection}/{page.doc_id} has no answered questions; skipped",
                    page.first_line,
                )
            )
    if not result.documents:
        if not shape_checked:
            raise LoaderError(path, f"{JSONL_SHAPE}; no line holds a JSON object")
        shown = "; ".join(str(p) for p in result.problems[:3])
        raise LoaderError(path, f"no documents could be loaded: {shown}")
    return result


def _drop_furniture(pages: list[_Page]) -> None:
    """Paragraphs printed on at least half of one site's pages (``repeated_paragraphs``)."""
    by_source: dict[str, list[_Page]] = {}
    for page in pages:
        by_source.setdefault(page.collection, []).append(page)
    for group in by_source.values():
        split = [[a.split("\n\n") for _, a in page.pairs] for page in group]
        titled = [
            (page.focuses[0] if page.focuses else "", [p for ps in answers for p in ps])
            for page, answers in zip(group, split, strict=True)
        ]
        masks = repeated_paragraphs(titled)
        for page, answers, mask in zip(group, split, masks, strict=True):
            if not any(mask):
                continue
            flags = iter(mask)
            pairs = []
            for (question, _), paragraphs in zip(page.pairs, answers, strict=True):
                kept = [p for p in paragraphs if not next(flags)]
                if kept:
                    pairs.append((question, "\n\n".join(kept)))
            page.pairs = pairs


def _add_record(pages: dict[tuple[str, str], _Page], record: dict, number: int) -> str | None:
    missing = [key for key in _REQUIRED_RECORD_KEYS if key not in record]
    if missing:
        return f"record lacks {', '.join(missing)}; skipped"
    doc_id = record.get("doc_id") or str(record.get("qid") or "").split("-")[0]
    if not doc_id:
        return "record has neither doc_id nor qid; skipped"
    source = str(record.get("source") or "MedQuAD")
    collection = str(record.get("collection") or source)
    key = (collection, str(doc_id))
    page = pages.get(key)
    if page is None:
        page = pages[key] = _Page(collection, str(doc_id), source, record.get("url"), number)
    page.add_focus(record.get("focus"))
    page.add_pair(record.get("question"), record.get("answer"))
    return None
