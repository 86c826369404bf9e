"""The `cliniq` command line: exit codes, tables and messages a person reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS_DIR, REPO_ROOT, write_doc
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()


def flat(output: str) -> str:
    """Table cells wrap at the test console's width; compare text without layout."""
    return re.sub(r"[\s│┃|]+", "", output)


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write_doc(docs, "iron", "# Iron\n\nFerritin below 75 ng/mL calls for iron therapy in RLS.\n")
    write_doc(docs, "gout", "# Gout\n\nAllopurinol lowers urate in recurrent gout.\n")
    return docs


def test_ingest_prints_summary_and_second_run_is_unchanged(tmp_path):
    docs = _docs(tmp_path)
    first = runner.invoke(app, ["ingest", str(docs)])
    assert first.exit_code == 0, first.output
    assert "documents" in first.output and "added" in first.output
    second = runner.invoke(app, ["ingest", str(docs)])
    assert second.exit_code == 0
    assert "2files(2unchanged,0skipped)" in flat(second.output)
    assert "embedded0chunks" in flat(second.output)


def test_ingest_skips_bad_files_and_strict_fails(tmp_path):
    docs = _docs(tmp_path)
    (docs / "empty.md").write_text("")
    (docs / "blob.bin").write_bytes(b"\x00\x01binary")
    result = runner.invoke(app, ["ingest", str(docs)])
    assert result.exit_code == 0, result.output
    assert "Skipped files (2)" in result.output
    assert re.search(r"skipped \S+empty\.md: file is empty", result.output)
    assert re.search(r"skipped \S+blob\.bin: unsupported file type", result.output)
    strict = runner.invoke(app, ["ingest", str(docs), "--strict"])
    assert strict.exit_code == 1


def test_ingest_of_nothing_usable_exits_non_zero(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_text("   \n")
    result = runner.invoke(app, ["ingest", str(bad)])
    assert result.exit_code == 1
    assert "nothing was ingested" in result.output


def test_stats_and_search(tmp_path):
    docs = _docs(tmp_path)
    runner.invoke(app, ["ingest", str(docs)])
    stats = runner.invoke(app, ["index", "stats"])
    assert stats.exit_code == 0
    assert "all-MiniLM-L6-v2" in stats.output and "documents" in stats.output
    for mode in ("bm25", "dense", "hybrid"):
        found = runner.invoke(app, ["search", "allopurinol urate", "-k", "2", "--mode", mode])
        assert found.exit_code == 0, found.output
        first = found.output.split("2.")[0]
        assert "1. Document gout" in first, found.output
        assert "score" in found.output
    bad_mode = runner.invoke(app, ["search", "x", "--mode", "fuzzy"])
    assert bad_mode.exit_code == 2 and "--mode" in bad_mode.output


def test_missing_index_says_how_to_build_it(tmp_path):
    result = runner.invoke(app, ["index", "stats", "--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "cliniq ingest" in result.output


# -- ask and chat as a user runs them: real processes ----------------------------------------


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory) -> dict[str, str]:
    index = tmp_path_factory.mktemp("cli-index")
    env = {**os.environ, "CLINIQ_STORE__INDEX_DIR": str(index)}
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(CORPUS_DIR), "--strict"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def _cliniq(args: list[str], env: dict[str, str], stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.integration
def test_ask_json_and_empty_question(corpus_index):
    done = _cliniq(
        ["ask", "Which drugs are recommended for restless legs syndrome?", "--json"], corpus_index
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["sections"] and answer["references"]
    assert not answer["abstained"]
    empty = _cliniq(["ask", "   "], corpus_index)
    assert empty.returncode == 2
    assert "empty" in empty.stderr and "Traceback" not in empty.stderr


@pytest.mark.integration
def test_chat_reads_a_pipe_follows_up_resets_and_ends_cleanly(corpus_index):
    script = "\n".join(
        [
            "What is the management approach for restless legs syndrome?",
            "What about patients on dialysis?",
            "/new",
            "What is the first-line treatment for gout?",
            "",
        ]
    )
    done = _cliniq(["chat"], corpus_index, stdin=script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count(">>> ") == 3
    dialysis = out.split(">>> What about patients on dialysis?")[1].split(">>> ")[0]
    assert "ESRD" in dialysis and "iron sucrose" in dialysis
    assert "do not address" in out.split(">>> What is the first-line treatment for gout?")[1]
