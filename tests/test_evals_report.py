"""Reports (JSON, HTML, JUnit, terminal) and the `cliniq eval` command line."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
import yaml
from rich.console import Console
from test_evals_metrics import TokenJudge
from typer.testing import CliRunner

from evals.cli import app
from evals.ragas_io import read_ragas_jsonl
from evals.report import html_report, junit_xml, print_summary, read_json, write_all
from evals.runner import RecordedSystem, run_suite
from evals.thresholds import Threshold

SAMPLES = [
    {
        "id": "good",
        "user_input": "What is recommended for RLS?",
        "response": "Gabapentin enacarbil is recommended for adults [1].",
        "retrieved_contexts": ["Gabapentin enacarbil is recommended for adults with RLS."],
    },
    {
        "id": "bad",
        "user_input": "Is pramipexole first-line?",
        "response": "Pramipexole is first-line [1]. It never causes augmentation [4].",
        "retrieved_contexts": ["The AASM suggests against the standard use of pramipexole."],
    },
]


@pytest.fixture
def ragas_file(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in SAMPLES))
    return path


@pytest.fixture
def report(ragas_file):
    suite = read_ragas_jsonl(ragas_file)
    suite.cases[1].must_not_include = ["first-line"]
    return run_suite(
        suite,
        RecordedSystem.from_suite(suite),
        TokenJudge(),
        thresholds=[
            Threshold(metric="faithfulness", min=0.9),
            Threshold(metric="citation_errors", max=0),
            Threshold(metric="contradiction_rate", max=0.5),
        ],
        resamples=100,
        command="cliniq eval run answers.jsonl --system recorded",
    )


def test_json_report_has_everything_and_reloads(tmp_path, report):
    paths = write_all(report, tmp_path)
    again = read_json(paths["json"])
    assert again.model_dump() == report.model_dump()
    data = json.loads(paths["json"].read_text())
    claim = data["cases"][0]["turns"][0]["claims"][0]
    assert claim["label"] == "supported" and claim["supporting_passage"] == "ctx-1"
    assert claim["score"] == 1.0 and claim["excerpt"]
    assert data["judge"] == {
        "name": "token-fake",
        "version": "1",
        "settings": {"rule": "all claim words in passage"},
    }
    steps = data["cases"][1]["turns"][0]["scores"]["faithfulness"]["steps"]
    assert steps["claims"] == 2 and steps["verdicts"] == {"not_supported": 1, "uncited": 1}


def test_html_is_one_self_contained_file_with_the_summary(report):
    page = html_report(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<table><tr><th>metric</th><th>value</th><th>95% CI</th>" in page
    assert "faithfulness" in page and "FAIL" in page
    assert "id='case-bad'" in page and "citation [4] is out of range" in page
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "http://" not in page and "https://" not in page


def test_junit_has_one_testcase_per_case_and_threshold(report):
    root = ET.fromstring(junit_xml(report))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2 + 3
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failed) == 3  # case 'bad', faithfulness, errors
    by_name = {c.get("name"): c for c in cases}
    assert by_name["good"].find("failure") is None
    bad = by_name["bad"].find("failure")
    assert "forbidden phrase present: 'first-line'" in bad.text
    assert "out of range" in bad.text
    assert by_name["faithfulness >= 0.9"].find("failure").get("message").startswith("0.333")
    assert by_name["contradiction_rate <= 0.5"].find("failure") is None


def test_terminal_summary_lists_failures(report):
    console = Console(record=True, width=160)
    print_summary(report, console)
    text = console.export_text()
    assert "faithfulness" in text and "citation_recall" in text
    assert "bad:" in text and "threshold failed faithfulness >= 0.9" in text


# -- the command line -------------------------------------------------------------------------

runner = CliRunner()


def test_cli_run_fails_on_a_threshold_and_writes_reports(tmp_path, ragas_file):
    bars = tmp_path / "bars.yaml"
    bars.write_text("faithfulness: {min: 0.99}\n")
    out = tmp_path / "out"
    args = ["run", str(ragas_file), "--system", "recorded", "--judge", "clinical-rules"]
    result = runner.invoke(app, [*args, "--thresholds", str(bars), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "threshold failed" in result.output
    assert {p.name for p in out.iterdir()} == {"report.json", "report.html", "junit.xml"}
    assert read_json(out / "report.json").judge.name == "clinical-rules"

    bars.write_text("citation_errors: {max: 5}\n")
    result = runner.invoke(app, [*args, "--thresholds", str(bars), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "all thresholds met" in result.output


def test_cli_uses_the_thresholds_file_beside_the_suite(tmp_path, ragas_file):
    suite = tmp_path / "mine.yaml"
    assert runner.invoke(app, ["import-ragas", str(ragas_file), "-o", str(suite)]).exit_code == 0
    (tmp_path / "mine.thresholds.yaml").write_text("faithfulness: {min: 1.0}\n")
    args = ["run", str(suite), "--system", "recorded", "--judge", "clinical-rules"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "faithfulness >= 1" in result.output
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--no-thresholds"])
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--system", "nope"], "--system must be one of"),
        (["--system", "recorded", "--judge", "no-such-judge"], "unknown or unavailable judge"),
        (["--system", "recorded", "--recorded", "missing.jsonl"], "recorded answers not found"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, ragas_file, args, message):
    result = runner.invoke(app, ["run", str(ragas_file), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_bad_suite_names_the_field(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "cases": [{"id": "a", "user_inpt": "q"}]}))
    result = runner.invoke(app, ["run", str(suite), "--system", "recorded"])
    assert result.exit_code == 2
    assert "case 'a' (#1), field 'user_inpt'" in result.output


def test_cli_import_and_export_ragas(tmp_path, ragas_file):
    suite = tmp_path / "imported.yaml"
    result = runner.invoke(app, ["import-ragas", str(ragas_file), "-o", str(suite)])
    assert result.exit_code == 0 and "2 cases written" in result.output
    assert yaml.safe_load(suite.read_text())["cases"][0]["id"] == "good"
    out = tmp_path / "run"
    args = ["run", str(suite), "--system", "recorded", "--judge", "clinical-rules"]
    runner.invoke(app, [*args, "--out", str(out), "--no-thresholds"])
    exported = tmp_path / "exported.jsonl"
    result = runner.invoke(app, ["export-ragas", str(out / "report.json"), "-o", str(exported)])
    assert result.exit_code == 0 and "2 samples written" in result.output
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert rows[0]["response"] == "Gabapentin enacarbil is recommended for adults [1]."
    result = runner.invoke(app, ["export-ragas", str(suite), "-o", str(exported)])
    assert result.exit_code == 2 and "not an eval run report" in result.output


def test_cli_judges_command_reaches_the_benchmark():
    result = runner.invoke(app, ["judges", "--help"])
    assert result.exit_code == 0
    assert "--limit" in result.output


def test_cli_llm_system_names_the_endpoint_variable(tmp_path, ragas_file):
    result = runner.invoke(app, ["run", str(ragas_file), "--system", "cliniq-llm"])
    assert result.exit_code == 2
    assert "CLINIQ_LLM__BASE_URL" in result.output
