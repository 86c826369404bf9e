"""The pytest plugin, exercised the way an evaluator uses it: a test file over a suite, run by a
separate pytest process (system and judge replaced by fakes in the evaluator's conftest)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

CONFTEST = """
import re
import pytest
from assistant.support import SupportLabel, SupportVerdict
from evals.runner import RecordedSystem

class WordJudge:
    name, version = "word-fake", "1"
    def settings(self):
        return {}
    def judge_many(self, pairs):
        out = []
        for claim, passage in pairs:
            words = set(re.findall(r"\\w+", claim.lower()))
            ok = words <= set(re.findall(r"\\w+", passage.lower()))
            out.append(SupportVerdict(
                label=SupportLabel.supported if ok else SupportLabel.not_supported,
                score=float(ok), judge=self.name))
        return out

@pytest.fixture(scope="session")
def cliniq_system(cliniq_suite):
    return RecordedSystem.from_suite(cliniq_suite("suite.yaml"))

@pytest.fixture(scope="session")
def cliniq_judge():
    return WordJudge()
"""

TESTS = """
import pytest

@pytest.mark.cliniq_suite("suite.yaml")
def test_case_meets_its_expectations(cliniq_case, cliniq_eval):
    result = cliniq_eval(cliniq_case)
    assert result.passed, result.explain()
    assert result.score("faithfulness") == 1.0

@pytest.mark.cliniq_suite("suite.yaml", tags=["iron"])
def test_only_tagged_cases(cliniq_case):
    assert "iron" in cliniq_case.tags

def test_loader(cliniq_suite):
    assert [c.id for c in cliniq_suite("suite.yaml").cases] == ["good", "bad"]
"""

SUITE = {
    "name": "plugin-demo",
    "cases": [
        {
            "id": "good",
            "tags": ["iron"],
            "user_input": "Is iron useful?",
            "response": "Iron is useful [1].",
            "retrieved_contexts": ["Iron is useful in RLS."],
            "must_include": ["iron"],
        },
        {
            "id": "bad",
            "user_input": "Is pramipexole first-line?",
            "response": "Pramipexole is first-line [1].",
            "retrieved_contexts": ["Pramipexole is suggested against."],
            "must_not_include": ["first-line"],
        },
    ],
}


def plugin_args() -> list[str]:
    """Load the plugin by module unless the installed entry point already loads it."""
    entry_points = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "evals.pytest_plugin" for ep in entry_points):
        return []
    return ["-p", "evals.pytest_plugin"]


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *plugin_args(),
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "--rootdir",
            str(directory),
            "-q",
            *args,
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_parametrizes_over_cases_and_scores_them(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    result = run_pytest(tmp_path, "-rA")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "PASSED test_suite.py::test_case_meets_its_expectations[good]" in out
    assert "FAILED test_suite.py::test_case_meets_its_expectations[bad]" in out
    assert "forbidden phrase present: 'first-line'" in out  # result.explain()
    assert "[not_supported] Pramipexole is first-line." in out
    assert "PASSED test_suite.py::test_only_tagged_cases[good]" in out
    assert "test_only_tagged_cases[bad]" not in out
    assert "1 failed, 3 passed" in out


def test_plugin_says_when_the_marker_is_missing(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(cliniq_case):\n    pass\n")
    result = run_pytest(tmp_path)
    assert result.returncode != 0
    assert "without @pytest.mark.cliniq_suite" in result.stdout + result.stderr


def test_plugin_options_are_registered(tmp_path):
    result = run_pytest(tmp_path, "--help")
    assert "--cliniq-judge" in result.stdout and "--cliniq-index" in result.stdout
    assert json.dumps(SUITE)  # the demo suite is plain data
