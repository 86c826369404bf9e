"""The general-corpus suites: their metrics on hand-built answers, a suite's own index read from
data at run time, and the generated MedQuAD suites (sizes, kinds, disjointness, up to date)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, shared_dataset

from evals.metrics import (
    AnsweredRate,
    AnsweringDocumentCited,
    ReferenceRecall,
    RefusedRate,
    Sample,
    SummaryDefects,
    TopPassagesRecall,
    content_recall,
    content_words,
    default_metrics,
    failure_categories,
    stem,
    summary_defect,
)
from evals.records import AnswerRecord, ClaimRecord, PassageRecord
from evals.runner import expectation_failures, metric_names
from evals.suite import (
    Expectations,
    SuiteDataMissing,
    SuiteError,
    load_suite,
    materialize_index,
    parse_suite,
    with_references,
)
from evals.thresholds import load_thresholds
from ingest.loaders.medquad import medquad_id

SUITES = REPO_ROOT / "evals" / "suites"
COVERED = Expectations(answerable=True, answering_document="doc-a")
UNCOVERED = Expectations(answerable=False)
REFERENCE = "Gout is caused by uric acid crystals in the joints. Diet and genes raise the risk."


def record(
    claims: list[tuple[str, str, list[str]]] = (),
    passages: list[tuple[str, str, str]] = (),
    abstained: bool = False,
) -> AnswerRecord:
    """claims: (kind, text, cited passage ids); passages: (id, document id, text) in rank order."""
    return AnswerRecord(
        system="test",
        question="q",
        text="\n".join(t for _, t, _ in claims),
        claims=[ClaimRecord(text=t, kind=k, citations=c) for k, t, c in claims],
        passages=[
            PassageRecord(id=pid, rank=i, text=text, document_id=doc)
            for i, (pid, doc, text) in enumerate(passages, start=1)
        ],
        abstained=abstained,
    )


PASSAGES = [
    ("p1", "doc-b", "Pseudogout is a different disease of calcium crystals."),
    ("p2", "doc-a", "Gout is caused by uric acid crystals in the joints."),
    ("p3", "doc-a", "Diet and genes raise the risk of gout."),
]


# -- content words and recall -----------------------------------------------------------------


def test_content_words_are_lowercased_stemmed_and_without_stopwords():
    assert content_words("What CAUSES the Causing of caused diseases? 5 mg") == {
        "caus",
        "diseas",
        "5",
        "mg",
    }
    assert stem("studies") == "study" and stem("disease") == stem("diseases") == "diseas"
    assert stem("virus") == "virus" and stem("gas") == "gas"  # too short, or not a plural


def test_content_recall_is_the_share_of_reference_words_found():
    value, found, total, missing = content_recall("uric acid crystals; purine diet", "Uric acid.")
    assert (found, total) == (2, 5) and value == pytest.approx(0.4)
    assert missing == ["crystal", "diet", "purin"]
    assert content_recall("the of and", "anything")[0] is None  # nothing to recall


def test_reference_recall_scores_content_sentences_and_a_refusal_as_zero():
    answered = record([("summary", "Gout is caused by uric acid crystals.", ["p2"])], PASSAGES)
    score = ReferenceRecall().score(Sample("c", 0, answered, COVERED, reference=REFERENCE))
    ref = content_words(REFERENCE)
    assert score.value == pytest.approx(len(ref & content_words(answered.text)) / len(ref))
    assert 0 < score.value < 0.7 and score.details[0]["category"].startswith("low reference")
    refused = record([], PASSAGES, abstained=True)
    zero = ReferenceRecall().score(Sample("c", 0, refused, COVERED, reference=REFERENCE))
    assert zero.value == 0.0 and zero.details[0]["category"] == "covered question refused"
    skipped = ReferenceRecall().score(Sample("c", 0, answered, COVERED))
    assert "reference answer" in skipped.skipped
    assert ReferenceRecall().score(Sample("c", 0, answered, UNCOVERED, reference=REFERENCE)).skipped


def test_top_passage_baselines_read_the_retrieved_passages_even_of_a_refusal():
    refused = record([], PASSAGES, abstained=True)
    sample = Sample("c", 0, refused, COVERED, reference=REFERENCE)
    top1 = TopPassagesRecall(1).score(sample)
    top3 = TopPassagesRecall(3).score(sample)
    assert top1.value < top3.value == pytest.approx(1.0)
    assert TopPassagesRecall(3).name == "reference_recall_top3_passages"
    assert not top1.details  # a baseline names no failure category


# -- answered, refused, cited -----------------------------------------------------------------


def test_answered_and_refused_rates_apply_to_their_own_kind_of_question():
    answered = record([("summary", "Gout is caused by uric acid crystals.", ["p2"])], PASSAGES)
    refused = record([], PASSAGES, abstained=True)
    assert AnsweredRate().score(Sample("c", 0, answered, COVERED)).value == 1.0
    assert AnsweredRate().score(Sample("c", 0, refused, COVERED)).value == 0.0
    assert AnsweredRate().score(Sample("c", 0, refused, UNCOVERED)).skipped
    assert RefusedRate().score(Sample("c", 0, refused, UNCOVERED)).value == 1.0
    missed = RefusedRate().score(Sample("c", 0, answered, UNCOVERED))
    assert missed.value == 0.0 and missed.details == [{"category": "uncovered question answered"}]
    assert RefusedRate().score(Sample("c", 0, answered, COVERED)).skipped


def test_answering_document_must_be_cited_not_only_retrieved():
    cites_other = record([("summary", "Pseudogout differs.", ["p1"])], PASSAGES)
    cites_page = record([("summary", "x.", ["p1"]), ("guideline_text", "y.", ["p3"])], PASSAGES)
    metric = AnsweringDocumentCited()
    miss = metric.score(Sample("c", 0, cites_other, COVERED))
    assert miss.value == 0.0 and miss.details[0]["category"] == "answering document not cited"
    assert metric.score(Sample("c", 0, cites_page, COVERED)).value == 1.0
    assert (
        "answering_document"
        in metric.score(Sample("c", 0, cites_page, Expectations(answerable=True))).skipped
    )
    failures = expectation_failures(cites_other, COVERED)
    assert failures == ["the answering document doc-a is not cited by any sentence"]
    assert expectation_failures(cites_page, COVERED) == []


# -- summaries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentences", "defect"),
    [
        (["Gout is caused by uric acid crystals."], None),
        (["What are the signs and symptoms of Diabetes mellitus type 1? [1]"], "heading"),
        (["What causes gout"], "heading"),
        (["## Treatment"], "heading"),
        (["Key Points"], "heading"),
        (["People who are at increased risk of kidney stones are those with [1]"], "lead-in"),
        (["Here are the types of medicines used to treat high blood pressure."], "lead-in"),
        (["Common symptoms include:"], "lead-in"),
        (["Risk factors such as"], "lead-in"),
        (["Common symptoms include:", "joint pain", "swelling."], None),  # lead-in and its list
        (["Here are the types of medicines:", "diuretics", "beta blockers"], None),
        (["It is rare (about 1 in 10,000)."], None),
        (["Treatment depends on the type of pneumonia and how severe it is."], None),
        (["People at risk are those who are older or"], "lead-in"),
    ],
)
def test_summary_defects(sentences, defect):
    got = summary_defect(sentences)
    assert (got is None) if defect is None else (defect in got)


def test_summary_defects_metric_reads_summary_sentences_else_the_first_claim():
    heading = record([("summary", "What causes gout?", ["p2"]), ("research", "Uric acid.", [])])
    no_kind = record([("guideline_text", "Those at risk include:", ["p2"])])
    fine = record([("research", "Gout is caused by urate crystals.", ["p2"])])
    metric = SummaryDefects()
    assert metric.score(Sample("c", 0, heading, COVERED)).value == 1.0
    assert metric.score(Sample("c", 0, no_kind, COVERED)).value == 1.0
    assert metric.score(Sample("c", 0, fine, COVERED)).value == 0.0
    assert metric.score(Sample("c", 0, record([], abstained=True), COVERED)).skipped


def test_failure_categories_count_each_answer_once_per_category():
    refused = record([], PASSAGES, abstained=True)
    scores = [
        {m.name: m.score(Sample("c", 0, refused, COVERED, reference=REFERENCE)) for m in ms}
        for ms in [default_metrics()] * 2
    ]
    assert failure_categories(scores) == {"covered question refused": 2}


def test_new_metrics_can_carry_thresholds(tmp_path):
    for name in ("medquad_general", "medquad_dev"):
        bars = load_thresholds(SUITES / f"{name}.thresholds.yaml", metric_names())
        got = {b.metric: (b.op, b.bound) for b in bars}
        assert got == {
            "answered_rate": (">=", 0.95),
            "answering_document_cited": (">=", 0.90),
            "reference_recall": (">=", 0.70),
            "refused_rate": (">=", 0.95),
            "summary_defects": ("<=", 0.0),
        }


# -- a suite's own index ------------------------------------------------------------------------


def _data(tmp_path: Path) -> Path:
    rows = [
        {"collection": "9_X_QA", "doc_id": "001", "qid": "001-1", "qtype": "causes",
         "focus": "Gout", "question": "What causes Gout ?", "answer": "Uric   acid crystals."},
        {"collection": "9_X_QA", "doc_id": "002", "qid": "002-1", "qtype": "causes",
         "focus": "Other", "question": "What causes Other ?", "answer": "Something else."},
    ]  # fmt: skip
    path = tmp_path / "data" / "medquad.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _suite(tmp_path: Path, documents: list[str], reference: str = "9_X_QA/001-1") -> Path:
    data = {
        "name": "own",
        "index": {"medquad": "data/medquad.jsonl", "documents": documents},
        "cases": [
            {
                "id": "a",
                "user_input": "What causes Gout?",
                "answerable": True,
                "answering_document": medquad_id("9_X_QA", "001"),
                "reference_record": reference,
            },
        ],
    }
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_materialized_index_holds_only_the_chosen_documents_and_reads_references(tmp_path):
    _data(tmp_path)
    suite = load_suite(_suite(tmp_path, [medquad_id("9_X_QA", "001")]))
    out, refs = materialize_index(suite, tmp_path / "idx-data")
    written = (out / "own.jsonl").read_text().splitlines()
    assert [json.loads(line)["doc_id"] for line in written] == ["001"]
    assert refs == {"9_X_QA/001-1": "Uric acid crystals."}  # cleaned as the loader cleans
    assert with_references(suite, refs).cases[0].reference == "Uric acid crystals."
    mtime = (out / "own.jsonl").stat().st_mtime_ns
    materialize_index(suite, tmp_path / "idx-data")  # unchanged: not rewritten
    assert (out / "own.jsonl").stat().st_mtime_ns == mtime


def test_own_index_errors_name_what_is_wrong(tmp_path):
    suite = load_suite(_suite(tmp_path, [medquad_id("9_X_QA", "001")]))
    with pytest.raises(SuiteDataMissing, match="not here"):
        materialize_index(suite, tmp_path / "x")
    _data(tmp_path)
    bad = load_suite(_suite(tmp_path, [medquad_id("9_X_QA", "001"), "medquad-nope-1"]))
    with pytest.raises(SuiteError, match="medquad-nope-1"):
        materialize_index(bad, tmp_path / "x")
    no_ref = load_suite(_suite(tmp_path, [medquad_id("9_X_QA", "001")], reference="9_X_QA/9"))
    with pytest.raises(SuiteError, match="reference_record '9_X_QA/9'"):
        materialize_index(no_ref, tmp_path / "x")
    with pytest.raises(SuiteError, match=r"not among the suite's index\.documents"):
        load_suite(_suite(tmp_path, [medquad_id("9_X_QA", "002")]))


def test_cli_skips_a_suite_whose_data_is_absent(tmp_path):
    path = _suite(tmp_path, [medquad_id("9_X_QA", "001")])
    out = subprocess.run(
        [sys.executable, "-m", "evals.cli", "run", str(path), "--index", str(tmp_path / "i")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "skipped" in out.stderr and "not here" in out.stderr


# -- the generated MedQuAD suites ---------------------------------------------------------------


def _load(name: str) -> dict:
    return yaml.safe_load((SUITES / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["medquad_general", "medquad_dev"])
def test_general_suites_meet_the_recipe(name):
    data = _load(name)
    suite = parse_suite(data, name)
    covered = [c for c in suite.cases if c.answerable]
    uncovered = [c for c in suite.cases if c.answerable is False]
    assert len(suite.cases) >= 120 and len(uncovered) >= 15
    assert len({c.answering_document for c in covered}) >= 40
    assert {"page-question", "reworded"} <= {t for c in covered for t in c.tags}
    kinds = Counter(c.tags[1] for c in covered)
    assert set(kinds) == {
        "causes", "risk-factors", "symptoms", "diagnosis", "treatment", "prevention",
        "prognosis", "definition", "inheritance", "genetics", "frequency", "complications",
    }  # fmt: skip
    assert all(c.reference_record and c.reference is None for c in covered)  # read at run time
    assert 300 <= len(data["index"]["documents"]) <= 400
    assert not {c.answering_document for c in uncovered} - {None}


def test_general_and_dev_share_no_condition_and_no_document():
    general, dev = _load("medquad_general"), _load("medquad_dev")
    assert not set(general["index"]["documents"]) & set(dev["index"]["documents"])

    def conditions(data: dict) -> set[str]:
        return {c["description"].split(" (")[0].lower() for c in data["cases"]}

    assert not conditions(general) & conditions(dev)


def test_general_suites_are_up_to_date():
    shared_dataset("medquad", "medquad_answered_collections_1-9.jsonl")
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_medquad_suites.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
