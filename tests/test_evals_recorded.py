"""Recorded answers: citation markers, refusals, RAGAS JSONL in and out, scoring without running
the system that answered."""

from __future__ import annotations

import json

import pytest
from test_evals_metrics import TokenJudge

from assistant.types import Answer, Citation, Section, Sentence, SentenceKind
from evals.ragas_io import export_run, read_ragas_jsonl, response_with_markers
from evals.recorded import (
    load_recorded,
    looks_like_refusal,
    parse_markers,
    recorded_answer,
    split_response,
)
from evals.runner import AssistantSystem, RecordedSystem, run_suite
from evals.suite import Case, Suite, SuiteError
from ingest.types import Chunk, DocType, DocumentRef, Passage

# -- citation markers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "numbers", "errors", "text"),
    [
        ("Iron helps [1].", [1], 0, "Iron helps."),
        ("Iron helps [1, 3].", [1, 3], 0, "Iron helps."),
        ("Iron helps [1-3].", [1, 2, 3], 0, "Iron helps."),
        ("Iron helps [2–3][1].", [2, 3, 1], 0, "Iron helps."),
        ("Iron helps [1; 2].", [1, 2], 0, "Iron helps."),
        ("Iron helps [1,1].", [1], 0, "Iron helps."),
        ("Iron helps [0].", [], 1, "Iron helps."),
        ("Iron helps [4].", [], 1, "Iron helps."),
        ("Iron helps [2, 7].", [2], 1, "Iron helps."),
        ("Iron helps [3-1].", [], 1, "Iron helps."),
        ("Ferritin of 75 ng/mL [a] is low.", [], 0, "Ferritin of 75 ng/mL [a] is low."),
        ("No citation here.", [], 0, "No citation here."),
    ],
)
def test_parse_markers(sentence, numbers, errors, text):
    parsed = parse_markers(sentence, n_contexts=3)
    assert parsed.numbers == numbers
    assert len(parsed.errors) == errors
    assert parsed.text == text


def test_out_of_range_error_says_how_many_contexts_there_are():
    parsed = parse_markers("Claim [5].", n_contexts=2)
    assert parsed.errors == [
        "citation [5] is out of range: there are 2 retrieved contexts (numbered from 1)"
    ]


def test_split_response_moves_markers_after_the_period_back_to_their_sentence():
    text = (
        "## Answer\nGabapentin is recommended.[1] Pramipexole is not. [2]\n"
        "- Iron first [1, 2].\n\nReferences:\n1. Some guideline, 2025."
    )
    sentences = split_response(text)
    assert [parse_markers(s, 2).numbers for s in sentences] == [[1], [2], [1, 2]]
    assert not any("Some guideline" in s for s in sentences)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("The indexed sources do not address this question.", True),
        ("I don't know.", True),
        ("", True),
        ("This is outside the scope of the documents.", True),
        ("Gabapentin is recommended.", False),
    ],
)
def test_refusal_wording(text, refusal):
    assert looks_like_refusal(text) is refusal


def test_recorded_answer_claims_and_refusals():
    rec = recorded_answer("q", "Alpha is true [1]. Beta [3].", ["alpha is true"])
    assert [c.citations for c in rec.claims] == [["ctx-1"], []]
    assert rec.claims[1].citation_errors and not rec.abstained
    refusal = recorded_answer("q", "The sources do not cover this.", ["x"])
    assert refusal.abstained and refusal.abstention_source == "detected" and not refusal.claims
    declared = recorded_answer("q", "Alpha [1].", ["alpha"], abstained=True)
    assert declared.abstained and declared.abstention_source == "declared"
    # A cited answer is an answer even when it says part of the question is not covered.
    partial = recorded_answer("q", "Alpha [1]. Children are not covered by the sources.", ["a"])
    assert not partial.abstained


# -- RAGAS JSONL ---------------------------------------------------------------------------------

SAMPLES = [
    {
        "id": "rls-1",
        "user_input": "What treats RLS?",
        "response": "Gabapentin enacarbil is recommended for adults [1]. Pramipexole is "
        "suggested against [2]. Iron sucrose cures everyone [1].",
        "retrieved_contexts": [
            "Gabapentin enacarbil is recommended for adults with RLS by the AASM.",
            "Pramipexole is suggested against for standard use.",
        ],
        "reference": "Gabapentin enacarbil.",
        "retrieved_document_ids": ["aasm-2025", "aasm-2025"],
        "latency_ms": 1200,
        "rubric": {"score1": "bad"},
    },
    {
        "user_input": "What treats gout?",
        "response": "The indexed sources do not address this question.",
        "retrieved_contexts": [],
    },
]


@pytest.fixture
def ragas_file(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in SAMPLES))
    return path


def test_import_ragas_makes_cases_with_recorded_answers(ragas_file):
    suite = read_ragas_jsonl(ragas_file)
    first, second = suite.cases
    assert first.id == "rls-1" and second.id == "sample-0002"
    assert first.has_recorded_answer and first.retrieved_document_ids == ["aasm-2025"] * 2
    assert first.reference == "Gabapentin enacarbil."
    assert second.retrieved_contexts == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"user_input": [{"content": "hi", "type": "human"}]}', "multi-turn"),
        (
            '{"user_input": "q", "retrieved_contexts": ["a"], "retrieved_document_ids": []}',
            "retrieved_document_ids has 0 entries",
        ),
    ],
)
def test_import_ragas_errors(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(SuiteError, match=message):
        read_ragas_jsonl(path)


def test_recorded_answers_are_scored_end_to_end(ragas_file):
    suite = read_ragas_jsonl(ragas_file)
    suite.cases[1].answerable = False
    report = run_suite(suite, RecordedSystem.from_suite(suite), TokenJudge(), resamples=200)
    m = report.metrics
    # Claim 3 ("Iron sucrose cures everyone") is not in context 1: 2 of 3 supported.
    assert m["faithfulness"].value == pytest.approx(2 / 3)
    assert m["citation_recall"].value == pytest.approx(2 / 3)
    assert m["citation_precision"].value == pytest.approx(2 / 3)
    assert m["abstention_accuracy"].value == 1.0 and m["correct_refusals"].value == 1
    assert m["latency_p50_ms"].value == 1200
    assert report.judge.name == "token-fake" and report.judge.settings
    claims = report.cases[0].turns[0].claims
    assert [c.label for c in claims] == ["supported", "supported", "not_supported"]
    assert claims[0].supporting_passage == "ctx-1" and claims[0].excerpt


def test_export_then_import_scores_the_same(tmp_path, ragas_file):
    suite = read_ragas_jsonl(ragas_file)
    first = run_suite(suite, RecordedSystem.from_suite(suite), TokenJudge(), resamples=100)
    run_json = tmp_path / "run.json"
    run_json.write_text(first.model_dump_json())
    out = tmp_path / "export.jsonl"
    assert export_run(run_json, out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]) >= {"user_input", "response", "retrieved_contexts", "reference"}
    again_suite = read_ragas_jsonl(out)
    again = run_suite(
        again_suite, RecordedSystem.from_suite(again_suite), TokenJudge(), resamples=100
    )
    for name in ("faithfulness", "citation_recall", "citation_precision", "retrieval_recall@8"):
        assert again.metrics[name].value == first.metrics[name].value, name


def test_recorded_file_matches_cases_by_id_then_question(tmp_path, ragas_file):
    suite = Suite(
        name="t",
        cases=[
            Case(id="rls-1", user_input="A different wording"),
            Case(id="gout", user_input="what treats  GOUT?", answerable=False),
            Case(id="unmatched", user_input="Nothing recorded"),
        ],
    )
    system = RecordedSystem.from_file(ragas_file, suite)
    assert set(system.answers) == {"rls-1", "gout"}
    report = run_suite(suite, system, TokenJudge(), resamples=100)
    failed = {c.id: c.failures for c in report.cases if not c.passed}
    assert failed["unmatched"] == ["no answer: no recorded answer for this case"]
    assert "gout" not in failed


def test_recorded_file_errors(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        load_recorded(tmp_path / "none.jsonl")
    odd = tmp_path / "odd.json"
    odd.write_text('{"hello": 1}')
    with pytest.raises(SuiteError, match="not a recorded answer"):
        load_recorded(odd)


# -- cliniq's own answers --------------------------------------------------------------------------


def chunk(doc: str, text: str, position: int = 0) -> Chunk:
    ref = DocumentRef(id=doc, title=f"Title {doc}", year=2025, doc_type=DocType.guideline)
    return Chunk(document=ref, position=position, text=text)


def cliniq_answer() -> Answer:
    c1 = chunk("aasm", "The AASM recommends gabapentin enacarbil for adults with RLS.")
    c2 = chunk("aan", "The AAN graded pramipexole Level A.", 1)
    unlisted = chunk("mds", "The MDS rates pramipexole efficacious.", 2)

    def cite(c: Chunk, n: int) -> Citation:
        return Citation(number=n, chunk_id=c.id, document_id=c.document.id)

    return Answer(
        question="How is RLS treated?",
        standalone_query="How is restless legs syndrome treated?",
        sections=[
            Section(key="notes", title="Notes", sentences=[Sentence(text="Read RLS as rls.")]),
            Section(
                key="guidelines",
                title="Guidelines",
                sentences=[
                    Sentence(
                        text="The AASM recommends gabapentin enacarbil for adults.",
                        citations=[cite(c1, 1)],
                        kind=SentenceKind.recommendation,
                    ),
                    Sentence(
                        text="The AAN graded pramipexole Level A.",
                        citations=[cite(c2, 2)],
                        kind=SentenceKind.conflict,
                    ),
                    Sentence(
                        text="The MDS rates pramipexole efficacious.",
                        citations=[cite(unlisted, 3)],
                        kind=SentenceKind.conflict,
                    ),
                ],
            ),
        ],
        passages=[
            Passage(chunk=c2, rank=1, score=0.9),
            Passage(chunk=c1, rank=2, score=0.8),
        ],
    ), unlisted


class FakeIndex:
    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = {c.id: c for c in chunks}

    def get(self, ids: list[str]) -> list[Chunk]:
        return [self.chunks[i] for i in ids if i in self.chunks]


class FakeAssistant:
    def __init__(self) -> None:
        self.answer, unlisted = cliniq_answer()
        self.index = FakeIndex([unlisted])
        self.questions: list[str] = []

    def ask(self, question: str, session: object = None) -> Answer:
        self.questions.append(question)
        if question == "boom":
            raise RuntimeError("exploded")
        return self.answer.model_copy(deep=True)


def test_cliniq_answers_become_records_with_marker_numbers_by_rank(tmp_path):
    suite = Suite(
        name="t",
        cases=[
            Case(
                id="a",
                user_input="How is RLS treated?",
                turns=["boom"],
                expected_documents=["aasm"],
            )
        ],
    )
    report = run_suite(suite, AssistantSystem(FakeAssistant()), TokenJudge(), resamples=100)
    turns = report.cases[0].turns
    record = turns[0].answer
    assert record.claims[0].text.startswith("The AASM recommends")
    assert "Read RLS as rls." in record.text  # notes are shown text, not claims
    assert [p.document_id for p in record.passages] == ["aan", "aasm", "mds"]
    assert record.passages[-1].listed is False
    # The unlisted citation is an integrity error, but still judged against its text.
    assert turns[0].claims[2].label == "supported" and turns[0].claims[2].citation_errors
    assert response_with_markers(record).startswith(
        "The AASM recommends gabapentin enacarbil for adults [2]. The AAN graded"
    )
    assert turns[1].answer is None and "exploded" in turns[1].error
    failures = report.cases[0].failures
    assert any("does not list among its passages" in f for f in failures)
    assert any("turn 2" in f and "RuntimeError: exploded" in f for f in failures)


def test_cliniq_answer_json_loads_as_recorded(tmp_path):
    answer, _ = cliniq_answer()
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"id": "a", **answer.model_dump(mode="json")}) + "\n")
    (item,) = load_recorded(path)
    assert item.case_id == "a" and len(item.answer.claims) == 3
    # Without the index, the unlisted citation cannot be judged: recorded as an error.
    assert item.answer.claims[2].citations == [] and item.answer.claims[2].citation_errors
