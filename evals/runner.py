"""Run a suite: answer every case with a system, judge the claims, score, check thresholds.

Systems: ``cliniq`` (the offline assistant over an index of the suite's corpus), ``cliniq-llm``
(the LLM answerer, when an endpoint is configured) and ``recorded`` (answers from a file, so any
system can be scored without running it). Judges are chosen by name from
``assistant.support.available_judges``; the report records the judge's name, version and
settings, and which judge the assistant verified its own sentences with.
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from evals.metrics import (
    Aggregate,
    ClaimJudging,
    JudgedClaim,
    Metric,
    Sample,
    SampleScore,
    aggregate,
    bootstrap_ci,
    default_metrics,
    failure_categories,
    normalization_check,
)
from evals.recorded import case_recorded_answer, load_recorded, match_recorded
from evals.records import (
    AnswerRecord,
    PassageRecord,
    from_answer,
    normalize_text,
    passage_record,
)
from evals.suite import Case, Expectations, Suite, SuiteError
from evals.thresholds import CASE_PASS_RATE, Threshold, ThresholdResult, check_thresholds
from ingest.errors import CliniqError

DEFAULT_EVAL_INDEX = Path(".cliniq/eval-index")


def suite_index_dir(suite_name: str) -> Path:
    """Default index of a suite that defines its own (``index:``), apart from the corpus one."""
    return DEFAULT_EVAL_INDEX.with_name(f"{DEFAULT_EVAL_INDEX.name}-{suite_name}")


SYSTEMS = ("cliniq", "cliniq-llm", "recorded")


class SystemUnavailableError(CliniqError):
    """The system to evaluate cannot run here (missing module, endpoint or answers)."""


# ------------------------------------------------------------------------------ results


class JudgeInfo(BaseModel):
    name: str
    version: str
    settings: dict[str, Any] = Field(default_factory=dict)


class SystemInfo(BaseModel):
    name: str
    details: dict[str, Any] = Field(default_factory=dict)


class TurnResult(BaseModel):
    """One question of a case: the answer, its judged claims, its scores, its failures."""

    turn: int = Field(description="0 = the case's user_input; 1.. = follow-ups.")
    question: str
    answer: AnswerRecord | None = None
    error: str | None = None
    expectations: Expectations | None = None
    claims: list[JudgedClaim] = Field(default_factory=list)
    scores: dict[str, SampleScore] = Field(default_factory=dict)
    failures: list[str] = Field(default_factory=list)


class CaseResult(BaseModel):
    id: str
    tags: list[str] = Field(default_factory=list)
    case: Case
    turns: list[TurnResult] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def score(self, metric: str) -> float | None:
        """The case's value of a metric, pooled over its answered turns (None if n/a)."""
        scored = [
            t.scores[metric]
            for t in self.turns
            if metric in t.scores and t.scores[metric].skipped is None
        ]
        if not scored:
            return None
        den = sum(s.denominator for s in scored)
        return sum(s.numerator for s in scored) / den if den else scored[0].value

    def explain(self) -> str:
        """Failures, then every sentence the judge did not find supported: for assert messages."""
        lines = [f"case {self.id}: " + ("passed" if self.passed else "FAILED")]
        lines.extend(f"  - {f}" for f in self.failures)
        for turn in self.turns:
            for claim in turn.claims:
                if claim.label != "supported":
                    rules = (
                        f" ({'; '.join(claim.joint.rules)})"
                        if claim.joint and claim.joint.rules
                        else ""
                    )
                    lines.append(f"  [{claim.label}] {claim.text[:160]}{rules}")
        return "\n".join(lines)


class SuiteInfo(BaseModel):
    name: str
    path: str | None = None
    cases_total: int
    cases_run: int
    limit: int | None = None
    tags: list[str] = Field(default_factory=list)


class RunReport(BaseModel):
    """Everything about one run; the JSON report is this model."""

    suite: SuiteInfo
    system: SystemInfo
    judge: JudgeInfo
    metrics: dict[str, Aggregate]
    thresholds: list[ThresholdResult] = Field(default_factory=list)
    thresholds_file: str | None = None
    failure_categories: dict[str, int] = Field(
        default_factory=dict,
        description="Answers failing each way (refused, not citing its page, low recall, ...).",
    )
    cases: list[CaseResult]
    started_at: str
    elapsed_s: float
    resamples: int
    seed: int
    pairs_judged: int = 0
    pairs_quoted: int = Field(
        default=0, description="Pairs settled by verbatim containment, before any judge."
    )
    extractive: bool = Field(
        default=True, description="Whether verbatim quotes were settled by containment."
    )
    command: str | None = None

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.thresholds)

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]


# ------------------------------------------------------------------------------ systems


@dataclass
class TurnOutcome:
    turn: int
    question: str
    answer: AnswerRecord | None = None
    error: str | None = None


class System(Protocol):
    name: str

    def info(self) -> dict[str, Any]: ...

    def answer_case(self, case: Case) -> list[TurnOutcome]: ...


def _error_text(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


class AssistantSystem:
    """Anything with ``ask(question, session=Session())`` returning an ``Answer``."""

    def __init__(self, assistant: Any, name: str = "cliniq", details: dict[str, Any] | None = None):
        self.assistant = assistant
        self.name = name
        self.details = details or {}

    def info(self) -> dict[str, Any]:
        verifier = getattr(self.assistant, "verifier", None)
        out = dict(self.details)
        if verifier is not None:
            judge = getattr(verifier, "judge", None)
            out.setdefault("verifier", judge_info(judge).model_dump() if judge else None)
            out.setdefault("verify_threshold", getattr(verifier, "threshold", None))
        settings = getattr(self.assistant, "settings", None)
        if settings is not None:
            out.setdefault("retrieval", settings.retrieval.model_dump(mode="json"))
            out.setdefault("answer", settings.answer.model_dump(mode="json"))
        return out

    def _lookup(self, chunk_ids: list[str]) -> list[PassageRecord]:
        """Cited chunks the answer did not list, read back from the index."""
        index = getattr(self.assistant, "index", None)
        if index is None:
            return []
        return [passage_record(c, rank=1) for c in index.get(chunk_ids)]

    def answer_case(self, case: Case) -> list[TurnOutcome]:
        from assistant.conversation import Session

        session = Session()
        out = []
        for turn, question in enumerate(case.questions):
            started = time.perf_counter()
            try:
                answer = self.assistant.ask(question, session=session)
            except Exception as exc:  # one broken case must not end the run
                out.append(TurnOutcome(turn, question, error=_error_text(exc)))
                continue
            ms = (time.perf_counter() - started) * 1000
            record = from_answer(answer, latency_ms=ms, lookup=self._lookup)
            record.system = self.name if record.system == "cliniq-offline" else record.system
            out.append(TurnOutcome(turn, question, answer=record))
        return out


class RecordedSystem:
    """Answers recorded earlier: from the cases themselves (RAGAS fields) or from a file."""

    name = "recorded"

    def __init__(self, answers: dict[str, AnswerRecord], source: str, unmatched: int = 0):
        self.answers = answers
        self.source = source
        self.unmatched = unmatched

    @classmethod
    def from_suite(cls, suite: Suite) -> RecordedSystem:
        answers = {c.id: case_recorded_answer(c) for c in suite.cases if c.has_recorded_answer}
        if not answers:
            raise SystemUnavailableError(
                f"suite {suite.name!r} has no recorded answers (no case has a 'response'); "
                "pass --recorded FILE"
            )
        return cls(answers, source=str(suite.path or suite.name))

    @classmethod
    def from_file(cls, path: Path | str, suite: Suite) -> RecordedSystem:
        items = load_recorded(path)
        answers, unmatched = match_recorded(suite.cases, items)
        if not answers:
            raise SystemUnavailableError(
                f"{path}: none of its {len(items)} answers matches a case of {suite.name!r} "
                "(matched by 'id', else by the text of the case's last question)"
            )
        return cls(answers, source=str(path), unmatched=len(unmatched))

    def info(self) -> dict[str, Any]:
        systems = sorted({a.system for a in self.answers.values()})
        return {
            "source": self.source,
            "answers": len(self.answers),
            "unmatched_answers": self.unmatched,
            "recorded_systems": systems,
        }

    def answer_case(self, case: Case) -> list[TurnOutcome]:
        last = len(case.questions) - 1
        answer = self.answers.get(case.id)
        if answer is None:
            return [TurnOutcome(last, case.questions[-1], error="no recorded answer for this case")]
        return [TurnOutcome(last, case.questions[-1], answer=answer)]


def _prepare(
    settings: Any,
    corpus: Path | None,
    embedder: Any,
    verifier_judge: str | None,
    ingest: bool,
) -> tuple[Any, Any, dict[str, Any]]:
    """Shared by both cliniq systems: the model, the index of the corpus, the verifier."""
    from assistant.verify import Verifier
    from ingest.embedding import get_embedder
    from ingest.pipeline import ingest_paths

    embedder = embedder or get_embedder(settings.embedding)
    details: dict[str, Any] = {"index_dir": str(settings.store.index_dir)}
    if ingest and corpus is not None:
        if not Path(corpus).exists():
            raise SystemUnavailableError(f"corpus not found: {corpus}")
        report = ingest_paths([Path(corpus)], settings, embedder=embedder)
        if not report.documents_ingested:
            raise SystemUnavailableError(f"nothing could be ingested from {corpus}")
        details.update(corpus=str(corpus), documents=report.documents_ingested)
    verifier = None
    if verifier_judge and verifier_judge != "default":
        judge = resolve_judge(verifier_judge, settings, embedder)
        verifier = Verifier(judge, settings.answer.verify_threshold)
    return embedder, verifier, details


def _verifier_unavailable(exc: Exception) -> CliniqError:
    from assistant.support import JudgeUnavailableError

    return JudgeUnavailableError(
        f"the assistant verifies its sentences with the default support judge, which is "
        f"unavailable here ({exc}). Evaluate it with another verifier via "
        "--assistant-judge NAME (e.g. clinical-rules); the report records which."
    )


def build_cliniq(
    settings: Any,
    corpus: Path | None = None,
    *,
    embedder: Any = None,
    verifier_judge: str | None = None,
    ingest: bool = True,
) -> AssistantSystem:
    """The offline assistant over an index of ``corpus`` (ingested incrementally: seconds)."""
    from assistant.engine import Assistant
    from assistant.support import JudgeUnavailableError

    embedder, verifier, details = _prepare(settings, corpus, embedder, verifier_judge, ingest)
    try:
        assistant = Assistant(settings, embedder=embedder, verifier=verifier)
    except JudgeUnavailableError as exc:
        raise _verifier_unavailable(exc) from None
    return AssistantSystem(assistant, name="cliniq", details=details)


def build_cliniq_llm(
    settings: Any,
    corpus: Path | None = None,
    *,
    embedder: Any = None,
    verifier_judge: str | None = None,
    ingest: bool = True,
) -> AssistantSystem:
    """The LLM answerer (``assistant.generate.LLMAssistant``) at CLINIQ_LLM__BASE_URL."""
    if not os.environ.get("CLINIQ_LLM__BASE_URL"):
        raise SystemUnavailableError(
            "cliniq-llm needs an OpenAI-compatible endpoint: set CLINIQ_LLM__BASE_URL "
            "(e.g. http://127.0.0.1:8080/v1) and, if needed, CLINIQ_LLM__MODEL"
        )
    try:
        module = importlib.import_module("assistant.generate")
        factory = module.LLMAssistant
    except (ImportError, AttributeError) as exc:
        raise SystemUnavailableError(
            f"cliniq-llm needs the LLM answerer (assistant.generate.LLMAssistant), which cannot "
            f"be imported here ({exc}); install the extra: pip install -e '.[llm]'"
        ) from None
    from assistant.support import JudgeUnavailableError
    from assistant.support.llm import endpoint_reachable

    if not endpoint_reachable(settings.llm, 3.0):
        raise SystemUnavailableError(
            f"no LLM endpoint answers at {settings.llm.base_url} (CLINIQ_LLM__BASE_URL); "
            "start the server or fix the URL"
        )
    embedder, verifier, details = _prepare(settings, corpus, embedder, verifier_judge, ingest)
    try:
        llm = factory(settings, embedder=embedder, verifier=verifier)
    except JudgeUnavailableError as exc:
        raise _verifier_unavailable(exc) from None
    details["llm"] = {"base_url": settings.llm.base_url, "model": settings.llm.model}
    return AssistantSystem(llm, name="cliniq-llm", details=details)


# ------------------------------------------------------------------------------ judges


def judge_info(judge: Any) -> JudgeInfo:
    settings = getattr(judge, "settings", None)
    values = settings() if callable(settings) else {}
    return JudgeInfo(
        name=str(getattr(judge, "name", type(judge).__name__)),
        version=str(getattr(judge, "version", "?")),
        settings={
            k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in values.items()
        },
    )


def resolve_judge(name: str | None, settings: Any = None, model: Any = None) -> Any:
    """A judge by name ('default' = the assistant's own), with a message naming the others."""
    from assistant.support import JudgeUnavailableError, available_judges, default_judge

    factories = available_judges(settings, model)
    if name in (None, "", "default"):
        try:
            return default_judge(settings, model)
        except JudgeUnavailableError as exc:
            raise JudgeUnavailableError(
                f"the default support judge is unavailable here ({exc}); choose one with "
                f"--judge: {', '.join(factories)}"
            ) from None
    if name not in factories:
        raise SystemUnavailableError(
            f"unknown or unavailable judge {name!r}; available here: {', '.join(factories)}"
        )
    return factories[name]()


# ------------------------------------------------------------------------------ scoring


def _turn_label(case: Case, turn: int) -> str:
    if len(case.questions) == 1:
        return ""
    question = case.questions[turn]
    short = question if len(question) <= 60 else question[:57] + "..."
    return f"turn {turn + 1} ({short!r}): "


def expectation_failures(answer: AnswerRecord, exp: Expectations | None) -> list[str]:
    """The case-level checks: deterministic, so a failure here is a fact, not a judgement."""
    failures: list[str] = []
    for claim in answer.claims:
        failures.extend(
            f"citation error in {claim.text[:80]!r}: {e}" for e in claim.citation_errors
        )
    if exp is None:
        return failures
    if exp.answerable is True and answer.abstained:
        why = answer.abstention_reason or "refused"
        failures.append(f"expected an answer, got a refusal: {why}")
    if exp.answerable is False and not answer.abstained:
        first = answer.claims[0].text if answer.claims else answer.text.split("\n")[0]
        failures.append(
            f"expected a refusal (the sources do not cover this), got an answer: {first[:120]!r}"
        )
    text = normalize_text(answer.text)
    for fact in exp.must_include:
        if not any(normalize_text(p) in text for p in fact):
            failures.append("missing fact: " + " | ".join(repr(p) for p in fact))
    for phrase in exp.must_not_include:
        if normalize_text(phrase) in text:
            failures.append(f"forbidden phrase present: {phrase!r}")
    if exp.expected_normalization and answer.normalization is not None:
        failures.extend(normalization_check(answer, exp.expected_normalization))
    if exp.answering_document and exp.answerable is not False and not answer.abstained:
        by_id = {p.id: p.document_id for p in answer.passages}
        cited = {by_id.get(c) for claim in answer.claims for c in claim.citations}
        if exp.answering_document not in cited:
            failures.append(
                f"the answering document {exp.answering_document} is not cited by any sentence"
            )
    if exp.expected_documents and any(p.document_id for p in answer.passages):
        seen = {p.document_id for p in answer.passages if p.listed}
        if not seen & set(exp.expected_documents):
            failures.append(
                "none of the expected documents was retrieved: " + ", ".join(exp.expected_documents)
            )
    return failures


def score_case(
    case: Case,
    outcomes: Sequence[TurnOutcome],
    judging: ClaimJudging,
    metrics: Sequence[Metric],
    elapsed_s: float = 0.0,
) -> CaseResult:
    result = CaseResult(id=case.id, tags=case.tags, case=case, elapsed_s=round(elapsed_s, 3))
    for outcome in outcomes:
        exp = case.expectations_for(outcome.turn)
        turn = TurnResult(
            turn=outcome.turn,
            question=outcome.question,
            answer=outcome.answer,
            error=outcome.error,
            expectations=exp,
        )
        if outcome.answer is not None:
            turn.claims = judging.judge_answer(outcome.answer)
            turn.failures = expectation_failures(outcome.answer, exp)
        else:
            turn.failures = [f"no answer: {outcome.error}"]
        last = outcome.turn == len(case.questions) - 1
        sample = Sample(
            case.id,
            outcome.turn,
            outcome.answer,
            exp,
            turn.claims,
            reference=case.reference if last else None,
        )
        turn.scores = {m.name: m.score(sample) for m in metrics}
        label = _turn_label(case, outcome.turn)
        result.failures.extend(label + f for f in turn.failures)
        result.turns.append(turn)
    return result


def aggregate_run(
    cases: Sequence[CaseResult], metrics: Sequence[Metric], resamples: int, seed: int
) -> dict[str, Aggregate]:
    out: dict[str, Aggregate] = {}
    for metric in metrics:
        scores = [t.scores[metric.name] for c in cases for t in c.turns if metric.name in t.scores]
        out[metric.name] = aggregate(metric, scores, resamples=resamples, seed=seed)
    passed = [float(c.passed) for c in cases]
    value, lo, hi = bootstrap_ci(passed, [1.0] * len(passed), passed, "macro", resamples, seed)
    out[CASE_PASS_RATE] = Aggregate(
        name=CASE_PASS_RATE,
        description="cases meeting every expectation (facts, refusal, reading, sources)",
        value=value,
        ci_low=lo,
        ci_high=hi,
        n=len(passed),
        numerator=sum(passed),
        denominator=len(passed),
        aggregation="macro",
    )
    return out


def metric_names(metrics: Sequence[Metric] | None = None) -> list[str]:
    return [m.name for m in (metrics or default_metrics())] + [CASE_PASS_RATE]


def run_suite(
    suite: Suite,
    system: System,
    judge: Any,
    *,
    metrics: Sequence[Metric] | None = None,
    thresholds: Sequence[Threshold] = (),
    thresholds_file: str | None = None,
    limit: int | None = None,
    tags: Sequence[str] = (),
    resamples: int = 1000,
    seed: int = 0,
    extractive: bool = True,
    progress: Callable[[CaseResult], None] | None = None,
    command: str | None = None,
) -> RunReport:
    """Answer, judge and score every selected case; aggregate; check the thresholds."""
    if judge is None:
        raise SuiteError("a support judge is needed to score claims (see --judge)")
    metrics = list(metrics or default_metrics())
    cases = suite.select(limit, tags)
    if not cases:
        raise SuiteError(f"no case of {suite.name!r} matches the selection (tags: {list(tags)})")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    judging = ClaimJudging(judge, extractive=extractive)
    results = []
    for case in cases:
        c0 = time.perf_counter()
        outcomes = system.answer_case(case)
        result = score_case(case, outcomes, judging, metrics, time.perf_counter() - c0)
        results.append(result)
        if progress:
            progress(result)
    aggregates = aggregate_run(results, metrics, resamples, seed)
    return RunReport(
        suite=SuiteInfo(
            name=suite.name,
            path=str(suite.path) if suite.path else None,
            cases_total=len(suite.cases),
            cases_run=len(cases),
            limit=limit,
            tags=list(tags),
        ),
        system=SystemInfo(name=system.name, details=system.info()),
        judge=judge_info(judge),
        metrics=aggregates,
        thresholds=check_thresholds(thresholds, aggregates),
        thresholds_file=thresholds_file,
        failure_categories=failure_categories([t.scores for c in results for t in c.turns]),
        cases=results,
        started_at=started_at,
        elapsed_s=round(time.perf_counter() - t0, 2),
        resamples=resamples,
        seed=seed,
        pairs_judged=judging.pairs_judged,
        pairs_quoted=judging.pairs_quoted,
        extractive=extractive,
        command=command,
    )
