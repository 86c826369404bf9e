"""Metrics: each a small class that checks its inputs, then works in named steps.

Faithfulness follows RAGAS (claims -> verdicts -> supported / all), judged against the passages
each sentence cites. Citation recall and precision follow ALCE (Gao et al., 2023): a sentence is
recalled when the concatenation of its cited passages supports it; a citation is imprecise when
the sentence is not recalled, or when the passage alone does not support the sentence while the
other citations do. Verdicts come from ``assistant.support`` judges, the same ones the assistant
verifies itself with. Each aggregate carries a bootstrap 95% interval (fixed seed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field, computed_field

from assistant.support import SupportLabel, SupportVerdict
from evals.records import AnswerRecord, normalize_text
from evals.suite import Expectations

Aggregation = Literal["micro", "macro", "sum", "p50", "p95"]
EXCERPT_CHARS = 300


class MetricInputError(ValueError):
    """A metric was given a sample it cannot score; the message says what is missing."""


# ------------------------------------------------------------------------------ judging


class JudgedClaim(BaseModel):
    """One claim with every verdict the metrics need, kept for the report."""

    text: str
    kind: str
    citations: list[str] = Field(default_factory=list)
    citation_errors: list[str] = Field(default_factory=list)
    joint: SupportVerdict | None = Field(
        default=None, description="Verdict against the concatenation of the cited passages."
    )
    single: dict[str, SupportVerdict] = Field(
        default_factory=dict, description="Passage id -> verdict against that passage alone."
    )
    without: dict[str, SupportVerdict] = Field(
        default_factory=dict, description="Passage id -> verdict against the other citations."
    )
    supporting_passage: str | None = Field(
        default=None, description="The cited passage that best supports the claim, if any."
    )
    excerpt: str | None = Field(
        default=None, description="The supporting sentence the judge found, or the passage start."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """supported | not_supported | contradicted, or 'uncited' when nothing valid is cited."""
        return str(self.joint.label) if self.joint is not None else "uncited"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float | None:
        return round(self.joint.score, 4) if self.joint is not None else None

    @property
    def supported(self) -> bool:
        return self.joint is not None and self.joint.label == SupportLabel.supported

    @property
    def contradicted(self) -> bool:
        return self.joint is not None and self.joint.label == SupportLabel.contradicted

    def precise(self, passage_id: str) -> bool:
        """ALCE: precise unless not recalled, or irrelevant (others suffice, it alone does not)."""
        if not self.supported:
            return False
        if len(self.citations) == 1:
            return True
        alone = self.single.get(passage_id)
        if alone is not None and alone.label == SupportLabel.supported:
            return True
        others = self.without.get(passage_id)
        return not (others is not None and others.label == SupportLabel.supported)

    def locate_support(self, texts: dict[str, str]) -> None:
        """Fill ``supporting_passage`` and ``excerpt`` for the report."""
        if self.joint is None:
            return
        best = None
        if self.single:
            best = max(self.single, key=lambda k: self.single[k].score)
        elif self.citations:
            best = self.citations[0]
        self.supporting_passage = best if self.supported else None
        evidence = self.joint.evidence
        if best is not None and best in self.single and self.single[best].evidence:
            evidence = self.single[best].evidence
        if not evidence and best is not None:
            evidence = texts.get(best, "")[:EXCERPT_CHARS]
        self.excerpt = evidence


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def extractive_verdict(claim: str, passage: str) -> SupportVerdict | None:
    """A claim that quotes its passage verbatim is supported by containment, no judge needed.

    The quote may end in a '(strong recommendation; moderate certainty of evidence)' clause, whose
    words must then be the passage's own. The same rule as the assistant's verifier
    (``assistant.verify``), so a quote is never at the mercy of a judge's paraphrase model.
    """
    from assistant.verify import extractive_core, grading_supported

    core = extractive_core(claim)
    if len(core) <= 20 or _squash(core) not in _squash(passage):
        return None
    ok = grading_supported(claim, passage)
    return SupportVerdict(
        label=SupportLabel.supported if ok else SupportLabel.not_supported,
        score=1.0 if ok else 0.0,
        contradiction=0.0,
        judge="extractive",
        rules=[] if ok else ["grading-not-in-passage"],
        evidence=core,
    )


class ClaimJudging:
    """The 'verdicts' step: judge each claim against what it cites, in few batched calls.

    Only the pairs ALCE needs are judged: every claim against the concatenation of its
    citations; for a supported claim with several citations, each passage alone; and, where a
    passage alone does not support it, the other citations together. Verdicts are memoised by
    (claim, passage text), so a passage cited twice is judged once. With ``extractive`` (the
    default), a verbatim quote of the passage is settled by containment before any judge.
    """

    def __init__(self, judge: Any, extractive: bool = True) -> None:
        self.judge = judge
        self.extractive = extractive
        self.memo: dict[tuple[str, str], SupportVerdict] = {}
        self.pairs_judged = 0
        self.pairs_quoted = 0

    def _run(self, pairs: Sequence[tuple[str, str]]) -> None:
        todo = list(dict.fromkeys(p for p in pairs if p not in self.memo))
        if self.extractive:
            for pair in todo:
                verdict = extractive_verdict(*pair)
                if verdict is not None:
                    self.memo[pair] = verdict
                    self.pairs_quoted += 1
            todo = [p for p in todo if p not in self.memo]
        if not todo:
            return
        verdicts = self.judge.judge_many(todo)
        if len(verdicts) != len(todo):
            raise MetricInputError(
                f"judge {getattr(self.judge, 'name', '?')} returned {len(verdicts)} verdicts "
                f"for {len(todo)} pairs"
            )
        self.pairs_judged += len(todo)
        self.memo.update(zip(todo, verdicts, strict=True))

    def judge_answer(self, answer: AnswerRecord) -> list[JudgedClaim]:
        texts = {p.id: p.judged_text() for p in answer.passages}
        claims = [
            JudgedClaim(
                text=c.text,
                kind=c.kind,
                citations=[i for i in c.citations if i in texts],
                citation_errors=list(c.citation_errors)
                + [
                    f"cited passage {i} is not in the answer" for i in c.citations if i not in texts
                ],
            )
            for c in answer.claims
        ]

        def joined(ids: Sequence[str]) -> str:
            return "\n".join(texts[i] for i in ids)

        self._run([(c.text, joined(c.citations)) for c in claims if c.citations])
        for c in claims:
            if c.citations:
                c.joint = self.memo[(c.text, joined(c.citations))]
        multi = [c for c in claims if c.supported and len(c.citations) > 1]
        self._run([(c.text, texts[i]) for c in multi for i in c.citations])
        for c in multi:
            c.single = {i: self.memo[(c.text, texts[i])] for i in c.citations}
        loo = [
            (c, i, [j for j in c.citations if j != i])
            for c in multi
            for i in c.citations
            if c.single[i].label != SupportLabel.supported
        ]
        self._run([(c.text, joined(rest)) for c, _, rest in loo])
        for c, i, rest in loo:
            c.without[i] = self.memo[(c.text, joined(rest))]
        for c in claims:
            c.locate_support(texts)
        return claims


# ------------------------------------------------------------------------------ samples


@dataclass
class Sample:
    """One answered question: what a metric scores."""

    case_id: str
    turn: int
    answer: AnswerRecord | None
    expectations: Expectations | None = None
    claims: list[JudgedClaim] | None = None


class SampleScore(BaseModel):
    """A metric's result on one sample, with its named steps and per-item details."""

    value: float | None = None
    numerator: float = 0.0
    denominator: float = 0.0
    steps: dict[str, Any] = Field(default_factory=dict)
    details: list[dict[str, Any]] = Field(default_factory=list)
    skipped: str | None = Field(default=None, description="Why the metric does not apply.")


class Metric:
    """Base: ``missing()`` names absent inputs; ``score()`` skips or runs ``_score()``."""

    name: ClassVar[str]
    description: ClassVar[str]
    aggregation: ClassVar[Aggregation] = "micro"
    higher_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = "fraction"
    needs_verdicts: ClassVar[bool] = False

    def missing(self, sample: Sample) -> list[str]:
        return [] if sample.answer is not None else ["an answer (the system raised an error)"]

    def score(self, sample: Sample) -> SampleScore:
        missing = self.missing(sample)
        if missing:
            return SampleScore(skipped="needs " + "; ".join(missing))
        if self.needs_verdicts and sample.claims is None:
            raise MetricInputError(
                f"{self.name} needs claim verdicts: judge the answer (ClaimJudging) first"
            )
        return self._score(sample)

    def _score(self, sample: Sample) -> SampleScore:  # pragma: no cover - abstract
        raise NotImplementedError


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _claim_detail(claim: JudgedClaim) -> dict[str, Any]:
    return {
        "claim": claim.text,
        "label": claim.label,
        "score": claim.score,
        "supporting_passage": claim.supporting_passage,
        "rules": claim.joint.rules if claim.joint else [],
    }


class _ClaimMetric(Metric):
    needs_verdicts = True

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and not sample.answer.claims:
            out.append(
                "content sentences (the answer is a refusal)"
                if sample.answer.abstained
                else "content sentences (the answer has none)"
            )
        return out


class Faithfulness(_ClaimMetric):
    """RAGAS faithfulness, claim level: claims supported by their cited passages / claims."""

    name = "faithfulness"
    description = "content sentences supported by the passages they cite"

    def _score(self, sample: Sample) -> SampleScore:
        claims = sample.claims or []  # step 1: claims
        verdicts = [c.label for c in claims]  # step 2: verdicts
        supported = sum(c.supported for c in claims)  # step 3: score
        return SampleScore(
            value=_ratio(supported, len(claims)),
            numerator=supported,
            denominator=len(claims),
            steps={
                "claims": len(claims),
                "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
                "supported": supported,
            },
            details=[_claim_detail(c) for c in claims if not c.supported],
        )


class ContradictionRate(_ClaimMetric):
    """Claims their own cited passages contradict / claims."""

    name = "contradiction_rate"
    description = "content sentences contradicted by the passages they cite"
    higher_is_better = False

    def _score(self, sample: Sample) -> SampleScore:
        claims = sample.claims or []
        bad = [c for c in claims if c.contradicted]
        return SampleScore(
            value=_ratio(len(bad), len(claims)),
            numerator=len(bad),
            denominator=len(claims),
            steps={"claims": len(claims), "contradicted": len(bad)},
            details=[_claim_detail(c) for c in bad],
        )


class UnsupportedRate(_ClaimMetric):
    """Claims their cited passages neither support nor contradict / claims: the other failure,
    reported apart from contradiction so that a wrong claim and an unbacked one are not mixed."""

    name = "unsupported_rate"
    description = "content sentences their cited passages do not support (and do not contradict)"
    higher_is_better = False

    def _score(self, sample: Sample) -> SampleScore:
        claims = sample.claims or []
        bad = [c for c in claims if c.label == "not_supported"]
        return SampleScore(
            value=_ratio(len(bad), len(claims)),
            numerator=len(bad),
            denominator=len(claims),
            steps={"claims": len(claims), "not_supported": len(bad)},
            details=[_claim_detail(c) for c in bad],
        )


class CitationRecall(_ClaimMetric):
    """ALCE citation recall: sentences whose cited passages, concatenated, support them."""

    name = "citation_recall"
    description = "ALCE: sentences supported by the concatenation of their citations (mean/answer)"
    aggregation = "macro"

    def _score(self, sample: Sample) -> SampleScore:
        claims = sample.claims or []
        recalled = [c for c in claims if c.citations and c.supported]
        return SampleScore(
            value=_ratio(len(recalled), len(claims)),
            numerator=len(recalled),
            denominator=len(claims),
            steps={
                "sentences": len(claims),
                "uncited": sum(not c.citations for c in claims),
                "recalled": len(recalled),
            },
            details=[
                {"claim": c.text, "recalled": c.supported, "citations": c.citations}
                for c in claims
                if not c.supported
            ],
        )


class CitationPrecision(_ClaimMetric):
    """ALCE citation precision: citations that are not irrelevant to their sentence."""

    name = "citation_precision"
    description = "ALCE: citations not irrelevant to their sentence (mean per answer)"
    aggregation = "macro"

    def _score(self, sample: Sample) -> SampleScore:
        claims = sample.claims or []
        total = sum(len(c.citations) for c in claims)
        details = []
        precise = 0
        for claim in claims:
            for pid in claim.citations:
                ok = claim.precise(pid)
                precise += ok
                if not ok:
                    reason = (
                        "sentence not supported by its citations"
                        if not claim.supported
                        else "irrelevant: the other citations support it, this one alone does not"
                    )
                    details.append({"claim": claim.text, "passage": pid, "reason": reason})
        # ALCE scores an answer that cites nothing as 0, not as missing.
        return SampleScore(
            value=precise / total if total else 0.0,
            numerator=precise,
            denominator=total,
            steps={"citations": total, "precise": precise},
            details=details,
        )


class _ExpectationMetric(Metric):
    expectation: ClassVar[str]

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        exp = sample.expectations
        value = getattr(exp, self.expectation) if exp is not None else None
        if value is None or value == []:
            out.append(f"'{self.expectation}' in the case")
        return out


def _retrieved(answer: AnswerRecord) -> list[Any]:
    """The answer's own passages in rank order (not chunks it cites without listing them)."""
    return sorted((p for p in answer.passages if p.listed), key=lambda p: p.rank)


class RetrievalRecall(_ExpectationMetric):
    """Expected documents found among the answer's first k passages (document level)."""

    name = "retrieval_recall"
    description = "expected documents among the first k passages"
    aggregation = "macro"
    expectation = "expected_documents"

    def __init__(self, k: int = 8) -> None:
        self.k = k
        self.name = f"retrieval_recall@{k}"  # type: ignore[misc]
        self.description = f"expected documents among the first {k} passages"  # type: ignore[misc]

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and not any(p.document_id for p in sample.answer.passages):
            out.append("document ids of the retrieved passages (retrieved_document_ids)")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        expected = list(dict.fromkeys(sample.expectations.expected_documents))
        ranked = _retrieved(sample.answer)[: self.k]
        seen = {p.document_id for p in ranked}
        found = [d for d in expected if d in seen]
        return SampleScore(
            value=len(found) / len(expected),
            numerator=len(found),
            denominator=len(expected),
            steps={"k": self.k, "expected": expected, "found": found},
            details=[{"missing_document": d} for d in expected if d not in seen],
        )


class MeanReciprocalRank(RetrievalRecall):
    """1 / rank of the first passage from an expected document (0 when none is retrieved)."""

    name = "mrr"
    description = "1/rank of the first passage from an expected document"

    def __init__(self) -> None:
        self.k = 0
        self.name = "mrr"  # type: ignore[misc]
        self.description = MeanReciprocalRank.description  # type: ignore[misc]

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        expected = set(sample.expectations.expected_documents)
        ranked = _retrieved(sample.answer)
        first = next((i for i, p in enumerate(ranked, start=1) if p.document_id in expected), None)
        value = 1.0 / first if first else 0.0
        return SampleScore(
            value=value,
            numerator=value,
            denominator=1,
            steps={"first_relevant_rank": first},
        )


def _contains(haystack: str, phrase: str) -> bool:
    return normalize_text(phrase) in haystack


class MustIncludeRecall(_ExpectationMetric):
    """Required facts found in the answer (any phrasing of a fact counts)."""

    name = "must_include_recall"
    description = "required facts present in the answer"
    expectation = "must_include"

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        text = normalize_text(sample.answer.text)
        facts = sample.expectations.must_include
        found = [any(_contains(text, p) for p in fact) for fact in facts]
        return SampleScore(
            value=sum(found) / len(facts),
            numerator=sum(found),
            denominator=len(facts),
            steps={"facts": len(facts), "found": sum(found)},
            details=[
                {"missing_fact": fact} for fact, ok in zip(facts, found, strict=True) if not ok
            ],
        )


class MustNotIncludeViolations(_ExpectationMetric):
    """Forbidden phrases that appear in the answer (a count; 0 is the goal)."""

    name = "must_not_include_violations"
    description = "forbidden phrases present in the answer (count)"
    aggregation = "sum"
    higher_is_better = False
    unit = "count"
    expectation = "must_not_include"

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        text = normalize_text(sample.answer.text)
        phrases = sample.expectations.must_not_include
        present = [p for p in phrases if _contains(text, p)]
        details = []
        for phrase in present:
            at = text.find(normalize_text(phrase))
            details.append({"phrase": phrase, "context": text[max(0, at - 60) : at + 100]})
        return SampleScore(
            value=float(len(present)),
            numerator=len(present),
            denominator=len(phrases),
            steps={"phrases": len(phrases), "present": len(present)},
            details=details,
        )


def normalization_check(answer: AnswerRecord, expected: Any) -> list[str]:
    """Reasons the question was not read as expected (empty when it was)."""
    norm = answer.normalization
    reasons = []
    if expected.concept:
        wanted = expected.concept.casefold()
        have = [c.casefold() for c in (norm.concepts + norm.canonical)] if norm else []
        if wanted not in have:
            got = ", ".join(norm.concepts) if norm and norm.concepts else "no concept"
            reasons.append(f"expected the question to be read as {expected.concept!r}; got {got}")
    notes = normalize_text(" ".join(norm.notes)) if norm else ""
    for part in expected.note_contains:
        if normalize_text(part) not in notes:
            reasons.append(f"no note mentions {part!r}")
    return reasons


class NormalizationAccuracy(_ExpectationMetric):
    """Questions read as the expected concept, with the expected note."""

    name = "normalization_accuracy"
    description = "questions read as the expected concept (and noted as such)"
    aggregation = "macro"
    expectation = "expected_normalization"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and sample.answer.normalization is None:
            out.append("the system's reading of the question (cliniq answers carry it)")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        reasons = normalization_check(sample.answer, sample.expectations.expected_normalization)
        norm = sample.answer.normalization
        return SampleScore(
            value=0.0 if reasons else 1.0,
            numerator=0.0 if reasons else 1.0,
            denominator=1,
            steps={"concepts": norm.concepts if norm else [], "correct": not reasons},
            details=[{"reason": r} for r in reasons],
        )


class _AbstentionMetric(_ExpectationMetric):
    expectation = "answerable"

    def outcome(self, sample: Sample) -> str:
        assert sample.answer is not None and sample.expectations is not None
        answerable, refused = sample.expectations.answerable, sample.answer.abstained
        if answerable:
            return "wrong_refusal" if refused else "answered"
        return "correct_refusal" if refused else "missed_refusal"


class AbstentionAccuracy(_AbstentionMetric):
    """Answered when the sources cover it, refused when they do not."""

    name = "abstention_accuracy"
    description = "answered the answerable, refused the rest"
    aggregation = "macro"

    def _score(self, sample: Sample) -> SampleScore:
        outcome = self.outcome(sample)
        ok = outcome in {"answered", "correct_refusal"}
        return SampleScore(
            value=float(ok),
            numerator=float(ok),
            denominator=1,
            steps={
                "answerable": sample.expectations.answerable if sample.expectations else None,
                "abstained": sample.answer.abstained if sample.answer else None,
                "outcome": outcome,
            },
        )


class _RefusalCount(_AbstentionMetric):
    aggregation = "sum"
    unit = "count"
    counts: ClassVar[str]

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        exp = sample.expectations
        if not out and exp is not None and exp.answerable is (self.counts == "correct_refusal"):
            out.append("a case of the other kind (answerable: %s)" % (not exp.answerable))
        return out

    def _score(self, sample: Sample) -> SampleScore:
        hit = self.outcome(sample) == self.counts
        return SampleScore(
            value=float(hit),
            numerator=float(hit),
            denominator=1,
            steps={"outcome": self.outcome(sample)},
        )


class CorrectRefusals(_RefusalCount):
    """Unanswerable questions the system refused (count, of the unanswerable ones)."""

    name = "correct_refusals"
    description = "unanswerable questions refused (count)"
    counts = "correct_refusal"


class WrongRefusals(_RefusalCount):
    """Answerable questions the system refused (count; 0 is the goal)."""

    name = "wrong_refusals"
    description = "answerable questions refused (count)"
    higher_is_better = False
    counts = "wrong_refusal"


class CitationErrors(Metric):
    """Citation markers that name no retrieved passage (count; 0 is the goal)."""

    name = "citation_errors"
    description = "citations naming no retrieved passage (count)"
    aggregation = "sum"
    higher_is_better = False
    unit = "count"

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None
        claims: Sequence[Any] = sample.claims if sample.claims is not None else sample.answer.claims
        errors = [(c.text, e) for c in claims for e in c.citation_errors]
        return SampleScore(
            value=float(len(errors)),
            numerator=len(errors),
            denominator=len(sample.answer.claims),
            steps={"errors": len(errors)},
            details=[{"claim": t, "error": e} for t, e in errors],
        )


class Latency(Metric):
    """Answer time percentile over answered questions."""

    unit = "ms"
    higher_is_better = False

    def __init__(self, percentile: Literal[50, 95]) -> None:
        self.aggregation = "p50" if percentile == 50 else "p95"  # type: ignore[misc]
        self.name = f"latency_p{percentile}_ms"  # type: ignore[misc]
        self.description = f"answer time, {percentile}th percentile (ms)"  # type: ignore[misc]

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and sample.answer.latency_ms is None:
            out.append("the answer's latency (latency_ms)")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.answer.latency_ms is not None
        ms = float(sample.answer.latency_ms)
        return SampleScore(value=ms, numerator=ms, denominator=1, steps={"latency_ms": ms})


def default_metrics(k: int = 8) -> list[Metric]:
    return [
        Faithfulness(),
        ContradictionRate(),
        UnsupportedRate(),
        CitationRecall(),
        CitationPrecision(),
        RetrievalRecall(k),
        MeanReciprocalRank(),
        MustIncludeRecall(),
        MustNotIncludeViolations(),
        NormalizationAccuracy(),
        AbstentionAccuracy(),
        CorrectRefusals(),
        WrongRefusals(),
        CitationErrors(),
        Latency(50),
        Latency(95),
    ]


# ------------------------------------------------------------------------------ aggregation


class Aggregate(BaseModel):
    """A metric over a run: point estimate, bootstrap 95% interval, and what went in."""

    name: str
    description: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(description="Samples scored.")
    numerator: float = 0.0
    denominator: float = 0.0
    skipped: int = 0
    skipped_reasons: dict[str, int] = Field(default_factory=dict)
    aggregation: str
    higher_is_better: bool = True
    unit: str = "fraction"


def _statistic(aggregation: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """(num, den, value) arrays of shape (resamples, n) -> one statistic per resample."""

    def micro(num: np.ndarray, den: np.ndarray, _: np.ndarray) -> np.ndarray:
        total = den.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, num.sum(axis=-1) / np.where(total > 0, total, 1), np.nan)

    def macro(_: np.ndarray, __: np.ndarray, val: np.ndarray) -> np.ndarray:
        return val.mean(axis=-1)

    def total(num: np.ndarray, _: np.ndarray, __: np.ndarray) -> np.ndarray:
        return num.sum(axis=-1)

    def pct(q: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        return lambda _, __, val: np.percentile(val, q, axis=-1)

    table = {"micro": micro, "macro": macro, "sum": total, "p50": pct(50), "p95": pct(95)}
    if aggregation not in table:
        raise ValueError(f"unknown aggregation {aggregation!r}; one of {sorted(table)}")
    return table[aggregation]


def bootstrap_ci(
    numerators: Sequence[float],
    denominators: Sequence[float],
    values: Sequence[float],
    aggregation: str,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """(estimate, low, high): percentile bootstrap over samples, deterministic for a seed."""
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    val = np.asarray(values, dtype=np.float64)
    if not len(val):
        return None, None, None
    stat = _statistic(aggregation)
    estimate = float(stat(num, den, val))
    if np.isnan(estimate):
        return None, None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(val), size=(resamples, len(val)))
    stats = stat(num[idx], den[idx], val[idx])
    stats = stats[~np.isnan(stats)]
    if not len(stats):
        return estimate, None, None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return estimate, float(lo), float(hi)


def aggregate(
    metric: Metric, scores: Sequence[SampleScore], resamples: int = 1000, seed: int = 0
) -> Aggregate:
    scored = [s for s in scores if s.skipped is None and s.value is not None]
    reasons: dict[str, int] = {}
    for s in scores:
        if s.skipped:
            reasons[s.skipped] = reasons.get(s.skipped, 0) + 1
    value, lo, hi = bootstrap_ci(
        [s.numerator for s in scored],
        [s.denominator for s in scored],
        [float(s.value) for s in scored if s.value is not None],
        metric.aggregation,
        resamples=resamples,
        seed=seed,
    )
    return Aggregate(
        name=metric.name,
        description=metric.description,
        value=value,
        ci_low=lo,
        ci_high=hi,
        n=len(scored),
        numerator=sum(s.numerator for s in scored),
        denominator=sum(s.denominator for s in scored),
        skipped=len(scores) - len(scored),
        skipped_reasons=reasons,
        aggregation=metric.aggregation,
        higher_is_better=metric.higher_is_better,
        unit=metric.unit,
    )
