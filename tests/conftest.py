"""Shared fixtures. Every test gets its own index directory; heavy parts load once."""

from __future__ import annotations

from pathlib import Path

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
