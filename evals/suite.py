"""Eval suites: YAML files of cases, validated so that a typo fails loudly with its location.

A case is a superset of a RAGAS ``SingleTurnSample`` (``user_input``, ``response``,
``retrieved_contexts``, ``reference``, ``reference_contexts``) plus what a clinical answer must
and must not say, which sources it should come from, how the question must be read, and whether
it can be answered at all. Follow-ups (``turns``) are asked in the same conversation; the
case-level expectations apply to the last question, and each follow-up may carry its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import CliniqError

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class SuiteError(CliniqError):
    """A suite (or thresholds) file is missing, unreadable, or invalid."""


class ExpectedNormalization(BaseModel):
    """How the question must be read: a concept (id or canonical name) and/or words of the note."""

    model_config = ConfigDict(extra="forbid")

    concept: str | None = Field(
        default=None, description="Lexicon concept id ('rls') or canonical name."
    )
    note_contains: list[str] = Field(
        default_factory=list,
        description="Substrings (case-insensitive) that the normalization notes must contain.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"concept": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _not_empty(self) -> ExpectedNormalization:
        if not self.concept and not self.note_contains:
            raise ValueError("give a concept, note_contains, or both")
        return self


class Expectations(BaseModel):
    """What one answer must satisfy. Every field is optional; an absent one is not checked."""

    model_config = ConfigDict(extra="forbid")

    must_include: list[list[str]] = Field(
        default_factory=list,
        description="Facts; each a list of acceptable phrasings (case-insensitive substrings).",
    )
    must_not_include: list[str] = Field(
        default_factory=list, description="Phrases that must not appear (case-insensitive)."
    )
    expected_documents: list[str] = Field(
        default_factory=list, description="Corpus document ids the answer should draw on."
    )
    expected_normalization: ExpectedNormalization | None = None
    answerable: bool | None = Field(
        default=None,
        description="True: the sources answer it; False: it should be refused; None: unchecked.",
    )
    answering_document: str | None = Field(
        default=None,
        description="The document the question was taken from: a content sentence must cite it.",
    )
    acceptable_documents: list[str] = Field(
        default_factory=list,
        description="Every document on the question's subject (a guideline case: every guideline "
        "on it); citing any other is a foreign citation.",
    )
    gold_span: str | None = Field(
        default=None,
        description="A short answer the first screen must contain (e.g. an expert's answer span).",
    )

    @field_validator("must_include", mode="before")
    @classmethod
    def _facts(cls, value: Any) -> Any:
        """A bare string is a fact with one phrasing."""
        if isinstance(value, list):
            return [[v] if isinstance(v, str) else v for v in value]
        return value

    @field_validator("must_include")
    @classmethod
    def _phrasings_non_empty(cls, value: list[list[str]]) -> list[list[str]]:
        for i, fact in enumerate(value):
            if not fact or any(not p.strip() for p in fact):
                raise ValueError(f"fact {i} needs at least one non-empty phrasing")
        return value

    @field_validator("must_not_include")
    @classmethod
    def _phrases_non_empty(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("phrases must not be empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Expectations:
        forbidden = {p.lower() for p in self.must_not_include}
        for fact in self.must_include:
            clash = [p for p in fact if p.lower() in forbidden]
            if clash:
                raise ValueError(f"{clash[0]!r} is both required and forbidden")
        return self

    def is_empty(self) -> bool:
        return not (
            self.must_include
            or self.must_not_include
            or self.expected_documents
            or self.expected_normalization
            or self.answerable is not None
            or self.answering_document is not None
            or bool(self.acceptable_documents)
            or self.gold_span is not None
        )

    def merged(self, other: Expectations) -> Expectations:
        """``self`` with ``other`` added; ``other`` wins where both set a single value."""
        return Expectations(
            must_include=[*self.must_include, *other.must_include],
            must_not_include=[*self.must_not_include, *other.must_not_include],
            expected_documents=list(
                dict.fromkeys([*self.expected_documents, *other.expected_documents])
            ),
            expected_normalization=other.expected_normalization or self.expected_normalization,
            answerable=other.answerable if other.answerable is not None else self.answerable,
            answering_document=other.answering_document or self.answering_document,
            acceptable_documents=other.acceptable_documents or self.acceptable_documents,
            gold_span=other.gold_span or self.gold_span,
        )


class Turn(Expectations):
    """A follow-up question, with expectations of its own answer."""

    user_input: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"user_input": data} if isinstance(data, str) else data


class Case(Expectations):
    """One conversation (usually one question) and what its answers must satisfy."""

    id: str = Field(description="Unique within the suite: letters, digits, '-', '_', '.'.")
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    user_input: str = Field(min_length=1, description="The (first) question.")
    turns: list[Turn] = Field(
        default_factory=list, description="Follow-ups asked after user_input, in order."
    )
    # RAGAS SingleTurnSample fields (a recorded answer to the last question, and references)
    response: str | None = None
    retrieved_contexts: list[str] | None = None
    reference: str | None = None
    reference_contexts: list[str] | None = None
    # Optional extensions for recorded answers
    retrieved_document_ids: list[str | None] | None = Field(
        default=None, description="Document id of each retrieved context, same order."
    )
    abstained: bool | None = Field(
        default=None, description="Whether the recorded response is a refusal, if known."
    )
    latency_ms: float | None = Field(default=None, ge=0)
    reference_record: str | None = Field(
        default=None,
        description="'collection/qid' of a record in the suite's index data whose answer is the "
        "reference; read at run time into `reference` (see SuiteIndex).",
    )

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not CASE_ID.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '-', '_' or '.'")
        return value

    @model_validator(mode="after")
    def _recorded_consistent(self) -> Case:
        ids = self.retrieved_document_ids
        if ids is not None and len(ids) != len(self.retrieved_contexts or []):
            raise ValueError(
                f"retrieved_document_ids has {len(ids)} entries but retrieved_contexts has "
                f"{len(self.retrieved_contexts or [])}"
            )
        return self

    @property
    def questions(self) -> list[str]:
        return [self.user_input, *(t.user_input for t in self.turns)]

    @property
    def has_recorded_answer(self) -> bool:
        return self.response is not None

    def expectations_for(self, turn: int) -> Expectations | None:
        """Expectations of the answer to question ``turn`` (0 = user_input), or None."""
        last = len(self.turns)
        own = self.turns[turn - 1] if turn >= 1 else None
        base = Expectations.model_validate(self.model_dump(include=set(Expectations.model_fields)))
        if turn == last:
            merged = base.merged(own) if own is not None else base
        elif own is not None:
            merged = Expectations.model_validate(
                own.model_dump(include=set(Expectations.model_fields))
            )
        else:
            return None
        return None if merged.is_empty() else merged


class SuiteIndex(BaseModel):
    """A suite's own index: chosen documents of a MedQuAD JSONL export, read at run time.

    The data stays where it is (``../shared``); the suite names documents by id, so no source
    text is copied into the repository. ``cliniq eval run`` writes the chosen records to a
    JSONL beside the suite's index and ingests that; when the data is absent the run is skipped
    with a message.
    """

    model_config = ConfigDict(extra="forbid")

    medquad: str = Field(description="MedQuAD JSONL export, relative to the suite file.")
    documents: list[str] = Field(
        min_length=1, description="Document ids as the loader names them (medquad-<coll>-<id>)."
    )

    @field_validator("documents")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted({d for d in value if value.count(d) > 1})
        if dupes:
            raise ValueError(f"duplicate document ids: {', '.join(dupes[:5])}")
        return value


class Suite(BaseModel):
    """A named list of cases; ``corpus`` is what the cases' expected facts are true of."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    corpus: str | None = Field(
        default=None, description="Corpus directory, relative to the suite file."
    )
    index: SuiteIndex | None = Field(
        default=None, description="Documents of a dataset to index instead of a corpus directory."
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Fields applied to every case that does not set them."
    )
    cases: list[Case] = Field(default_factory=list)
    path: Path | None = Field(default=None, exclude=True)

    def corpus_path(self) -> Path | None:
        if self.corpus is None:
            return None
        base = self.path.parent if self.path else Path.cwd()
        return (base / self.corpus).resolve()

    def data_path(self) -> Path | None:
        """The dataset file the suite's own index is drawn from (``index.medquad``), resolved."""
        if self.index is None:
            return None
        base = self.path.parent if self.path else Path.cwd()
        return (base / self.index.medquad).resolve()

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)

    def select(self, limit: int | None = None, tags: Iterable[str] = ()) -> list[Case]:
        wanted = set(tags)
        cases = [c for c in self.cases if not wanted or wanted & set(c.tags)]
        return cases[:limit] if limit else cases


# ---------------------------------------------------------------------------------- loading

_CASE_FIELDS = set(Case.model_fields)
_DEFAULTABLE = {"answerable", "tags", "expected_documents", "must_not_include"}


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(case)"


def _error_lines(prefix: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/evals.md for the format)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{prefix}, field '{_where(err['loc'])}': {msg}")
    return lines


def parse_suite(data: Any, source: str = "<suite>", path: Path | None = None) -> Suite:
    """Validate suite data; every problem is reported with file, case id and field."""
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: expected a mapping with 'name' and 'cases'")
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise SuiteError(f"{source}: 'cases' must be a non-empty list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise SuiteError(f"{source}: 'defaults' must be a mapping")
    bad_defaults = sorted(set(defaults) - _DEFAULTABLE)
    if bad_defaults:
        raise SuiteError(
            f"{source}: defaults may set only {sorted(_DEFAULTABLE)}, not {bad_defaults}"
        )
    problems: list[str] = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_cases, start=1):
        case_id = raw.get("id") if isinstance(raw, dict) else None
        prefix = (
            f"{source}: case {case_id!r} (#{number})" if case_id else f"{source}: case #{number}"
        )
        if not isinstance(raw, dict):
            problems.append(f"{prefix}: expected a mapping of fields")
            continue
        merged = {**{k: v for k, v in defaults.items() if k not in raw}, **raw}
        try:
            case = Case.model_validate(merged)
        except ValidationError as exc:
            problems.extend(_error_lines(prefix, exc))
            continue
        if case.id in seen:
            problems.append(f"{prefix}, field 'id': duplicate of case #{seen[case.id]}")
            continue
        seen[case.id] = number
        cases.append(case)
    index = data.get("index")
    if isinstance(index, dict) and index.get("documents"):
        indexed = set(index["documents"])
        for case in cases:
            doc = case.answering_document
            if doc and case.answerable is not False and doc not in indexed:
                problems.append(
                    f"{source}: case {case.id!r}, field 'answering_document': {doc!r} is not "
                    "among the suite's index.documents"
                )
    if problems:
        shown = problems[:25]
        more = f"\n... and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise SuiteError("invalid suite:\n" + "\n".join(shown) + more)
    head = {k: v for k, v in data.items() if k != "cases"}
    head.setdefault("name", path.stem if path else "suite")
    try:
        return Suite.model_validate({**head, "cases": cases, "path": path})
    except ValidationError as exc:
        raise SuiteError("\n".join(_error_lines(f"{source}: suite", exc))) from None


def load_suite(path: Path | str, known_documents: Iterable[str] | None = None) -> Suite:
    """Read a YAML suite (or a RAGAS JSONL, imported on the fly)."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"suite not found: {path}")
    if path.suffix.lower() in {".jsonl", ".json"}:
        from evals.ragas_io import read_ragas_jsonl

        suite = read_ragas_jsonl(path)
    else:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SuiteError(f"{path}: not valid YAML: {exc}") from None
        suite = parse_suite(data, str(path), path=path.resolve())
    if known_documents is not None:
        check_documents(suite, known_documents)
    return suite


def check_documents(suite: Suite, known_documents: Iterable[str]) -> None:
    """Every expected document id must exist in the corpus the suite is run against."""
    known = set(known_documents)
    problems = []
    for case in suite.cases:
        for turn in range(len(case.questions)):
            exp = case.expectations_for(turn)
            for doc in exp.expected_documents if exp else []:
                if doc not in known:
                    problems.append(
                        f"{suite.path or suite.name}: case {case.id!r}, field "
                        f"'expected_documents': unknown document id {doc!r}"
                    )
    if problems:
        raise SuiteError("\n".join(dict.fromkeys(problems)))


def dump_suite(suite: Suite) -> str:
    """YAML text of a suite, leaving out unset fields."""
    data: dict[str, Any] = {"name": suite.name}
    if suite.description:
        data["description"] = suite.description
    if suite.corpus:
        data["corpus"] = suite.corpus
    if suite.index:
        data["index"] = suite.index.model_dump(mode="json")
    first = ("id", "tags", "description", "user_input", "turns")
    cases = []
    for case in suite.cases:
        raw = case.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        raw["id"], raw["user_input"] = case.id, case.user_input
        cases.append({**{k: raw[k] for k in first if k in raw}, **raw})
    data["cases"] = cases
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# ----------------------------------------------------------------------- a suite's own index


class SuiteDataMissing(SuiteError):
    """The dataset a suite's own index is drawn from is not on this machine: skip the suite."""


def _read_index_records(suite: Suite) -> list[dict[str, Any]]:
    import json

    path = suite.data_path()
    if path is None:
        raise SuiteError(f"suite {suite.name!r} has no 'index' to read")
    if not path.is_file():
        raise SuiteDataMissing(
            f"suite {suite.name!r} draws its index from {path}, which is not here "
            "(see ../shared/datasets/README.md); skipped"
        )
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
    return records


def materialize_index(suite: Suite, out_dir: Path) -> tuple[Path, dict[str, str]]:
    """Write the suite's chosen documents to ``out_dir/<name>.jsonl``; read its references.

    Returns the directory to ingest and, per ``reference_record`` key ('collection/qid'), the
    reference answer cleaned as the loader cleans it. The file is rewritten only when its content
    changes, so an unchanged suite re-ingests in seconds. Every referenced document and record
    must exist in the data: a missing one is an error naming it.
    """
    import json

    from ingest.loaders.medquad import clean_answer, medquad_id

    assert suite.index is not None
    records = _read_index_records(suite)
    wanted = set(suite.index.documents)
    keep: list[str] = []
    found: set[str] = set()
    by_key: dict[str, dict[str, Any]] = {}
    for rec in records:
        doc = medquad_id(str(rec.get("collection", "")), str(rec.get("doc_id", "")))
        by_key[f"{rec.get('collection')}/{rec.get('qid')}"] = rec
        if doc in wanted:
            found.add(doc)
            keep.append(json.dumps(rec, ensure_ascii=False, sort_keys=True))
    missing = sorted(wanted - found)
    if missing:
        raise SuiteError(
            f"{suite.path or suite.name}: index.documents not in {suite.data_path()}: "
            + ", ".join(missing[:5])
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    references: dict[str, str] = {}
    problems = []
    for case in suite.cases:
        key = case.reference_record
        if not key:
            continue
        rec = by_key.get(key)
        answer = clean_answer(str(rec.get("answer") or "")) if rec else ""
        if not answer:
            problems.append(f"case {case.id!r}: reference_record {key!r} has no answer in the data")
            continue
        references[key] = answer
    if problems:
        raise SuiteError(f"{suite.path or suite.name}: " + "; ".join(problems[:5]))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{suite.name}.jsonl"
    text = "\n".join(keep) + "\n"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    for stale in out_dir.glob("*.jsonl"):
        if stale != target:
            stale.unlink()
    return out_dir, references


def with_references(suite: Suite, references: dict[str, str]) -> Suite:
    """The suite with each ``reference_record`` read into the case's ``reference``."""
    cases = [
        c.model_copy(update={"reference": references[c.reference_record]})
        if c.reference_record in references
        else c
        for c in suite.cases
    ]
    return suite.model_copy(update={"cases": cases})
