"""Incremental and crash-safe ingest, on the real model and real embedded Chroma."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, write_doc
from filelock import FileLock

from ingest.errors import IndexBusyError
from ingest.pipeline import ingest_paths
from ingest.settings import Settings
from ingest.store import MANIFEST_NAME, Index
from ingest.vectors import ChromaVectors


def _body(topic: str, n: int = 3) -> str:
    lines = [f"# {topic.title()}", ""]
    lines += [f"Sentence {i} about {topic} and its clinical management." for i in range(n)]
    return "\n".join(lines) + "\n"


def _state(settings: Settings, embedder) -> tuple[set[str], set[str], int]:
    """(chunk ids in the manifest, vector ids in Chroma, pending documents)."""
    index = Index(settings, embedder)
    try:
        manifest_ids = {cid for d in index.docstore.documents() for cid in d.chunk_ids}
        return manifest_ids, index.vectors.ids(), len(index.docstore.documents("pending"))
    finally:
        index.close()


def test_unchanged_rerun_embeds_nothing(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    for i in range(4):
        write_doc(docs, f"doc-{i}", _body(f"topic {i}"))
    first = ingest_paths([docs], settings, embedder=embedder)
    assert first.documents_added == 4 and first.chunks_embedded > 0

    second = ingest_paths([docs], settings, embedder=embedder)
    assert second.documents_added == second.documents_updated == 0
    assert second.documents_unchanged == 4
    assert second.files_unchanged == 4
    assert second.chunks_embedded == 0

    # Same bytes, new mtime: hashed again, still unchanged.
    os.utime(docs / "doc-0.md", None)
    third = ingest_paths([docs], settings, embedder=embedder)
    assert third.documents_unchanged == 4 and third.chunks_embedded == 0


def test_changed_document_replaces_its_chunks_only(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    body = "# Iron\n\nFerritin is measured in the morning.\n\n# Drugs\n\nGabapentin is used.\n"
    path = write_doc(docs, "doc", body)
    write_doc(docs, "other", _body("other"))
    ingest_paths([docs], settings, embedder=embedder)
    before, _, _ = _state(settings, embedder)

    path.write_text(path.read_text().replace("Gabapentin is used.", "Pregabalin is used."))
    report = ingest_paths([docs], settings, embedder=embedder)
    assert report.documents_updated == 1 and report.documents_unchanged == 1
    assert report.chunks_removed >= 1 and report.chunks_added >= 1
    after, vectors, pending = _state(settings, embedder)
    assert pending == 0
    assert after == vectors, "manifest and vector store disagree"
    assert before & after, "the unchanged chunks kept their ids"
    index = Index.open(settings, embedder)
    assert index.query_lexical("gabapentin", k=5) == []
    assert index.query_lexical("pregabalin", k=5)


def test_identical_texts_are_embedded_once(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    body = "# Advice\n\nAvoid caffeine and alcohol in the evening.\n"
    write_doc(docs, "copy-a", body, title="Same title")
    write_doc(docs, "copy-b", body, title="Same title")
    report = ingest_paths([docs], settings, embedder=embedder)
    assert report.documents_added == 2
    assert report.chunks_embedded == 1
    assert report.embeddings_reused == 1


def test_interrupted_write_is_never_served_and_is_repaired(
    settings, tmp_path, embedder, monkeypatch
):
    docs = tmp_path / "docs"
    for i in range(3):
        write_doc(docs, f"doc-{i}", _body(f"subject {i}"))
    clean = settings.model_copy(deep=True)
    clean.store.index_dir = tmp_path / "clean-index"
    ingest_paths([docs], clean, embedder=embedder)
    expected, _, _ = _state(clean, embedder)

    settings.ingest.batch_chunks = 1
    real_upsert = ChromaVectors.upsert
    calls = {"n": 0}

    def crash_on_second_batch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            real_upsert(self, *args, **kwargs)  # the vectors land, the commit never happens
            raise KeyboardInterrupt("simulated kill")
        return real_upsert(self, *args, **kwargs)

    monkeypatch.setattr(ChromaVectors, "upsert", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([docs], settings, embedder=embedder)
    monkeypatch.setattr(ChromaVectors, "upsert", real_upsert)

    index = Index(settings, embedder)
    pending = {d.id for d in index.docstore.documents("pending")}
    assert pending, "the simulated kill should leave a pending document"
    served = {index.get([h.chunk_id])[0].document.id for h in index.query_dense("subject", k=20)}
    assert not served & pending, "a half-written document was served"
    index.close()

    report = ingest_paths([docs], settings, embedder=embedder)
    assert report.documents_repaired == len(pending)
    manifest_ids, vector_ids, still_pending = _state(settings, embedder)
    assert still_pending == 0
    assert manifest_ids == vector_ids == expected


@pytest.mark.integration
def test_kill_9_mid_ingest_then_resume(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    for i in range(60):
        write_doc(docs, f"doc-{i:03d}", _body(f"condition {i}", n=6))
    clean = settings.model_copy(deep=True)
    clean.store.index_dir = tmp_path / "clean-index"
    ingest_paths([docs], clean, embedder=embedder)
    expected, _, _ = _state(clean, embedder)

    index_dir = settings.store.index_dir
    env = {
        **os.environ,
        "CLINIQ_STORE__INDEX_DIR": str(index_dir),
        "CLINIQ_INGEST__BATCH_CHUNKS": "3",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "ingest", str(docs)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    manifest = index_dir / MANIFEST_NAME
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists():
            try:
                with sqlite3.connect(manifest, timeout=1) as db:
                    committed = db.execute(
                        "SELECT COUNT(*) FROM documents WHERE state='committed'"
                    ).fetchone()[0]
            except sqlite3.Error:
                committed = 0
            if committed >= 5:
                break
        time.sleep(0.05)
    assert proc.poll() is None, f"ingest ended before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= committed < 60

    report = ingest_paths([docs], settings, embedder=embedder)
    assert report.documents_added + report.documents_unchanged == 60
    manifest_ids, vector_ids, pending = _state(settings, embedder)
    assert pending == 0
    assert manifest_ids == vector_ids == expected
    again = ingest_paths([docs], settings, embedder=embedder)
    assert again.documents_unchanged == 60 and again.chunks_embedded == 0


def test_second_ingest_refuses_while_locked(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    write_doc(docs, "doc", _body("locking"))
    settings.store.index_dir.mkdir(parents=True)
    lock = FileLock(str(settings.store.index_dir / "ingest.lock"))
    with lock, pytest.raises(IndexBusyError, match="another ingest"):
        ingest_paths([docs], settings, embedder=embedder)


@pytest.mark.integration
def test_concurrent_cli_ingests_refuse_or_wait(settings, tmp_path):
    docs = tmp_path / "docs"
    for i in range(20):
        write_doc(docs, f"doc-{i:02d}", _body(f"item {i}", n=4))
    env = {**os.environ, "CLINIQ_STORE__INDEX_DIR": str(settings.store.index_dir)}
    cmd = [sys.executable, "-m", "assistant.cli", "ingest", str(docs)]
    settings.store.index_dir.mkdir(parents=True)
    lock = FileLock(str(settings.store.index_dir / "ingest.lock"))
    lock.acquire()
    try:
        refused = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
        waiting = subprocess.Popen(
            [*cmd, "--wait", "120"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        time.sleep(2)
        assert waiting.poll() is None, "the --wait ingest should still be waiting for the lock"
    finally:
        lock.release()
    out, _ = waiting.communicate(timeout=180)
    assert refused.returncode == 2
    assert "another ingest" in refused.stderr
    assert waiting.returncode == 0, out
    assert "20" in out
