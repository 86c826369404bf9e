"""Metrics on tiny hand-computed answers: faithfulness, ALCE citation recall/precision, retrieval,
expectations, refusals, latency, and the bootstrap interval."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from assistant.support import SupportLabel, SupportVerdict
from evals.metrics import (
    AbstentionAccuracy,
    CitationErrors,
    CitationPrecision,
    CitationRecall,
    ClaimJudging,
    ContradictionRate,
    CorrectRefusals,
    Faithfulness,
    Latency,
    MeanReciprocalRank,
    MetricInputError,
    MustIncludeRecall,
    MustNotIncludeViolations,
    NormalizationAccuracy,
    RetrievalRecall,
    Sample,
    WrongRefusals,
    aggregate,
    bootstrap_ci,
)
from evals.records import AnswerRecord, ClaimRecord, NormalizationRecord, PassageRecord
from evals.suite import Expectations


class TokenJudge:
    """A claim is supported when every word of it appears in the passage; a passage containing
    'contradicts' contradicts any claim. Deterministic, so metrics can be computed by hand."""

    name = "token-fake"
    version = "1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def settings(self) -> dict[str, object]:
        return {"rule": "all claim words in passage"}

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        out = []
        for claim, passage in pairs:
            self.calls.append((claim, passage))
            words = set(re.findall(r"\w+", claim.lower()))
            have = set(re.findall(r"\w+", passage.lower()))
            if "contradicts" in have:
                label, score = SupportLabel.contradicted, 0.0
            elif words <= have:
                label, score = SupportLabel.supported, 1.0
            else:
                label, score = SupportLabel.not_supported, len(words & have) / len(words)
            out.append(
                SupportVerdict(
                    label=label,
                    score=score,
                    contradiction=float(label is SupportLabel.contradicted),
                    judge=self.name,
                    rules=["fake-rule"] if label is SupportLabel.contradicted else [],
                    evidence=passage[:40],
                )
            )
        return out


def answer(claims: list[tuple[str, list[str]]], passages: dict[str, str], **kw) -> AnswerRecord:
    return AnswerRecord(
        system="test",
        question=kw.pop("question", "q"),
        text=kw.pop("text", "\n".join(c for c, _ in claims)),
        claims=[ClaimRecord(text=c, citations=cites) for c, cites in claims],
        passages=[
            PassageRecord(id=pid, rank=i, text=t, document_id=kw.get("docs", {}).get(pid))
            for i, (pid, t) in enumerate(passages.items(), start=1)
        ],
        **{k: v for k, v in kw.items() if k != "docs"},
    )


def judged(record: AnswerRecord, exp: Expectations | None = None) -> Sample:
    return Sample("case", 0, record, exp, ClaimJudging(TokenJudge()).judge_answer(record))


# -- faithfulness and contradiction -----------------------------------------------------------


def test_faithfulness_counts_claims_supported_by_what_they_cite():
    rec = answer(
        [("alpha beta", ["p1"]), ("gamma", ["p1"]), ("delta", []), ("alpha", ["p2"])],
        {"p1": "alpha beta", "p2": "this contradicts"},
    )
    sample = judged(rec)
    score = Faithfulness().score(sample)
    assert (score.numerator, score.denominator, score.value) == (1, 4, 0.25)
    assert score.steps["verdicts"] == {
        "contradicted": 1,
        "not_supported": 1,
        "supported": 1,
        "uncited": 1,
    }
    contradiction = ContradictionRate().score(sample)
    assert contradiction.value == 0.25 and contradiction.details[0]["rules"] == ["fake-rule"]


def test_unsupported_rate_is_reported_apart_from_contradiction():
    from evals.metrics import UnsupportedRate, default_metrics

    rec = answer(
        [("alpha beta", ["p1"]), ("gamma", ["p1"]), ("delta", []), ("alpha", ["p2"])],
        {"p1": "alpha beta", "p2": "this contradicts"},
    )
    score = UnsupportedRate().score(judged(rec))
    assert (score.numerator, score.denominator) == (1, 4)  # "gamma": neither backed nor refuted
    assert score.details[0]["claim"] == "gamma"
    assert {"contradiction_rate", "unsupported_rate"} <= {m.name for m in default_metrics()}


def test_claim_metrics_skip_a_refusal_and_say_why():
    rec = answer([], {}, abstained=True, text="The sources do not address this.")
    score = Faithfulness().score(judged(rec))
    assert score.value is None and "refusal" in score.skipped


def test_claim_metric_without_verdicts_names_the_missing_step():
    rec = answer([("alpha", ["p1"])], {"p1": "alpha"})
    with pytest.raises(MetricInputError, match="claim verdicts"):
        Faithfulness().score(Sample("case", 0, rec, None, None))


def test_a_failed_turn_is_skipped_with_its_reason():
    score = Faithfulness().score(Sample("case", 0, None))
    assert score.skipped and "an answer" in score.skipped


# -- ALCE citation recall and precision --------------------------------------------------------


def test_citation_recall_uses_the_concatenation_of_citations():
    # "alpha beta" is in neither passage alone, but in their concatenation.
    rec = answer([("alpha beta", ["p1", "p2"]), ("zeta", ["p1"])], {"p1": "alpha", "p2": "beta"})
    sample = judged(rec)
    recall = CitationRecall().score(sample)
    assert (recall.numerator, recall.denominator, recall.value) == (1, 2, 0.5)
    # Both citations are needed: neither alone supports, and neither suffices without the other.
    precision = CitationPrecision().score(sample)
    assert (precision.numerator, precision.denominator) == (2, 3)  # zeta's citation is imprecise


def test_citation_precision_flags_an_irrelevant_citation():
    # p3 adds nothing: p1+p2 support the claim without it, and p3 alone does not.
    rec = answer([("alpha beta", ["p1", "p2", "p3"])], {"p1": "alpha", "p2": "beta", "p3": "gamma"})
    score = CitationPrecision().score(judged(rec))
    assert (score.numerator, score.denominator) == (2, 3)
    assert score.details == [
        {
            "claim": "alpha beta",
            "passage": "p3",
            "reason": "irrelevant: the other citations support it, this one alone does not",
        }
    ]


def test_citation_precision_keeps_a_redundant_citation_that_supports_alone():
    # Both passages support the claim on their own: neither is irrelevant (ALCE condition A).
    rec = answer([("alpha", ["p1", "p2"])], {"p1": "alpha", "p2": "alpha too"})
    assert CitationPrecision().score(judged(rec)).value == 1.0


def test_citation_precision_single_citation_follows_recall():
    rec = answer([("alpha", ["p1"]), ("beta", ["p1"])], {"p1": "alpha"})
    score = CitationPrecision().score(judged(rec))
    assert (score.numerator, score.denominator) == (1, 2)


def test_citation_precision_is_zero_when_nothing_is_cited():
    rec = answer([("alpha", []), ("beta", [])], {"p1": "alpha"})
    sample = judged(rec)
    assert CitationPrecision().score(sample).value == 0.0
    assert CitationRecall().score(sample).value == 0.0


def test_precision_pairs_are_only_judged_when_needed():
    judge = TokenJudge()
    rec = answer(
        [("alpha beta", ["p1", "p2", "p3"]), ("omega", ["p1", "p2"])],
        {"p1": "alpha", "p2": "beta", "p3": "gamma"},
    )
    claims = ClaimJudging(judge).judge_answer(rec)
    # joint x2; singles x3 for the supported claim; leave-one-out x3 (no single supports);
    # nothing more for "omega", whose joint verdict is not supported.
    assert len(judge.calls) == 2 + 3 + 3
    assert claims[0].supporting_passage is None or claims[0].supporting_passage in {"p1", "p2"}
    assert claims[1].single == {} and claims[1].without == {}


def test_cited_passage_missing_from_the_answer_is_a_citation_error():
    rec = answer([("alpha", ["p9"])], {"p1": "alpha"})
    sample = judged(rec)
    assert sample.claims[0].label == "uncited"
    errors = CitationErrors().score(sample)
    assert errors.value == 1 and "not in the answer" in errors.details[0]["error"]


# -- retrieval -----------------------------------------------------------------------------


def test_retrieval_recall_at_k_and_mrr_are_document_level():
    docs = {"p1": "d1", "p2": "d2", "p3": "d2", "p4": "d3"}
    rec = answer([], {k: "x" for k in docs}, docs=docs)
    exp = Expectations(expected_documents=["d2", "d3"])
    sample = Sample("case", 0, rec, exp, [])
    assert RetrievalRecall(k=2).score(sample).value == 0.5
    assert RetrievalRecall(k=4).score(sample).value == 1.0
    assert MeanReciprocalRank().score(sample).value == 0.5
    nothing = Sample("case", 0, rec, Expectations(expected_documents=["d9"]), [])
    assert MeanReciprocalRank().score(nothing).value == 0.0


def test_retrieval_metrics_say_what_is_missing():
    rec = answer([], {"p1": "x"})  # no document ids (a recorded answer without them)
    score = RetrievalRecall().score(Sample("c", 0, rec, Expectations(expected_documents=["d"])))
    assert "retrieved_document_ids" in score.skipped
    score = RetrievalRecall().score(Sample("c", 0, rec, Expectations()))
    assert "'expected_documents' in the case" in score.skipped


# -- expectations ------------------------------------------------------------------------------


def test_must_include_any_phrasing_case_and_dash_insensitive():
    rec = answer([], {}, text="Ferritin 75 ng/mL or lower; Alpha‑2‑delta ligands help.")
    exp = Expectations(must_include=[["75 NG/ML"], ["alpha-2-delta"], ["TSAT", "saturation"]])
    score = MustIncludeRecall().score(Sample("c", 0, rec, exp))
    assert (score.numerator, score.denominator) == (2, 3)
    assert score.details == [{"missing_fact": ["TSAT", "saturation"]}]


def test_must_not_include_counts_violations_with_context():
    rec = answer([], {}, text="Pramipexole is first-line for everyone.")
    exp = Expectations(must_not_include=["pramipexole is first-line", "cure"])
    score = MustNotIncludeViolations().score(Sample("c", 0, rec, exp))
    assert score.value == 1 and "pramipexole" in score.details[0]["context"]


def test_normalization_accuracy_by_concept_id_or_name_and_note():
    rec = answer(
        [],
        {},
        normalization=NormalizationRecord(
            concepts=["rls"],
            canonical=["restless legs syndrome"],
            notes=["'RESLEG' is not a recognized medical term"],
        ),
    )
    ok = Expectations.model_validate(
        {
            "expected_normalization": {
                "concept": "Restless Legs Syndrome",
                "note_contains": ["resleg"],
            }
        }
    )
    assert NormalizationAccuracy().score(Sample("c", 0, rec, ok)).value == 1.0
    wrong = Expectations.model_validate({"expected_normalization": "rbd"})
    score = NormalizationAccuracy().score(Sample("c", 0, rec, wrong))
    assert score.value == 0.0 and "'rbd'" in score.details[0]["reason"]


@pytest.mark.parametrize(
    ("answerable", "abstained", "accuracy", "correct", "wrong"),
    [
        (True, False, 1.0, None, 0.0),
        (True, True, 0.0, None, 1.0),
        (False, True, 1.0, 1.0, None),
        (False, False, 0.0, 0.0, None),
    ],
)
def test_abstention_outcomes_are_counted_separately(
    answerable, abstained, accuracy, correct, wrong
):
    sample = Sample(
        "c", 0, answer([], {}, abstained=abstained), Expectations(answerable=answerable)
    )
    assert AbstentionAccuracy().score(sample).value == accuracy
    assert CorrectRefusals().score(sample).value == correct
    assert WrongRefusals().score(sample).value == wrong


# -- aggregation and the bootstrap -----------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_estimate():
    values = [0.91, 0.35, 0.78, 0.66, 0.12, 0.95, 0.83, 0.71, 0.4, 0.99]
    den = [1.0] * 10
    a = bootstrap_ci(values, den, values, "macro", resamples=1000, seed=0)
    b = bootstrap_ci(values, den, values, "macro", resamples=1000, seed=0)
    c = bootstrap_ci(values, den, values, "macro", resamples=1000, seed=1)
    assert a == b
    assert a[1:] != c[1:]
    estimate, lo, hi = a
    assert estimate == pytest.approx(0.67) and lo < estimate < hi
    assert lo > 0.4 and hi < 0.9


def test_micro_aggregation_pools_claims_across_answers():
    # 1/1 and 1/3: micro = 2/4 = 0.5 (a macro mean would say 0.667).
    estimate, _, _ = bootstrap_ci([1, 1], [1, 3], [1.0, 1 / 3], "micro", resamples=200)
    assert estimate == 0.5


def test_percentile_latency_and_constant_interval():
    metric = Latency(95)
    scores = [
        metric.score(Sample("c", 0, answer([], {}, latency_ms=float(ms)))) for ms in range(1, 101)
    ]
    agg = aggregate(metric, scores, resamples=300)
    assert agg.name == "latency_p95_ms" and agg.value == pytest.approx(95.05)
    assert agg.ci_low <= agg.value <= agg.ci_high
    same = [Faithfulness().score(judged(answer([("a", ["p"])], {"p": "a"}))) for _ in range(5)]
    agg = aggregate(Faithfulness(), same, resamples=100)
    assert (agg.value, agg.ci_low, agg.ci_high, agg.n) == (1.0, 1.0, 1.0, 5)


def test_aggregate_reports_why_samples_were_skipped():
    scores = [RetrievalRecall().score(Sample("c", 0, answer([], {}), Expectations()))]
    agg = aggregate(RetrievalRecall(), scores)
    assert agg.value is None and agg.skipped == 1
    assert any("expected_documents" in reason for reason in agg.skipped_reasons)


# -- verbatim quotes ------------------------------------------------------------------------------

QUOTE_PASSAGE = (
    "Source: American Academy of Sleep Medicine, 2025, guideline, current.\n"
    "The AASM recommends pregabalin over no pregabalin for adults with RLS.\n"
    "Strength: strong. Certainty: moderate."
)


def test_a_verbatim_quote_is_supported_without_the_judge():
    judge = TokenJudge()
    claim = (
        "The AASM recommends pregabalin over no pregabalin for adults with RLS "
        "(strong recommendation; moderate certainty of evidence)."
    )
    rec = answer([(claim, ["p1"])], {"p1": QUOTE_PASSAGE})
    judging = ClaimJudging(judge)
    (judged_claim,) = judging.judge_answer(rec)
    assert judged_claim.label == "supported" and judged_claim.joint.judge == "extractive"
    assert judge.calls == [] and judging.pairs_quoted == 1


def test_a_quote_with_grading_the_passage_lacks_is_not_supported():
    claim = (
        "The AASM recommends pregabalin over no pregabalin for adults with RLS "
        "(conditional recommendation; low certainty of evidence)."
    )
    rec = answer([(claim, ["p1"])], {"p1": QUOTE_PASSAGE})
    (judged_claim,) = ClaimJudging(TokenJudge()).judge_answer(rec)
    assert judged_claim.label == "not_supported"
    assert judged_claim.joint.rules == ["grading-not-in-passage"]


def test_quotes_go_to_the_judge_when_asked():
    judge = TokenJudge()
    claim = "The AASM recommends pregabalin over no pregabalin for adults with RLS."
    rec = answer([(claim, ["p1"])], {"p1": QUOTE_PASSAGE})
    judging = ClaimJudging(judge, extractive=False)
    judging.judge_answer(rec)
    assert len(judge.calls) == 1 and judging.pairs_quoted == 0
