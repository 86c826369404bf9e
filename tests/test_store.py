"""One conformance suite for the index: embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import write_doc

from ingest.errors import IndexMismatchError, IndexMissingError
from ingest.pipeline import ingest_paths
from ingest.settings import Settings
from ingest.store import ChunkFilter, Index
from ingest.types import DocType

IRON_BODY = """# Iron

Ferritin below 75 ng/mL calls for iron supplementation in adults with restless legs syndrome.
Transferrin saturation below 20 percent also counts as low iron status.

```recommendation
statement: >-
  The society recommends intravenous ferric carboxymaltose for adults with restless legs
  syndrome and low ferritin.
direction: for
strength: strong
certainty: moderate
population: adults with RLS
intervention: IV ferric carboxymaltose
```
"""

GOUT_BODY = """# Gout

Allopurinol lowers serum urate in people with recurrent gout flares.
Colchicine treats acute gout attacks.
"""


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.integration)])
def backend_settings(request, settings: Settings) -> Settings:
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        settings.store.host = host
        settings.store.port = port
        settings.store.collection = f"test-{uuid.uuid4().hex[:12]}"
    return settings


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write_doc(docs, "iron-guideline", IRON_BODY, title="Iron therapy for RLS")
    write_doc(docs, "gout-review", GOUT_BODY, title="Gout review", doc_type="research")
    return docs


def test_ingest_then_query_dense_lexical_and_get(backend_settings, corpus_dir, embedder):
    report = ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    assert report.documents_added == 2
    index = Index.open(backend_settings, embedder)

    dense = index.query_dense("iron treatment for restless legs", k=3)
    assert dense, "dense search returned nothing"
    top = index.get([dense[0].chunk_id])[0]
    assert top.document.id == "iron-guideline"
    assert [h.rank for h in dense] == list(range(1, len(dense) + 1))

    lexical = index.query_lexical("allopurinol urate", k=3)
    assert index.get([lexical[0].chunk_id])[0].document.id == "gout-review"
    assert lexical[0].score > 0

    rec_hits = index.query_lexical("ferric carboxymaltose", k=5)
    chunks = index.get([h.chunk_id for h in rec_hits])
    recs = [c for c in chunks if c.recommendation is not None]
    assert len(recs) == 1
    assert recs[0].recommendation.strength == "strong"
    assert recs[0].recommendation.intervention == "IV ferric carboxymaltose"

    stats = index.stats()
    assert stats.documents == 2
    assert stats.vectors == stats.chunks > 0
    assert stats.embedding_model.endswith("all-MiniLM-L6-v2")


def test_filters_restrict_doc_type(backend_settings, corpus_dir, embedder):
    ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    index = Index.open(backend_settings, embedder)
    only_research = ChunkFilter(doc_types=frozenset({DocType.research}))
    for hits in (
        index.query_dense("iron restless legs", k=5, filters=only_research),
        index.query_lexical("iron gout", k=5, filters=only_research),
    ):
        assert hits
        assert {c.document.id for c in index.get([h.chunk_id for h in hits])} == {"gout-review"}


@pytest.mark.parametrize("exact_max", [0, 20_000])
def test_filtered_dense_search_equals_chromas_own(
    backend_settings, corpus_dir, embedder, monkeypatch, exact_max
):
    """In-memory exact search (narrow filters) and over-fetch (broad ones) return what
    Chroma's metadata filter returns, and an ingest that changes the index is seen."""
    import ingest.store as store

    monkeypatch.setattr(store, "EXACT_SEARCH_MAX", exact_max)
    monkeypatch.setattr(store, "OVERFETCH_MAX", 10_000)
    ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    index = Index.open(backend_settings, embedder)
    vector = embedder.embed_query("iron for restless legs")
    for filters in (
        ChunkFilter(recommendations_only=True),
        ChunkFilter(prose_only=True),
        ChunkFilter(doc_types=frozenset({DocType.research})),
        ChunkFilter(doc_types=frozenset({DocType.guideline}), prose_only=True),
    ):
        ours = index.query_dense(vector, k=5, filters=filters)
        raw = index.vectors.query(vector, 5, filters.chroma_where())
        assert [h.chunk_id for h in ours] == [h.chunk_id for h in raw]
        assert [h.score for h in ours] == pytest.approx([h.similarity for h in raw], abs=1e-5)
    recs = ChunkFilter(recommendations_only=True)
    assert len(index.query_dense(vector, k=5, filters=recs)) == 1
    write_doc(corpus_dir, "iron-two", IRON_BODY.replace("intravenous", "oral"), title="Oral iron")
    ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    index.invalidate()
    assert len(index.query_dense(vector, k=5, filters=recs)) == 2


def test_removing_a_document_deletes_its_vectors(backend_settings, corpus_dir, embedder):
    ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    (corpus_dir / "gout-review.md").unlink()
    report = ingest_paths([corpus_dir], backend_settings, embedder=embedder)
    assert report.documents_removed == 1
    index = Index.open(backend_settings, embedder)
    assert index.vectors.count() == index.stats().chunks
    hits = index.query_lexical("allopurinol", k=5)
    assert hits == []


def test_open_missing_index_says_how_to_build(settings):
    with pytest.raises(IndexMissingError, match="cliniq ingest"):
        Index.open(settings)


def test_other_embedding_model_is_refused_with_rebuild_hint(settings, corpus_dir, embedder):
    ingest_paths([corpus_dir], settings, embedder=embedder)
    index = Index.open(settings, embedder)
    index.docstore.set_meta("embedding_model", "some-other/model")
    index.close()
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        Index(settings, embedder)


def test_server_unreachable_is_a_clear_error(settings, embedder):
    from conftest import free_port

    from ingest.errors import StoreUnavailableError

    settings.store.host = "127.0.0.1"
    settings.store.port = free_port()
    index = Index(settings, embedder)  # the lexical half can still answer
    with pytest.raises(StoreUnavailableError, match="chroma run"):
        index.vectors.count()
    assert index.query_dense("iron", 5) == []
    assert f"127.0.0.1:{settings.store.port}" in index.vector_fault


def test_token_rerank_reorders_only_the_head_by_fused_score_plus_token_match(
    settings, corpus_dir, embedder
):
    from assistant.retrieve import Retriever
    from ingest.settings import RetrievalSettings
    from ingest.store import embedding_input

    write_doc(corpus_dir, "iron-two", IRON_BODY.replace("Ferritin", "Serum ferritin"), title="Iron")
    ingest_paths([corpus_dir], settings, embedder=embedder)
    index = Index.open(settings, embedder)
    query = "serum ferritin threshold for iron in restless legs"
    plain = Retriever(index, RetrievalSettings()).retrieve(query, k=10, diversify=False)
    reranker = Retriever(index, RetrievalSettings(rerank="tokens", rerank_depth=3))
    reranked = reranker.retrieve(query, k=10, diversify=False)
    assert len(plain) > 3
    ids = [p.chunk.id for p in plain]
    assert sorted(p.chunk.id for p in reranked) == sorted(ids)
    assert [p.chunk.id for p in reranked[3:]] == ids[3:]  # the tail keeps its order
    _, tokens = reranker.token_features.encode(
        [query] + [embedding_input(p.chunk) for p in plain[:3]]
    )
    match = {
        p.chunk.id: float((tokens[0] @ t.T).max(axis=1).mean())
        for p, t in zip(plain[:3], tokens[1:], strict=True)
    }
    expected = sorted(
        plain[:3], key=lambda p: (-(p.score / plain[0].score + match[p.chunk.id]), p.chunk.id)
    )
    assert [p.chunk.id for p in reranked[:3]] == [p.chunk.id for p in expected]
    assert all(0.0 < m <= 1.0 + 1e-5 for m in match.values())  # mean best token cosines
