"""Answers recorded from any system, scored without running it.

A recorded answer is ``response`` text with ``[n]`` markers (``[1]``, ``[1, 3]``, ``[1-3]``)
that point, 1-based, into ``retrieved_contexts``. The markers are parsed back to the contexts
they name; a marker naming no context is kept as a citation error, never silently dropped.
cliniq's own JSON answers (``cliniq ask --json``) and earlier eval runs load here too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.types import Answer
from evals.records import AnswerRecord, ClaimRecord, PassageRecord, from_answer, normalize_text
from evals.suite import Case, SuiteError
from ingest.chunking import split_sentences

_MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:[,;]|[-–—]|to)\s*\d+)*)\s*\]")
_ITEM = re.compile(r"^(\d+)(?:\s*(?:[-–—]|to)\s*(\d+))?$")
# A run of markers right after a sentence's closing punctuation belongs to that sentence:
# "... supported.[2] Next" -> "... supported [2]. Next".
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[[\d,;\s\-–—to]+\])+)(?=\s|$)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s.*$", re.M)
_REFERENCE_LIST = re.compile(
    r"^\s*(?:#{1,6}\s*)?\**(?:references|sources|citations|bibliography)\**\s*:?\s*$", re.I | re.M
)
_REFUSAL = re.compile(
    r"\b(?:do(?:es)?\s+not\s+(?:address|cover|contain|mention|answer)|"
    r"(?:cannot|can['’]t|unable\s+to)\s+(?:answer|find|help)|"
    r"no\s+(?:relevant\s+)?(?:information|answer|evidence)\s+(?:is\s+)?(?:available|given|found)|"
    r"not\s+(?:covered|addressed|mentioned)\s+(?:in|by)|"
    r"(?:insufficient|not\s+enough)\s+(?:information|evidence)\s+to\s+answer|"
    r"I\s+(?:do\s+not|don['’]t)\s+know|outside\s+(?:the\s+)?scope)\b",
    re.I,
)
MAX_RANGE = 50


@dataclass
class ParsedSentence:
    """A sentence with its markers removed and resolved to 1-based context numbers."""

    text: str
    numbers: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_markers(sentence: str, n_contexts: int) -> ParsedSentence:
    """Resolve ``[1]``, ``[1, 3]``, ``[1-3]`` (and ``[1][2]``); reject out-of-range numbers."""
    numbers: list[int] = []
    errors: list[str] = []
    for match in _MARKER.finditer(sentence):
        for item in re.split(r"\s*[,;]\s*", match.group(1)):
            m = _ITEM.match(item.strip())
            if m is None:
                errors.append(f"unreadable citation {match.group(0)!r}")
                continue
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else lo
            if hi < lo or hi - lo > MAX_RANGE:
                errors.append(f"unreadable citation range {match.group(0)!r}")
                continue
            for n in range(lo, hi + 1):
                if 1 <= n <= n_contexts:
                    numbers.append(n)
                else:
                    errors.append(
                        f"citation [{n}] is out of range: there are {n_contexts} "
                        "retrieved contexts (numbered from 1)"
                    )
    text = _MARKER.sub("", sentence)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"\s{2,}", " ", text).strip()
    return ParsedSentence(text=text, numbers=list(dict.fromkeys(numbers)), errors=errors)


def split_response(response: str) -> list[str]:
    """Sentences of a recorded response; headings and a trailing reference list are dropped."""
    text = response.replace("\r\n", "\n")
    ref = _REFERENCE_LIST.search(text)
    if ref:
        text = text[: ref.start()]
    text = _HEADING.sub("", text)
    text = _TRAILING_MARKERS.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    return [s for s in split_sentences(text) if re.search(r"[A-Za-z]", _MARKER.sub("", s))]


def looks_like_refusal(response: str) -> bool:
    return not response.strip() or bool(_REFUSAL.search(response))


def recorded_answer(
    question: str,
    response: str,
    contexts: list[str],
    *,
    document_ids: list[str | None] | None = None,
    abstained: bool | None = None,
    latency_ms: float | None = None,
    system: str = "recorded",
) -> AnswerRecord:
    """Recorded text -> record. Every sentence is a claim, unless the answer is a refusal."""
    passages = [
        PassageRecord(
            id=f"ctx-{i}",
            rank=i,
            text=text,
            document_id=(document_ids[i - 1] if document_ids else None),
        )
        for i, text in enumerate(contexts, start=1)
    ]
    parsed = [parse_markers(s, len(contexts)) for s in split_response(response)]
    cited_any = any(p.numbers for p in parsed)
    if abstained is None:
        refused = not cited_any and looks_like_refusal(response)
        source = "detected"
    else:
        refused, source = abstained, "declared"
    claims = []
    if not refused:
        claims = [
            ClaimRecord(
                text=p.text,
                kind="claim",
                citations=[f"ctx-{n}" for n in p.numbers],
                citation_errors=p.errors,
            )
            for p in parsed
            if p.text
        ]
    return AnswerRecord(
        system=system,
        question=question,
        text="\n".join(p.text for p in parsed),
        claims=claims,
        passages=passages,
        abstained=refused,
        abstention_source=source,
        latency_ms=latency_ms,
    )


def case_recorded_answer(case: Case, system: str = "recorded") -> AnswerRecord:
    """The answer a case carries in its RAGAS fields (response, retrieved_contexts)."""
    if case.response is None:
        raise SuiteError(f"case {case.id!r} has no recorded 'response'")
    return recorded_answer(
        case.questions[-1],
        case.response,
        case.retrieved_contexts or [],
        document_ids=case.retrieved_document_ids,
        abstained=case.abstained,
        latency_ms=case.latency_ms,
        system=system,
    )


# ----------------------------------------------------------------------- recorded files


@dataclass
class RecordedItem:
    """One recorded answer from a file, with what identifies its case."""

    answer: AnswerRecord
    case_id: str | None = None


def _item(obj: Any, where: str, system: str) -> list[RecordedItem]:
    if not isinstance(obj, dict):
        raise SuiteError(f"{where}: expected a JSON object")
    case_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    if "cases" in obj and "metrics" in obj:  # an earlier eval run (report JSON)
        out = []
        for case in obj["cases"]:
            turns = [t for t in case.get("turns", []) if t.get("answer")]
            if turns:
                out.append(
                    RecordedItem(AnswerRecord.model_validate(turns[-1]["answer"]), case["id"])
                )
        return out
    if "sections" in obj:  # cliniq's own answer JSON
        answer = Answer.model_validate(obj)
        return [RecordedItem(from_answer(answer), case_id)]
    if "response" in obj:  # a RAGAS sample
        question = obj.get("user_input") or ""
        if not isinstance(question, str):
            raise SuiteError(f"{where}: multi-turn RAGAS samples are not supported")
        answer = recorded_answer(
            question,
            obj.get("response") or "",
            list(obj.get("retrieved_contexts") or []),
            document_ids=obj.get("retrieved_document_ids"),
            abstained=obj.get("abstained"),
            latency_ms=obj.get("latency_ms"),
            system=obj.get("system") or system,
        )
        return [RecordedItem(answer, case_id)]
    raise SuiteError(
        f"{where}: not a recorded answer: expected RAGAS fields (user_input, response, "
        "retrieved_contexts), a cliniq answer (sections), or an eval run (cases)"
    )


def load_recorded(path: Path | str, system: str = "recorded") -> list[RecordedItem]:
    """Read RAGAS JSONL, cliniq answer JSON/JSONL, or an eval run's JSON."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"recorded answers not found: {path}")
    text = path.read_text(encoding="utf-8")
    objects: list[tuple[Any, str]] = []
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
        objects = [(row, f"{path}: item {i}") for i, row in enumerate(rows, start=1)]
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                objects.append((json.loads(line), f"{path}:{number}"))
            except json.JSONDecodeError as exc:
                raise SuiteError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
    items: list[RecordedItem] = []
    for obj, where in objects:
        items.extend(_item(obj, where, system))
    if not items:
        raise SuiteError(f"{path}: no recorded answers in the file")
    return items


def match_recorded(
    cases: list[Case], items: list[RecordedItem]
) -> tuple[dict[str, AnswerRecord], list[RecordedItem]]:
    """Case id -> answer, by id when the item has one, else by the text of the last question."""
    by_id = {i.case_id: i for i in items if i.case_id}
    by_question: dict[str, RecordedItem] = {}
    for item in items:
        by_question.setdefault(normalize_text(item.answer.question), item)
    matched: dict[str, AnswerRecord] = {}
    used: set[int] = set()
    for case in cases:
        item = by_id.get(case.id) or by_question.get(normalize_text(case.questions[-1]))
        if item is not None:
            matched[case.id] = item.answer
            used.add(id(item))
    unmatched = [i for i in items if id(i) not in used]
    return matched, unmatched
