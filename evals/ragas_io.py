"""RAGAS-compatible JSONL in and out.

Import: each line a ``SingleTurnSample`` (``user_input``, ``response``, ``retrieved_contexts``,
``reference``, ``reference_contexts``) becomes a case carrying a recorded answer, so another
system's answers can be scored here. Export: a run's answers as the same JSONL, with ``[n]``
markers numbered into ``retrieved_contexts`` so the file scores the same when imported back.
Extra keys (``id``, ``retrieved_document_ids``, ``abstained``, ``latency_ms``, ``notes``) are
ignored by RAGAS and used here when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.records import AnswerRecord
from evals.suite import Case, Suite, SuiteError, parse_suite

if TYPE_CHECKING:
    from evals.runner import RunReport

RAGAS_FIELDS = ("user_input", "response", "retrieved_contexts", "reference", "reference_contexts")
EXTENSION_FIELDS = ("retrieved_document_ids", "abstained", "latency_ms")
#: Keys of a SingleTurnSample that this suite format has no use for; dropped on import.
IGNORED_FIELDS = ("multi_responses", "rubric", "rubrics", "notes", "system")


def read_ragas_jsonl(path: Path | str, name: str | None = None) -> Suite:
    """A RAGAS JSONL of samples -> a suite whose cases carry their recorded answers."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"RAGAS file not found: {path}")
    cases: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise SuiteError(f"{path}:{number}: expected a JSON object (one sample per line)")
        if isinstance(row.get("user_input"), list):
            raise SuiteError(
                f"{path}:{number}: a multi-turn sample; only SingleTurnSample rows are supported"
            )
        unknown = set(row) - {*RAGAS_FIELDS, *EXTENSION_FIELDS, *IGNORED_FIELDS, "id"}
        case = {k: row[k] for k in (*RAGAS_FIELDS, *EXTENSION_FIELDS) if row.get(k) is not None}
        case["id"] = str(row.get("id") or f"sample-{len(cases) + 1:04d}")
        if unknown:
            case["description"] = "ignored keys: " + ", ".join(sorted(unknown))
        cases.append(case)
    if not cases:
        raise SuiteError(f"{path}: no samples")
    return parse_suite({"name": name or path.stem, "cases": cases}, str(path), path=path.resolve())


def response_with_markers(answer: AnswerRecord) -> str:
    """Claims with ``[n]`` markers numbered by passage rank (1-based into the contexts)."""
    if answer.abstained or not answer.claims:
        return answer.text
    number = {p.id: i for i, p in enumerate(answer.passages, start=1)}
    parts = []
    for claim in answer.claims:
        marks = sorted({number[c] for c in claim.citations if c in number})
        text = claim.text.rstrip()
        end = ""
        if text and text[-1] in ".!?":
            text, end = text[:-1], text[-1]
        if marks:
            text += " [" + ", ".join(str(n) for n in marks) + "]"
        parts.append(text + (end or "."))
    return " ".join(parts)


def sample_of(answer: AnswerRecord, case: Case | None, case_id: str) -> dict[str, Any]:
    """One RAGAS row (plus our extension keys) for an answer."""
    row: dict[str, Any] = {
        "id": case_id,
        "user_input": answer.question,
        "response": response_with_markers(answer),
        "retrieved_contexts": [p.text for p in answer.passages],
    }
    if case is not None and case.reference is not None:
        row["reference"] = case.reference
    if case is not None and case.reference_contexts is not None:
        row["reference_contexts"] = case.reference_contexts
    row["retrieved_document_ids"] = [p.document_id for p in answer.passages]
    row["abstained"] = answer.abstained
    if answer.latency_ms is not None:
        row["latency_ms"] = round(answer.latency_ms, 1)
    if answer.normalization and answer.normalization.notes:
        row["notes"] = answer.normalization.notes
    row["system"] = answer.system
    return row


def export_run(report: RunReport | dict[str, Any] | Path | str, out: Path | str) -> int:
    """Write the last answer of each case of a run as RAGAS JSONL; returns the row count."""
    from evals.runner import RunReport

    if isinstance(report, str | Path):
        path = Path(report)
        if not path.is_file():
            raise SuiteError(f"run report not found: {path}")
        try:
            report = RunReport.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            raise SuiteError(
                f"{path}: not an eval run report (expected the report.json of `cliniq eval run`)"
            ) from None
    elif isinstance(report, dict):
        report = RunReport.model_validate(report)
    rows = []
    for case in report.cases:
        answered = [t for t in case.turns if t.answer is not None]
        if not answered:
            continue
        rows.append(sample_of(answered[-1].answer, case.case, case.id))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return len(rows)
