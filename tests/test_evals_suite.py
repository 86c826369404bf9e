"""Suite files: validation messages that name file, case and field; the bundled suites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CORPUS_DIR, REPO_ROOT, shared_dataset

from evals.suite import SuiteError, dump_suite, load_suite, parse_suite
from evals.thresholds import load_thresholds

SUITES = REPO_ROOT / "evals" / "suites"
CORPUS_IDS = {p.stem for sub in ("guidelines", "research") for p in (CORPUS_DIR / sub).glob("*.md")}


def write(tmp_path: Path, data: object, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_minimal_case_and_shorthands(tmp_path):
    path = write(
        tmp_path,
        {
            "name": "t",
            "defaults": {"answerable": True},
            "cases": [
                {
                    "id": "a",
                    "user_input": "q?",
                    "must_include": ["ferritin", ["TSAT", "transferrin saturation"]],
                    "expected_normalization": "rls",
                    "turns": ["and children?", {"user_input": "dose?", "must_include": ["mg"]}],
                },
                {"id": "b", "user_input": "gout?", "answerable": False},
            ],
        },
    )
    suite = load_suite(path)
    a, b = suite.cases
    assert a.must_include == [["ferritin"], ["TSAT", "transferrin saturation"]]
    assert a.expected_normalization.concept == "rls"
    assert a.questions == ["q?", "and children?", "dose?"]
    assert a.expectations_for(0) is None and a.expectations_for(1) is None
    last = a.expectations_for(2)
    assert last.must_include == [["ferritin"], ["TSAT", "transferrin saturation"], ["mg"]]
    assert last.answerable is True and b.answerable is False


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            {"id": "x", "user_input": "q", "must_includ": ["a"]},
            "case 'x' (#1), field 'must_includ'",
        ),
        ({"id": "x"}, "case 'x' (#1), field 'user_input': required field is missing"),
        ({"id": "x", "user_input": "q", "must_include": [[]]}, "field 'must_include'"),
        ({"id": "x y", "user_input": "q"}, "field 'id'"),
        (
            {"id": "x", "user_input": "q", "must_include": ["a"], "must_not_include": ["A"]},
            "'a' is both required and forbidden",
        ),
        (
            {"id": "x", "user_input": "q", "turns": [{"user_input": "f", "answerble": True}]},
            "field 'turns[0].answerble'",
        ),
        (
            {
                "id": "x",
                "user_input": "q",
                "retrieved_contexts": ["c"],
                "retrieved_document_ids": [],
            },
            "retrieved_document_ids has 0 entries but retrieved_contexts has 1",
        ),
        (
            {"id": "x", "user_input": "q", "expected_normalization": {}},
            "give a concept, note_contains, or both",
        ),
    ],
)
def test_validation_errors_name_file_case_and_field(tmp_path, case, message):
    path = write(tmp_path, {"name": "t", "cases": [case]})
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(
        tmp_path,
        {
            "name": "t",
            "cases": [
                {"id": "a", "user_input": "q"},
                {"id": "a", "user_input": "q"},
                {"user_input": "q"},
                "not a mapping",
            ],
        },
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    text = str(err.value)
    assert "case 'a' (#2), field 'id': duplicate of case #1" in text
    assert "case #3, field 'id': required field is missing" in text
    assert "case #4: expected a mapping" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping"),
        ({"name": "t", "cases": []}, "'cases' must be a non-empty list"),
        ({"name": "t", "defaults": {"user_input": "q"}, "cases": [{}]}, "defaults may set only"),
        ({"name": "t", "colour": 1, "cases": [{"id": "a", "user_input": "q"}]}, "'colour'"),
    ],
)
def test_suite_level_errors(tmp_path, data, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, data))


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(SuiteError, match="suite not found"):
        load_suite(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [unclosed")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(bad)


def test_unknown_expected_document_is_reported(tmp_path):
    path = write(
        tmp_path,
        {"name": "t", "cases": [{"id": "a", "user_input": "q", "expected_documents": ["nope"]}]},
    )
    with pytest.raises(SuiteError, match="case 'a', field 'expected_documents': unknown"):
        load_suite(path, known_documents=CORPUS_IDS)


def test_dump_round_trips(tmp_path):
    suite = load_suite(SUITES / "rls.yaml")
    again = parse_suite(yaml.safe_load(dump_suite(suite)), "dumped")
    assert [c.model_dump() for c in again.cases] == [c.model_dump() for c in suite.cases]


# -- the bundled suites ------------------------------------------------------------------------


def test_rls_suite_is_valid_and_covers_the_brief():
    suite = load_suite(SUITES / "rls.yaml", known_documents=CORPUS_IDS)
    assert len(suite.cases) >= 40
    assert suite.corpus_path() == CORPUS_DIR.resolve()
    tags = {t for c in suite.cases for t in c.tags}
    for tag in (
        "seed",
        "follow-up",
        "brand",
        "misspelling",
        "made-up-term",
        "esrd",
        "children",
        "pregnancy",
        "conflict",
        "iron",
        "augmentation",
        "diagnosis",
        "plmd",
        "unanswerable",
        "bad-input",
    ):
        assert tag in tags, tag
    seed = suite.case("seed-then-dialysis")
    assert seed.questions[-1] == "What about patients on dialysis?"
    assert sum(c.answerable is False for c in suite.cases) >= 4
    control = suite.case("bad-input-control-characters").user_input
    assert "\x00" in control and "\x1b" in control
    assert len(suite.case("bad-input-long-question").user_input) > 1000


def test_rls_expected_facts_are_in_the_corpus():
    """Every phrasing of a required fact that names a number must be in some corpus file."""
    text = " ".join(p.read_text() for p in CORPUS_DIR.rglob("*.md")).lower()
    suite = load_suite(SUITES / "rls.yaml")
    for case in suite.cases:
        exp = case.expectations_for(len(case.turns))
        for fact in exp.must_include if exp else []:
            numeric = [p for p in fact if any(ch.isdigit() for ch in p)]
            if numeric:
                assert any(p.lower() in text for p in numeric), (case.id, fact)


def test_rls_thresholds_are_valid():
    from evals.runner import metric_names

    bars = load_thresholds(SUITES / "rls.thresholds.yaml", metric_names())
    names = {b.metric for b in bars}
    assert {
        "faithfulness",
        "citation_recall",
        "abstention_accuracy",
        "must_include_recall",
    } <= names


def test_thresholds_file_errors(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("faithfulness: {min: 0.9, max: 1}\nfaithfullness: 0.9\n")
    with pytest.raises(SuiteError) as err:
        load_thresholds(path, ["faithfulness"])
    assert "'faithfulness': give exactly one of 'min' or 'max'" in str(err.value)
    assert "'faithfullness': unknown metric" in str(err.value)


def test_medquad_suite_is_valid():
    suite = load_suite(SUITES / "medquad_rls.yaml", known_documents=CORPUS_IDS)
    assert all(c.id.startswith("medquad-") for c in suite.cases)
    assert len({c.user_input for c in suite.cases}) == len(suite.cases)


def test_medquad_suite_is_up_to_date():
    shared_dataset("medquad", "medquad_restless_legs.jsonl")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_medquad_suite.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
