"""Faults a deployment meets, each against the real part: a model endpoint that is down, slow,
failing or garbled (a scripted OpenAI-compatible server process); a `chroma run` server killed
and started again; a damaged index; a full disk (a tmpfs the test mounts)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS_DIR, REPO_ROOT, answers_http, free_port
from typer.testing import CliRunner

from assistant.cli import app
from assistant.engine import Assistant
from assistant.generate import LLMAssistant
from assistant.render import to_markdown
from assistant.retrieve import Retriever
from ingest.errors import IndexDamagedError, StoreUnavailableError
from ingest.pipeline import ingest_paths
from ingest.repair import check_index, rebuild_index
from ingest.settings import LLMSettings, Settings
from ingest.store import Index
from ingest.vectors import forget_clients

DOCS = [
    CORPUS_DIR / "guidelines" / "aasm-2025-rls-plmd.md",
    CORPUS_DIR / "guidelines" / "irlssg-2018-iron.md",
    CORPUS_DIR / "research" / "nrdp-2021-rls-primer.md",
]
MORE = [
    CORPUS_DIR / "guidelines" / "aan-2016-rls.md",
    CORPUS_DIR / "research" / "augmentation-overview.md",
]
QUESTION = "Is gabapentin enacarbil recommended for restless legs syndrome?"
QUERIES = [QUESTION, "iron therapy ferritin", "augmentation with dopamine agonists"]


def copy_docs(target: Path, files: list[Path]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, target / f.name)
    return target


def new_settings(index_dir: Path, **store: object) -> Settings:
    settings = Settings()
    settings.store.index_dir = index_dir
    settings.lexicon_dir = CORPUS_DIR / "lexicon"
    for key, value in store.items():
        setattr(settings.store, key, value)
    return settings


def snapshot(settings: Settings, embedder) -> dict:
    """What an index serves: documents, chunks, vectors and search results (read as a new
    process would: another process may have written since this one last opened it)."""
    forget_clients()
    index = Index.open(settings, embedder)
    try:
        retriever = Retriever(index, settings.retrieval)
        return {
            "documents": sorted(d.id for d in index.docstore.documents(state="committed")),
            "pending": sorted(d.id for d in index.docstore.documents(state="pending")),
            "chunks": sorted(index.docstore.committed_chunk_ids()),
            "vectors": sorted(index.vectors.ids()),
            "search": {
                f"{m}: {q}": [p.chunk.id for p in retriever.retrieve(q, k=5, mode=m)]
                for q in QUERIES
                for m in ("dense", "bm25")
            },
        }
    finally:
        index.close()


def notes(answer) -> list[str]:
    section = next((s for s in answer.sections if s.key == "notes"), None)
    return [s.text for s in section.sentences] if section else []


# -- the model endpoint ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, embedder) -> Settings:
    root = tmp_path_factory.mktemp("faults")
    settings = new_settings(root / "index")
    report = ingest_paths([copy_docs(root / "docs", DOCS)], settings, embedder=embedder)
    assert not report.skipped and report.documents_added == len(DOCS)
    return settings


def use_rules(script: Path, *rules: dict) -> None:
    script.write_text(json.dumps({"rules": list(rules)}))


@pytest.mark.parametrize(
    ("fault", "rule", "cause"),
    [
        ("down", None, "no LLM server answers at"),
        ("slow", {"reply": "Too late [1].", "delay_s": 3}, "did not answer within 1 s"),
        ("http error", {"status": 500, "reply": "CUDA out of memory"}, "answered HTTP 500"),
        ("garbled", {"raw": "\x00\x13<html>upstream garbage"}, "could not be read"),
        ("uncited", {"reply": "Take whatever you like. Everything helps."}, "2 sentence(s)"),
    ],
)
def test_endpoint_faults_give_the_offline_answer_with_one_notice(
    small_index, embedder, scripted_llm, fault, rule, cause
):
    url, script = scripted_llm
    if fault == "down":
        url = f"http://127.0.0.1:{free_port()}/v1"
    else:
        use_rules(script, rule)
    settings = small_index.model_copy(deep=True)
    settings.llm = LLMSettings(base_url=url, model="scripted", timeout_s=1)
    llm = LLMAssistant(settings, embedder=embedder)
    answer = llm.ask(QUESTION)
    fallback = [n for n in notes(answer) if "was not used for this answer" in n]
    assert len(fallback) == 1 and cause in fallback[0] and url in fallback[0], notes(answer)
    assert answer.system != "cliniq-llm" and not answer.abstained and answer.references
    assert all(s.verified for s in answer.all_sentences() if s.citations)
    assert "Too late" not in to_markdown(answer) and "Everything helps" not in to_markdown(answer)


def test_cli_ask_llm_with_the_endpoint_down_answers_and_exits_0(small_index, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("CLINIQ_LLM__BASE_URL", url)
    monkeypatch.setenv("CLINIQ_LEXICON_DIR", str(CORPUS_DIR / "lexicon"))
    result = CliRunner().invoke(
        app, ["ask", "--llm", QUESTION, "--index", str(small_index.store.index_dir), "-f", "text"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("was not used for this answer") == 1
    assert url in result.output and "gabapentin" in result.output.lower()


def test_default_timeout_is_60_seconds():
    assert LLMSettings().timeout_s == 60


# -- the Chroma server ----------------------------------------------------------------------


class ChromaProcess:
    """`chroma run` on a fixed port and data directory, killed with SIGKILL and started again."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        import time

        self.starts += 1
        log = (self.work / f"server-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.work / "db"), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )  # fmt: skip
        ready = answers_http(f"http://127.0.0.1:{self.port}/api/v2/heartbeat")
        deadline = time.monotonic() + 60
        while not ready():
            assert self.proc.poll() is None and time.monotonic() < deadline, "chroma did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def chroma(tmp_path) -> Iterator[ChromaProcess]:
    server = ChromaProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.integration
def test_chroma_server_killed_and_restarted(tmp_path, chroma, embedder):
    settings = new_settings(tmp_path / "index", host="127.0.0.1", port=chroma.port)
    ingest_paths([copy_docs(tmp_path / "docs", DOCS)], settings, embedder=embedder)
    assistant = Assistant(settings, embedder=embedder)
    before = assistant.ask(QUESTION)
    assert not before.abstained and any(p.dense_score is not None for p in before.passages)
    assert not any("vector search could not be used" in n for n in notes(before))

    chroma.kill()
    down = assistant.ask(QUESTION)  # the same process, mid-session
    fault = [n for n in notes(down) if "vector search could not be used" in n]
    assert len(fault) == 1 and f"127.0.0.1:{chroma.port}" in fault[0] and "chroma run" in fault[0]
    assert not down.abstained and down.references
    # The retrieval is ranked by BM25 alone (passages cited beyond it may come from the exact
    # search over the in-memory prose vectors, which needs no server).
    retrieved = down.passages[: settings.retrieval.top_k]
    assert retrieved and all(p.dense_rank is None for p in retrieved)

    # An ingest while the server is down stops cleanly, naming the server.
    more = copy_docs(tmp_path / "docs", MORE)
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{chroma.port}"):
        ingest_paths([more], settings, embedder=embedder)

    chroma.start()
    after = assistant.ask(QUESTION)  # no restart of ours
    assert not any("vector search could not be used" in n for n in notes(after))
    assert any(p.dense_rank is not None for p in after.passages)
    assert [p.chunk.id for p in after.passages] == [p.chunk.id for p in before.passages]


class KillOnUpsert:
    """A progress sink that kills the server once the first batch is embedded, before its
    vectors are written: the documents are then pending."""

    def __init__(self, server: ChromaProcess) -> None:
        self.server = server

    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, phase: str, amount: int = 1) -> None:
        if phase == "chunks" and amount:
            self.server.kill()


@pytest.mark.integration
def test_ingest_when_the_server_dies_leaves_pending_and_the_next_repairs(
    tmp_path, chroma, embedder
):
    settings = new_settings(tmp_path / "index", host="127.0.0.1", port=chroma.port)
    docs = copy_docs(tmp_path / "docs", DOCS)
    with pytest.raises(StoreUnavailableError, match="left pending"):
        ingest_paths([docs], settings, embedder=embedder, progress=KillOnUpsert(chroma))
    chroma.start()
    store = Index(settings, embedder).docstore
    assert store.documents(state="pending") and not store.documents(state="committed")
    report = ingest_paths([docs], settings, embedder=embedder)
    assert report.documents_repaired and report.documents_added == len(DOCS)
    fresh = new_settings(tmp_path / "fresh")
    ingest_paths([docs], fresh, embedder=embedder)
    assert snapshot(settings, embedder) == snapshot(fresh, embedder)


# -- a damaged index ------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path, embedder) -> tuple[Settings, dict, Path]:
    settings = new_settings(tmp_path / "index")
    docs = copy_docs(tmp_path / "docs", DOCS)
    ingest_paths([docs], settings, embedder=embedder)
    return settings, snapshot(settings, embedder), docs


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(b"\x00garbage" * 64 + data[512:])


def run_cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_damaged_manifest_is_named_and_sends_to_a_fresh_ingest(built, embedder, how):
    settings, _, _ = built
    manifest = settings.store.index_dir / "manifest.sqlite3"
    damage(manifest, how)
    with pytest.raises(IndexDamagedError, match=r"manifest\.sqlite3.*--rebuild"):
        Index.open(settings, embedder)
    check = run_cli("index", "check", "--index", str(settings.store.index_dir))
    assert check.exit_code == 1 and "manifest" in check.output and "damaged" in check.output
    with pytest.raises(IndexDamagedError, match="manifest"):
        rebuild_index(settings, embedder)


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_damaged_bm25_is_named_and_rebuilt_from_the_manifest(built, embedder, how):
    settings, before, docs = built
    files = [p for p in (settings.store.index_dir / "bm25").rglob("*") if p.is_file()]
    for path in files:
        damage(path, how)
    with pytest.raises(IndexDamagedError, match=r"bm25.*cliniq index check.*cliniq index rebuild"):
        Index.open(settings, embedder)
    assert not check_index(settings, embedder).ok
    assert [p.name for p in check_index(settings, embedder).damaged()] == ["bm25"]
    shutil.rmtree(docs)  # the rebuild must not need the sources
    result = run_cli("index", "rebuild", "--index", str(settings.store.index_dir))
    assert result.exit_code == 0, result.output
    assert "0 embedded again" in result.output
    assert check_index(settings, embedder).ok
    assert snapshot(settings, embedder) == before


@pytest.mark.parametrize("part", ["chroma.sqlite3", "hnsw"])
def test_damaged_vector_store_is_named_and_rebuilt_from_the_cache(built, embedder, part):
    settings, before, docs = built
    chroma = settings.store.index_dir / "chroma"
    if part == "chroma.sqlite3":
        damage(chroma / "chroma.sqlite3", "corrupt")
    else:
        for path in chroma.rglob("*.bin"):
            damage(path, "truncate")
    forget_clients()  # open the files as a new process would
    try:
        index = Index.open(settings, embedder)
    except IndexDamagedError as exc:
        assert "chroma" in str(exc) and "cliniq index rebuild" in str(exc)
    else:  # opened: a question answers from BM25 with a notice naming the store
        assistant = Assistant(settings, embedder=embedder, index=index)
        answer = assistant.ask(QUESTION)
        damaged = [n for n in notes(answer) if "vector search could not be used" in n]
        assert not damaged or "cliniq index rebuild" in damaged[0]
    report = check_index(settings, embedder)
    if report.ok:  # the damaged files were not read (Chroma had them in its own log)
        assert part == "hnsw" and snapshot(settings, embedder) == before
    else:
        assert [p.name for p in report.damaged()] == ["vectors"], report.parts
    shutil.rmtree(docs)
    rebuilt = rebuild_index(settings, embedder)
    assert rebuilt.vectors_embedded == 0 and rebuilt.vectors_from_cache == len(before["chunks"])
    assert check_index(settings, embedder).ok
    assert snapshot(settings, embedder) == before


def test_index_check_passes_on_a_sound_index(built):
    settings, _, _ = built
    result = run_cli("index", "check", "--index", str(settings.store.index_dir))
    assert result.exit_code == 0 and result.output.count(" ok ") + result.output.count("ok ") >= 3


# -- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 64 MB tmpfs mounted by the test (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); run as root to test")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def cli_ingest(index_dir: Path, *paths: Path) -> subprocess.CompletedProcess:
    """The real command in its own process: a store that aborts on a full disk cannot take
    the test down with it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", *map(str, paths),
         "--index", str(index_dir)],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip


def fill(disk: Path, leave_bytes: int) -> Path:
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave_bytes))
    return filler


@pytest.mark.integration
def test_disk_full_during_ingest(tmp_path, small_disk, embedder):
    index_dir = small_disk / "index"
    first = copy_docs(tmp_path / "first", DOCS)
    done = cli_ingest(index_dir, first)
    assert done.returncode == 0, done.stderr
    settings = new_settings(index_dir)
    served = snapshot(settings, embedder)

    extra = [*MORE, CORPUS_DIR / "guidelines" / "irlssg-2016-augmentation.md"]
    second = copy_docs(tmp_path / "second", extra)
    filler = fill(small_disk, 256 * 1024)
    full = cli_ingest(index_dir, first, second)
    assert full.returncode != 0
    message = " ".join(full.stderr.split())
    assert "is full" in message and str(index_dir) in message, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    # A new reader, with the disk still full: what was served is served. Embedded Chroma cannot
    # open on a full disk, so questions get BM25 with a notice saying the disk is full.
    forget_clients()
    assistant = Assistant(settings, embedder=embedder)
    assert (
        sorted(d.id for d in assistant.index.docstore.documents("committed")) == served["documents"]
    )
    bm25 = Retriever(assistant.index, settings.retrieval)
    for query in QUERIES:
        assert [p.chunk.id for p in bm25.retrieve(query, k=5, mode="bm25")] == served["search"][
            f"bm25: {query}"
        ]
    answer = assistant.ask(QUESTION)
    assert not answer.abstained and answer.references
    dense_ok = any(p.dense_rank for p in answer.passages)
    assert dense_ok or any("full" in n for n in notes(answer)), notes(answer)
    assistant.index.close()

    filler.unlink()
    again = cli_ingest(index_dir, first, second)
    assert again.returncode == 0, again.stderr
    fresh = new_settings(tmp_path / "fresh")
    ingest_paths([first, second], fresh, embedder=embedder)
    got, want = snapshot(settings, embedder), snapshot(fresh, embedder)
    for key in want:
        if key == "search":
            for query, ids in want[key].items():
                assert got[key][query] == ids, query
        assert got[key] == want[key], key


# -- the long loops (slow tier; figures in docs/reliability.md) --------------------------------


def _reliability():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reliability", REPO_ROOT / "scripts" / "reliability.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.integration
def test_kill_9_loop_then_a_clean_run_equals_a_fresh_build(tmp_path):
    if not _reliability().PUBMEDQA.exists():
        pytest.skip(f"{_reliability().PUBMEDQA} is absent (../shared/datasets)")
    result = _reliability().kill_loop(tmp_path, records=200, kills=5, max_kill_s=30)
    assert result["kills"] == 5 and not result["failed_runs"], result
    assert result["clean_rerun_exit"] == 0 and result["equal"], result
    assert result["documents_lost"] == result["documents_duplicated"] == 0
    assert result["duplicate_vectors"] == 0 and result["pending"] == 0


@pytest.mark.slow
@pytest.mark.integration
def test_chroma_session_of_50_questions_survives_a_kill_and_restart(tmp_path):
    result = _reliability().chroma_session(tmp_path, questions=50)
    for phase in ("before", "down", "after"):
        assert result[phase]["errors"] == 0 and result[phase]["answered"] > 0, result
    assert result["down"]["with_notice"] == result["down"]["questions"]
    assert result["after"]["with_notice"] == 0
    assert result["after"]["used_vectors"] == result["after"]["questions"]
    assert result["ingest_while_down_exit"] == 2
