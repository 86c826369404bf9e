"""Embedding backends: the ONNX exports agree with torch, and an index keeps its backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_doc

from ingest.embedding import cache_key, get_embedder, resolve_backend
from ingest.errors import IndexMismatchError
from ingest.pipeline import ingest_paths
from ingest.settings import EmbeddingSettings, Settings
from ingest.store import Index

TEXTS = [
    "Ferritin below 75 ng/mL calls for iron supplementation.",
    "Which drugs treat restless legs syndrome in adults on dialysis?",
    "Transferrin saturation below 20 percent also counts as low iron status. " * 12,
    "Gabapentin enacarbil is recommended.",
]


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    return {
        b: get_embedder(EmbeddingSettings(backend=b)).embed(TEXTS, bulk=True)
        for b in ("torch", "onnx", "onnx-int8")
    }


def test_onnx_float32_gives_torchs_vectors(vectors):
    cosine = (vectors["onnx"] * vectors["torch"]).sum(axis=1)
    assert cosine.min() > 0.9999
    assert np.allclose(np.linalg.norm(vectors["onnx"], axis=1), 1.0, atol=1e-5)


def test_int8_stays_close_to_float32(vectors):
    cosine = (vectors["onnx-int8"] * vectors["torch"]).sum(axis=1)
    assert cosine.min() > 0.97
    # Close is not identical: the int8 vectors are their own backend, with their own cache keys.
    assert not np.allclose(vectors["onnx-int8"], vectors["torch"], atol=1e-4)
    assert cache_key("onnx-int8", TEXTS[0]) != cache_key("torch", TEXTS[0])


def test_query_and_batch_paths_agree():
    embedder = get_embedder(EmbeddingSettings())
    batch = embedder.embed(TEXTS, bulk=True)
    one = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert (batch * one).sum(axis=1).min() > 0.9999


def test_auto_resolves_to_a_concrete_backend():
    assert resolve_backend(EmbeddingSettings()) in ("torch", "onnx", "onnx-int8")
    assert get_embedder(EmbeddingSettings()).backend == resolve_backend(EmbeddingSettings())


def _other(backend: str) -> str:
    return "torch" if backend != "torch" else "onnx"


def test_index_is_queried_with_the_backend_it_was_built_with(tmp_path):
    docs = tmp_path / "docs"
    write_doc(docs, "iron", "# Iron\n\nFerritin below 75 ng/mL calls for iron.\n")
    built = Settings()
    built.store.index_dir = tmp_path / "index"
    default = resolve_backend(built.embedding)
    built.embedding.backend = _other(default)  # type: ignore[assignment]
    ingest_paths([docs], built)

    reopened = Settings()
    reopened.store.index_dir = built.store.index_dir
    index = Index.open(reopened)  # auto: adopts what the index holds
    assert index.embedder.backend == _other(default)
    assert index.stats().embedding_backend == _other(default)
    assert index.query_dense("iron ferritin", k=1)[0].score > 0.5
    index.close()

    reopened.embedding.backend = default  # type: ignore[assignment]
    with pytest.raises(IndexMismatchError, match="CLINIQ_EMBEDDING__BACKEND"):
        Index.open(reopened)


def test_a_new_input_format_replaces_every_vector(tmp_path, embedder):
    """Vectors of unchanged chunks are replaced when what is embedded changes (from the cache
    where the input itself is unchanged), so an index never mixes two input formats."""
    from ingest.store import INPUT_FORMAT

    docs = tmp_path / "docs"
    write_doc(docs, "iron", "# Iron\n\nFerritin below 75 ng/mL calls for iron.\n")
    settings = Settings()
    settings.store.index_dir = tmp_path / "index"
    ingest_paths([docs], settings, embedder=embedder)
    index = Index.open(settings, embedder)
    index.docstore.set_meta("input_format", "0")
    index.close()

    again = ingest_paths([docs], settings, embedder=embedder)
    assert again.documents_updated == 1
    assert again.embeddings_reused >= 1 and again.chunks_embedded == 0
    index = Index.open(settings, embedder)
    assert index.docstore.get_meta("input_format") == INPUT_FORMAT
    assert index.vectors.count() == index.stats().chunks
    index.close()


def test_token_encoder_is_made_once_per_embedder(embedder) -> None:
    """The judge and the token rerank share one ONNX session (each costs a load)."""
    assert embedder.token_encoder() is embedder.token_encoder()
