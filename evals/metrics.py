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
    reference: str | None = None  # the case's reference answer (last turn only)


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


# ------------------------------------------------------------ general-corpus answer metrics
#
# Answered / refused rates, the answering document cited, reference content-word recall (with
# the top-1 and top-3 retrieved passages as baselines in the same run) and summary defects.
# Each failing sample carries a ``category`` in its details, counted by ``failure_categories``.

#: English function words and question words: never content. Fixed, so figures stay comparable.
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could did do does doing don down during
    each either etc even ever every few for from further get gets got had has have having he her
    here hers herself him himself his how however i if in into is isn it its itself just least
    less let like made make makes many may me might more most much must my myself neither no nor
    not now of off often on once one only or other others otherwise our ours ourselves out over
    own per rather same she should since so some such than that the their theirs them themselves
    then there these they this those though through thus to too under until up upon us usually
    very was we were what when where whether which while who whom whose why will with within
    without would yet you your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed, -ly, -al): 'causes', 'caused', 'causing' ->
    'caus'. Crude and predictable on purpose; the same on both sides of every comparison."""
    for suffix in (
        "ational",
        "ations",
        "ation",
        "ingly",
        "ness",
        "ments",
        "ment",
        "ings",
        "ing",
        "edly",
        "ies",
        "ied",
        "ed",
        "ly",
        "es",
        "s",
        "al",
        "e",
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix in ("ies", "ied"):
                return word[: -len(suffix)] + "y"
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Content words of a text: NFKC, case-folded, split on anything not a letter or digit;
    stopwords and one-letter words dropped (digits kept); each word stemmed (``stem``)."""
    words = _WORD.findall(normalize_text(text))
    return {stem(w) for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def content_recall(reference: str, text: str) -> tuple[float | None, int, int, list[str]]:
    """(share of the reference's content words found in ``text``, found, total, a few missing)."""
    ref = content_words(reference)
    if not ref:
        return None, 0, 0, []
    have = content_words(text)
    found = ref & have
    return len(found) / len(ref), len(found), len(ref), sorted(ref - have)[:12]


def _cited_documents(answer: AnswerRecord) -> list[str]:
    by_id = {p.id: p.document_id for p in answer.passages}
    docs = [by_id.get(c) for claim in answer.claims for c in claim.citations]
    return list(dict.fromkeys(d for d in docs if d))


class _CoveredMetric(Metric):
    """Applies to questions the sources answer (``answerable: true``)."""

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        exp = sample.expectations
        if exp is None or exp.answerable is not True:
            out.append("a covered question (answerable: true)")
        return out


class AnsweredRate(_CoveredMetric):
    """Covered questions answered, not refused."""

    name = "answered_rate"
    description = "covered questions answered (not refused)"
    aggregation = "macro"

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None
        ok = not sample.answer.abstained
        details = (
            []
            if ok
            else [
                {"category": "covered question refused", "reason": sample.answer.abstention_reason}
            ]
        )
        return SampleScore(
            value=float(ok),
            numerator=float(ok),
            denominator=1,
            steps={"abstained": sample.answer.abstained},
            details=details,
        )


class RefusedRate(Metric):
    """Questions the sources do not cover (``answerable: false``) that were refused."""

    name = "refused_rate"
    description = "uncovered (out-of-index) questions refused"
    aggregation = "macro"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        exp = sample.expectations
        if exp is None or exp.answerable is not False:
            out.append("an uncovered question (answerable: false)")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None
        ok = sample.answer.abstained
        details = [] if ok else [{"category": "uncovered question answered"}]
        return SampleScore(
            value=float(ok),
            numerator=float(ok),
            denominator=1,
            steps={"abstained": ok},
            details=details,
        )


class AnsweringDocumentCited(_CoveredMetric):
    """The document the question came from is cited by a content sentence (a refusal: no)."""

    name = "answering_document_cited"
    description = "covered questions whose answer cites the page the question came from"
    aggregation = "macro"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.expectations is not None and not sample.expectations.answering_document:
            out.append("'answering_document' in the case")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        wanted = sample.expectations.answering_document
        cited = _cited_documents(sample.answer)
        ok = wanted in cited
        details = []
        if not ok:
            category = (
                "covered question refused"
                if sample.answer.abstained
                else "answering document not cited"
            )
            details = [{"category": category, "cited": cited[:5]}]
        return SampleScore(
            value=float(ok),
            numerator=float(ok),
            denominator=1,
            steps={"answering_document": wanted, "cited_documents": cited},
            details=details,
        )


class ReferenceRecall(_CoveredMetric):
    """Share of the reference answer's content words (``content_words``) found in the answer's
    content sentences. A refusal has none, so it scores 0: refusing cannot raise the figure."""

    name = "reference_recall"
    description = "reference answer's content words found in the answer's content sentences"
    aggregation = "macro"
    low: ClassVar[float] = 0.7  # a sample below this is listed as 'low reference recall'

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if not sample.reference:
            out.append("a reference answer ('reference' or 'reference_record')")
        return out

    def text(self, answer: AnswerRecord) -> str:
        return "\n".join(c.text for c in answer.claims)

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.reference
        value, found, total, missing = content_recall(sample.reference, self.text(sample.answer))
        if value is None:
            return SampleScore(skipped="needs a reference with content words")
        details = []
        if value < self.low and self.name == ReferenceRecall.name:
            category = (
                "covered question refused"
                if sample.answer.abstained
                else "low reference recall (< 0.7)"
            )
            details = [{"category": category, "missing_words": missing}]
        return SampleScore(
            value=value,
            numerator=found,
            denominator=total,
            steps={"reference_words": total, "found": found},
            details=details,
        )


class TopPassagesRecall(ReferenceRecall):
    """Baseline: the same recall for printing the first k retrieved passages as the answer."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.name = f"reference_recall_top{k}_passages"  # type: ignore[misc]
        self.description = (  # type: ignore[misc]
            f"baseline: reference content words in the first {k} retrieved passage(s)"
        )

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and not _retrieved(sample.answer):
            out.append("retrieved passages")
        return out

    def text(self, answer: AnswerRecord) -> str:
        return "\n".join(p.text for p in _retrieved(answer)[: self.k])


class FirstScreenContent(_CoveredMetric):
    """Gold content in what the reader sees first: the gold span contained (``gold_span``),
    else the reference's content words found (``content_recall``). The first screen is the
    answer's ``first_screen`` when the system gives one, else all its content sentences. A
    refusal shows nothing and scores 0."""

    name = "first_screen_content"
    description = "gold span in the first screen, else reference content words found there"
    aggregation = "macro"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.expectations is not None and not (
            sample.expectations.gold_span or sample.reference
        ):
            out.append("a 'gold_span' or a reference answer")
        return out

    @staticmethod
    def screen(answer: AnswerRecord) -> tuple[str, str]:
        if answer.abstained:
            return "", "refusal"
        if answer.first_screen is not None:
            return answer.first_screen, "first_screen"
        return "\n".join(c.text for c in answer.claims), "all content sentences"

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        text, source = self.screen(sample.answer)
        words = len(text.split())
        span = sample.expectations.gold_span
        if span:
            found = normalize_text(span) in normalize_text(text)
            return SampleScore(
                value=float(found),
                numerator=float(found),
                denominator=1,
                steps={"screen": source, "words": words, "gold_span": span, "found": found},
            )
        assert sample.reference
        value, found_n, total, missing = content_recall(sample.reference, text)
        if value is None:
            return SampleScore(skipped="needs a reference with content words")
        return SampleScore(
            value=value,
            numerator=found_n,
            denominator=total,
            steps={"screen": source, "words": words, "reference_words": total, "found": found_n},
            details=[{"missing_words": missing}] if value < 1 else [],
        )


class ForeignCitations(Metric):
    """Documents an answer cites outside the case's ``acceptable_documents`` (count; 0 is the
    goal). A guideline case lists every guideline on its subject, so a second guideline on
    the same subject is not foreign; one on another subject is."""

    name = "foreign_citations"
    description = "cited documents outside the case's acceptable documents (count)"
    aggregation = "sum"
    higher_is_better = False
    unit = "count"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.expectations is None or not sample.expectations.acceptable_documents:
            out.append("'acceptable_documents' in the case")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None and sample.expectations is not None
        acceptable = set(sample.expectations.acceptable_documents)
        cited = _cited_documents(sample.answer)
        foreign = [d for d in cited if d not in acceptable]
        details = [{"category": "cites a document on another subject", "foreign": foreign}]
        return SampleScore(
            value=float(len(foreign)),
            numerator=float(len(foreign)),
            denominator=1,
            steps={"cited_documents": cited, "foreign": foreign},
            details=details if foreign else [],
        )


_CITATION_TAIL = re.compile(r"(\s*\[\d+(?:\s*[,;\u2013-]\s*\d+)*\])+\s*$")
_LEAD_IN_END = re.compile(
    r"(?i)(:|\b(include|includes|including|such as|as follows|the following|following|e\.g|"
    r"for example|namely|are those|those with|those who)\s*[.,;]?"
    # A function word ends a cut-off lead-in only without a full stop: "... how severe it
    # is." is a sentence, "People at risk are those with" is not.
    r"|\b(are|is|with|of|and|or|the|a|an|to|by|for|from|these|than)\s*[,;]?)$"
)
_LEAD_IN_START = re.compile(
    r"(?i)^(here (are|is)|the following|below (are|is)|listed below|these (include|are))\b"
)
_QUESTION_START = re.compile(
    r"(?i)^(what|how|who|whom|which|why|when|where|is|are|can|do|does|should)\b"
)


def summary_defect(sentences: Sequence[str]) -> str | None:
    """Why an answer's summary is not a summary, or None. ``sentences``: the summary sentences
    in order (a lead-in followed by its list items is one summary).

    - heading: the first is a question ('What causes X?'), starts like one without a full stop,
      is a Markdown heading, or is a title (four words or fewer, no final punctuation);
    - lead-in without its list: the last ends on ':' or a word that must be followed by more
      ('include', 'such as', 'are those with', 'of', ...), or a single sentence that only
      announces a list ('Here are the types of ...').
    """
    texts = [_CITATION_TAIL.sub("", s).strip() for s in sentences if s.strip()]
    if not texts:
        return None
    first, last = texts[0], texts[-1]
    question = first.endswith("?") or (
        _QUESTION_START.match(first) and not first.endswith((".", "!"))
    )
    if question or first.startswith("#"):
        return "summary is a heading or question"
    if _LEAD_IN_END.search(last.rstrip()) or (len(texts) == 1 and _LEAD_IN_START.match(first)):
        return "summary is a lead-in without its list"
    if len(first.split()) <= 4 and not first.endswith((".", "!", ")", ":")):
        return "summary is a heading or question"
    return None


class SummaryDefects(Metric):
    """Answered answers whose summary is a heading/question or a lead-in cut off before its list
    (count; 0 is the goal). The summary: the content sentences of kind 'summary', else the first
    content sentence."""

    name = "summary_defects"
    description = "answers whose summary is a heading or a lead-in without its list (count)"
    aggregation = "sum"
    higher_is_better = False
    unit = "count"

    def missing(self, sample: Sample) -> list[str]:
        out = super().missing(sample)
        if sample.answer is not None and (sample.answer.abstained or not sample.answer.claims):
            out.append("an answer with content sentences")
        return out

    def _score(self, sample: Sample) -> SampleScore:
        assert sample.answer is not None
        claims = sample.answer.claims
        summary = [c.text for c in claims if c.kind == "summary"] or [claims[0].text]
        defect = summary_defect(summary)
        return SampleScore(
            value=float(defect is not None),
            numerator=float(defect is not None),
            denominator=1,
            steps={"summary": " ".join(summary)[:300], "defect": defect},
            details=[{"category": defect, "summary": " ".join(summary)[:300]}] if defect else [],
        )


def general_metrics() -> list[Metric]:
    return [
        AnsweredRate(),
        RefusedRate(),
        AnsweringDocumentCited(),
        ReferenceRecall(),
        TopPassagesRecall(1),
        TopPassagesRecall(3),
        FirstScreenContent(),
        ForeignCitations(),
        SummaryDefects(),
    ]


#: Metrics whose failing samples name a failure category (the baselines do not).
CATEGORY_METRICS = (
    "answered_rate",
    "refused_rate",
    "answering_document_cited",
    "reference_recall",
    "foreign_citations",
    "summary_defects",
)


def failure_categories(scores: Sequence[dict[str, SampleScore]]) -> dict[str, int]:
    """How many answers fail each way (a refused covered question counted once)."""
    counts: dict[str, int] = {}
    for sample in scores:
        seen: set[str] = set()
        for metric in CATEGORY_METRICS:
            score = sample.get(metric)
            if score is None or score.skipped:
                continue
            seen |= {d["category"] for d in score.details if d.get("category")}
        for category in seen:
            counts[category] = counts.get(category, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


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
        *general_metrics(),
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
