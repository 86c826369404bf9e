"""First-screen content and foreign citations: two figures any suite can report."""

from __future__ import annotations

from pathlib import Path

from evals.metrics import FirstScreenContent, ForeignCitations, Sample, default_metrics
from evals.records import AnswerRecord, ClaimRecord, PassageRecord, from_answer
from evals.suite import Expectations, parse_suite
from ingest.types import Chunk, DocumentRef

REFERENCE = "Gout is caused by uric acid crystals in the joints. Diet and genes raise the risk."


def record(
    claims: list[tuple[str, list[str]]], first_screen: str | None = None, **kw
) -> AnswerRecord:
    passages = [
        PassageRecord(id=f"p-{doc}", rank=i + 1, text=f"text of {doc}", document_id=doc)
        for i, doc in enumerate(["doc-a", "doc-b", "doc-c"])
    ]
    return AnswerRecord(
        system="test",
        question="q",
        text="\n".join(t for t, _ in claims),
        claims=[ClaimRecord(text=t, kind="summary", citations=c) for t, c in claims],
        passages=passages,
        first_screen=first_screen,
        **kw,
    )


def test_gold_span_is_looked_for_in_the_first_screen_only() -> None:
    exp = Expectations(answerable=True, gold_span="31 kb")
    answer = record(
        [("Its genome is 31 kb long.", ["p-doc-a"]), ("It infects cattle.", ["p-doc-a"])],
        first_screen="It infects cattle.",
    )
    score = FirstScreenContent().score(Sample("c", 0, answer, exp))
    assert score.value == 0.0 and score.steps["screen"] == "first_screen"
    without = answer.model_copy(update={"first_screen": None})  # system says nothing: all claims
    score = FirstScreenContent().score(Sample("c", 0, without, exp))
    assert score.value == 1.0 and score.steps["screen"] == "all content sentences"


def test_reference_recall_in_the_first_screen_and_refusals_score_zero() -> None:
    exp = Expectations(answerable=True)
    answer = record([], first_screen="Uric acid crystals in the joints cause gout.")
    score = FirstScreenContent().score(Sample("c", 0, answer, exp, reference=REFERENCE))
    assert 0.4 < score.value < 1.0
    refused = record([], abstained=True)
    assert FirstScreenContent().score(Sample("c", 0, refused, exp, reference=REFERENCE)).value == 0
    assert FirstScreenContent().score(Sample("c", 0, answer, exp)).skipped  # nothing to compare
    uncovered = Expectations(answerable=False, gold_span="x")
    assert FirstScreenContent().score(Sample("c", 0, answer, uncovered)).skipped


def test_foreign_citations_count_documents_outside_the_acceptable_ones() -> None:
    exp = Expectations(answerable=True, acceptable_documents=["doc-a", "doc-b"])
    answer = record(
        [("One.", ["p-doc-a"]), ("Two.", ["p-doc-b", "p-doc-c"]), ("Three.", ["p-doc-c"])]
    )
    score = ForeignCitations().score(Sample("c", 0, answer, exp))
    assert score.value == 1.0 and score.steps["foreign"] == ["doc-c"]
    clean = record([("One.", ["p-doc-a"]), ("Two.", ["p-doc-b"])])
    assert ForeignCitations().score(Sample("c", 0, clean, exp)).value == 0.0
    assert ForeignCitations().score(Sample("c", 0, clean, Expectations(answerable=True))).skipped


def test_both_are_reported_for_every_suite_and_the_fields_parse() -> None:
    names = [m.name for m in default_metrics()]
    assert "first_screen_content" in names and "foreign_citations" in names
    suite = parse_suite(
        {
            "name": "s",
            "corpus": ".",
            "cases": [
                {
                    "id": "a",
                    "user_input": "q?",
                    "answerable": True,
                    "gold_span": "31 kb",
                    "acceptable_documents": ["who-htn-2021", "jnc7-2004"],
                }
            ],
        },
        path=Path("s.yaml"),
    )
    case = suite.cases[0]
    assert case.gold_span == "31 kb" and case.acceptable_documents == ["who-htn-2021", "jnc7-2004"]


def test_the_answer_s_first_screen_is_recorded_when_it_has_one() -> None:
    from assistant.types import Answer, Citation, Section, Sentence, SentenceKind

    chunk = Chunk(document=DocumentRef(id="doc-a", title="A"), position=0, text="Gout is common.")
    answer = Answer(
        question="q",
        standalone_query="q",
        sections=[
            Section(
                key="summary",
                title="Summary",
                sentences=[
                    Sentence(
                        text="Gout is common.",
                        kind=SentenceKind.summary,
                        citations=[Citation(number=1, chunk_id=chunk.id, document_id="doc-a")],
                    )
                ],
            )
        ],
    )
    assert from_answer(answer).first_screen is None or isinstance(
        from_answer(answer).first_screen, str
    )

    class WithScreen(Answer):
        def first_screen_text(self) -> str:
            return "Gout is common."

    screened = WithScreen(**answer.model_dump())
    assert from_answer(screened).first_screen == "Gout is common."
