"""The real offline assistant over the bundled suite, scored by the real support judges.

The integration test runs a handful of cases through `cliniq eval run`; the slow test runs the
whole suite and requires its thresholds (evals/suites/rls.thresholds.yaml) to be met.
"""

from __future__ import annotations

import pytest
from conftest import CORPUS_DIR, REPO_ROOT
from typer.testing import CliRunner

from evals.cli import app
from evals.report import read_json
from ingest.settings import Settings

SUITE = REPO_ROOT / "evals" / "suites" / "rls.yaml"


def require_default_judge() -> None:
    from assistant.support import JudgeUnavailableError, default_judge

    try:
        default_judge()
    except JudgeUnavailableError as exc:
        pytest.skip(f"the default support judge is not available yet: {exc}")


@pytest.fixture(scope="module")
def eval_index(tmp_path_factory):
    """One index of the corpus for this module (the CLI ingests into it incrementally)."""
    return tmp_path_factory.mktemp("eval-index")


@pytest.fixture
def cli_env(monkeypatch):
    monkeypatch.setenv("CLINIQ_LEXICON_DIR", str(CORPUS_DIR / "lexicon"))
    monkeypatch.chdir(REPO_ROOT)


@pytest.mark.integration
def test_cli_runs_the_real_assistant_on_a_few_cases(tmp_path, eval_index, cli_env):
    require_default_judge()
    out = tmp_path / "out"
    args = ["run", str(SUITE), "--tag", "seed", "--tag", "brand", "--limit", "5"]
    result = CliRunner().invoke(
        app, [*args, "--index", str(eval_index), "--out", str(out), "--no-thresholds"]
    )
    assert result.exit_code == 0, result.output
    report = read_json(out / "report.json")
    assert report.suite.cases_run == 5 and report.system.name == "cliniq"
    assert report.judge.name != "clinical-rules" and report.judge.version
    # The report records which judge verified the answers (the setting), beside the scorer.
    assert report.system.details["verifier"]["name"] == Settings().answer.verify_judge
    seed = next(c for c in report.cases if c.id == "seed-resleg")
    record = seed.turns[0].answer
    assert record.normalization and "rls" in record.normalization.concepts
    assert len(seed.turns[0].claims) >= 10
    assert all(c.supporting_passage or c.label != "supported" for c in seed.turns[0].claims)
    dialysis = next(c for c in report.cases if c.id == "seed-then-dialysis")
    assert [t.turn for t in dialysis.turns] == [0, 1]
    assert "iron sucrose" in dialysis.turns[1].answer.text.lower()
    assert report.metrics["faithfulness"].value is not None
    assert (out / "junit.xml").is_file() and (out / "report.html").is_file()


@pytest.mark.slow
@pytest.mark.integration
def test_bundled_suite_meets_its_thresholds(tmp_path, eval_index, cli_env):
    require_default_judge()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(SUITE), "--index", str(eval_index), "--out", str(out)]
    )
    report = read_json(out / "report.json")
    failed = [f"{t.label()}: {t.reason}" for t in report.thresholds if not t.passed]
    assert result.exit_code == 0, "\n".join(failed) or result.output
    assert report.thresholds and report.passed
