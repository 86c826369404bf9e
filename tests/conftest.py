"""Shared fixtures. Every test gets its own index directory; heavy parts load once."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import ingest  # noqa: F401  (offline hub, pinned threads, before torch loads)
from ingest.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
CORPUS_DIR = REPO_ROOT / "corpus"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does may touch the developer's real index or settings."""
    for name in list(__import__("os").environ):
        if name.startswith("CLINIQ_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLINIQ_STORE__INDEX_DIR", str(tmp_path / "index"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.store.index_dir = tmp_path / "index"
    s.lexicon_dir = CORPUS_DIR / "lexicon"
    return s


def shared_dataset(*parts: str) -> Path:
    """Path into ../shared/datasets, or skip the test with a message saying what is missing."""
    path = SHARED_DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset not found: {path} (see ../shared/datasets/README.md)")
    return path


@pytest.fixture(scope="session")
def embedder():
    """The real packaged model, loaded once per test session."""
    from ingest.embedding import get_embedder
    from ingest.settings import EmbeddingSettings

    return get_embedder(EmbeddingSettings())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(
    command: list[str],
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    timeout_s: float = 60,
    **popen: Any,
) -> Iterator[subprocess.Popen]:
    """A real server process, waited for until `ready()`, stopped afterwards; a failed start
    fails the test with the end of its log."""
    log = log_path.open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.flush()
                pytest.fail(f"{what} did not start: see {log_path}\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def answers_http(url: str) -> Callable[[], bool]:
    """A readiness probe: the URL answers at all."""

    def probe() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except OSError:
            return False

    return probe


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on a free loopback port; yields (host, port)."""
    import os
    import shutil
    import sys

    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.fail("the `chroma` CLI is missing from the environment (pip install chromadb)")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with serving(
        [exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        data / "server.log",
        answers_http(f"http://127.0.0.1:{port}/api/v2/heartbeat"),
        "chroma server",
        env=env,
    ):
        yield ("127.0.0.1", port)


def write_doc(directory: Path, doc_id: str, body: str, **front: object) -> Path:
    """A corpus-format Markdown document (front matter + body) for tests."""
    import yaml

    meta = {
        "id": doc_id,
        "title": front.pop("title", f"Document {doc_id}"),
        "organization": front.pop("organization", "Test Society"),
        "year": front.pop("year", 2024),
        "doc_type": front.pop("doc_type", "guideline"),
        "status": front.pop("status", "current"),
        "url": front.pop("url", f"https://example.org/{doc_id}"),
        **front,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{doc_id}.md"
    path.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + body)
    return path


def library_of(
    pages: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Any,
    *,
    lexicon: bool = True,
) -> Any:
    """An assistant over a small library of files (name -> text), on the real model and index;
    `lexicon=False`: with no lexicon at all, which must not matter."""
    from assistant.engine import Assistant
    from ingest.pipeline import ingest_paths

    folder = tmp_path_factory.mktemp("pages")
    for name, text in pages.items():
        (folder / name).write_text(text)
    settings = Settings()
    settings.store.index_dir = tmp_path_factory.mktemp("index")
    if not lexicon:
        settings.lexicon_dir = tmp_path_factory.mktemp("x") / "no-lexicon"
    ingest_paths([folder], settings, embedder=embedder)
    return Assistant(settings, embedder=embedder)


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    """A PDF with a text layer: one list of lines per page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    if title:
        pdf.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return path


@pytest.fixture(scope="session")
def served_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """One small real index for the tests that start servers: four bundled corpus documents and
    a two-page PDF (so passages carry a page). Built once per session."""
    from ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("served")
    (root / "docs").mkdir()
    pdf_path = make_pdf(
        root / "docs" / "urate-guide.pdf",
        [
            ["Urate lowering in recurrent gout", "Scope", "This guide covers adults with gout."],
            [
                "Treatment",
                "Allopurinol is the first-line urate-lowering drug for recurrent gout flares.",
                "The serum urate target is below 6 mg/dL during urate-lowering therapy.",
            ],
        ],
        title="Urate lowering in recurrent gout: a practice guide",
    )
    settings = Settings()
    settings.store.index_dir = root / "index"
    settings.lexicon_dir = CORPUS_DIR / "lexicon"
    files = [
        CORPUS_DIR / "guidelines" / "aasm-2025-rls-plmd.md",
        CORPUS_DIR / "guidelines" / "rls-pregnancy-2015.md",
        CORPUS_DIR / "guidelines" / "irlssg-2018-iron.md",
        CORPUS_DIR / "research" / "nrdp-2021-rls-primer.md",
        pdf_path,
    ]
    report = ingest_paths(files, settings, embedder=embedder)
    assert not report.skipped, report.skipped
    return settings.store.index_dir


@pytest.fixture(scope="module")
def scripted_llm(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The scripted OpenAI-compatible server (scripts/scripted_llm_server.py), a real process on
    127.0.0.1, with no rules yet: (base_url, the rules file a test writes)."""
    import json
    import sys

    work = tmp_path_factory.mktemp("scripted-llm")
    script = work / "rules.json"
    script.write_text(json.dumps({"rules": []}))
    port = free_port()
    command = [
        sys.executable, str(REPO_ROOT / "scripts" / "scripted_llm_server.py"),
        "--port", str(port), "--script", str(script), "--log", str(work / "requests.jsonl"),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with serving(command, work / "server.log", answers_http(url + "/models"), "scripted LLM"):
        yield url, script
