"""The index: one narrow interface over the manifest (SQLite), Chroma and BM25.

Nothing outside ``ingest`` imports chromadb or bm25s; the assistant asks this class for dense and
lexical hits and for chunks by id. Only committed documents are ever served.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.docstore import DocStore
from ingest.embedding import Embedder, cache_key, get_embedder
from ingest.errors import (
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexSpaceError,
    StoreUnavailableError,
)
from ingest.lexical import BM25Index
from ingest.settings import Settings
from ingest.types import Chunk, DocStatus, DocType
from ingest.vectors import ChromaVectors, VectorHit

MANIFEST_NAME = "manifest.sqlite3"
# Filtered dense search (Index.query_dense): at most this many accepted chunks are searched
# exactly in memory (20k x 384 float32 = 30 MB); a filter that turns away at most this many is
# an unfiltered search over-fetched by that many (1,000 more results cost about 5 ms).
EXACT_SEARCH_MAX = 20_000
OVERFETCH_MAX = 1_000


@dataclass(frozen=True)
class ChunkFilter:
    """Store-level filters; None means no restriction."""

    doc_types: frozenset[DocType] | None = None
    statuses: frozenset[DocStatus] | None = None
    recommendations_only: bool = False
    prose_only: bool = False  # everything but recommendation blocks

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.doc_types:
            clauses.append({"doc_type": {"$in": sorted(str(t) for t in self.doc_types)}})
        if self.statuses:
            clauses.append({"status": {"$in": sorted(str(s) for s in self.statuses)}})
        if self.recommendations_only:
            clauses.append({"is_recommendation": True})
        if self.prose_only:
            clauses.append({"is_recommendation": False})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def accepts(self, doc_type: str, status: str, is_recommendation: bool) -> bool:
        return (
            (not self.doc_types or doc_type in self.doc_types)
            and (not self.statuses or status in self.statuses)
            and (is_recommendation or not self.recommendations_only)
            and not (is_recommendation and self.prose_only)
        )


@dataclass(frozen=True)
class Hit:
    """A chunk id with the score one retriever gave it (cosine or BM25) and its rank there."""

    chunk_id: str
    score: float
    rank: int


@dataclass
class IndexStats:
    location: str
    vector_backend: str
    embedding_model: str
    dimension: int | None
    documents: int
    pending_documents: int
    chunks: int
    vectors: int
    cached_embeddings: int
    lexical_generation: int
    manifest_generation: int
    by_doc_type: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    embedding_backend: str = ""


def chunk_metadata(chunk: Chunk) -> dict[str, str | int | float | bool]:
    """Flat, filterable metadata for Chroma (the full chunk lives in the manifest)."""
    doc = chunk.document
    return {
        "document_id": doc.id,
        "doc_type": str(doc.doc_type),
        "status": str(doc.status),
        "year": doc.year or 0,
        "position": chunk.position,
        "section": chunk.heading[:500],
        "is_recommendation": chunk.recommendation is not None,
    }


HEADING_CHARS = 120  # about 30 tokens: chunks leave that much room (ChunkingSettings.max_tokens)
TITLE_CHARS = 60
# Bump when embedding_input or lexical_text change: the next ingest re-embeds (from its cache
# where the input is unchanged) and every stored vector then means the same thing.
INPUT_FORMAT = "4"


def titled(doc_type: str) -> bool:
    """A patient-information page is about its title, so each of its chunks carries it (MedQuAD:
    +5 points R@5). A guideline covers many subjects and its headings give a chunk its context
    (with its title on every chunk, a question on one subject drew another's recommendations);
    a research abstract gained nothing on PubMedQA, and a review's title drew its chunks ahead
    of guideline text."""
    return doc_type == DocType.patient_info


def _context(chunk: Chunk) -> str:
    """The nearest section headings, after the document's title where `titled`."""
    head = " > ".join(chunk.section_path[-2:])
    title = " ".join(chunk.document.title.split())
    if not titled(chunk.document.doc_type):
        return (head or title)[:HEADING_CHARS]
    if title and title.lower() not in head.lower():
        head = f"{title[:TITLE_CHARS]} > {head}" if head else title
    return head[:HEADING_CHARS]


def embedding_input(chunk: Chunk) -> str:
    """What the model embeds: headings (and title, see `titled`) give a chunk its context
    (MedQuAD pages, questions withheld: dense R@5 0.938 -> 0.994; docs/benchmarks.md)."""
    return f"{_context(chunk)}\n{chunk.text}"


def lexical_text(title: str, section_path: Sequence[str], text: str, doc_type: str = "") -> str:
    """What BM25 indexes: title (see `titled`), full section path and text (the title: BM25
    R@5 0.926 -> 0.986 on MedQuAD pages)."""
    section = " ".join(section_path)
    if not titled(doc_type) or title.lower() in section.lower():
        title = ""
    return f"{title}\n{section}\n{text}"


class Index:
    """Open with ``Index.open(settings)`` to read; the ingest pipeline opens it for writing."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.dir = Path(settings.store.index_dir)
        self.docstore = open_manifest(self.dir)
        self._check_model(embedder.model_name if embedder else settings.embedding.model_name)
        self.embedder = self._embedder_for_index(embedder)
        self.vectors = ChromaVectors(settings.store, self.embedder)
        self._lexical: BM25Index | None = None
        self._chunk_kinds: dict[str, tuple[str, str, bool]] | None = None
        self._accepted_ids: dict[ChunkFilter, frozenset[str]] = {}
        self._subset_vectors: dict[ChunkFilter, tuple[list[str], np.ndarray]] = {}
        self._reading_only = False  # opened to answer: a BM25 it cannot save is kept in memory
        #: why the last dense search could not reach the vectors (None: it could)
        self.vector_fault: str | None = None

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Index:
        """Open an existing, non-empty index or say how to build one."""
        path = Path(settings.store.index_dir) / MANIFEST_NAME
        if not path.exists():
            raise IndexMissingError(
                f"no index at {settings.store.index_dir}: build it with `cliniq ingest corpus/` "
                "(or set CLINIQ_STORE__INDEX_DIR to an existing index)"
            )
        index = cls(settings, embedder)
        index._reading_only = True
        index.check_lexical_files()
        if not index.docstore.documents(state="committed"):
            raise IndexMissingError(
                f"the index at {settings.store.index_dir} is empty: run `cliniq ingest corpus/`"
            )
        return index

    def close(self) -> None:
        self.docstore.close()

    def check_lexical_files(self) -> None:
        """BM25 files that exist but cannot be read are named (they are rebuilt from the
        manifest on first use; `cliniq index rebuild` writes them back)."""
        directory = self.dir / "bm25"
        if directory.exists() and BM25Index.load(directory) is None:
            raise IndexDamagedError(
                f"the BM25 index at {directory} is damaged (it cannot be read); run "
                f"`cliniq index check --index {self.dir}` to see every part, then "
                f"`cliniq index rebuild --index {self.dir}` to rebuild it from the manifest"
            )

    # -- model identity ---------------------------------------------------------------------
    def _check_model(self, wanted: str) -> None:
        recorded = self.docstore.get_meta("embedding_model")
        if recorded is None:
            return
        recorded_dim = self.docstore.get_meta("embedding_dimension")
        if recorded != wanted:
            raise IndexMismatchError(
                f"the index at {self.dir} was built with the embedding model {recorded!r} "
                f"(dimension {recorded_dim}), but the settings use {wanted!r}. Rebuild it: "
                f"`cliniq ingest corpus/ --rebuild --index {self.dir}`, or set "
                f"CLINIQ_EMBEDDING__MODEL_NAME={recorded}"
            )

    def recorded_backend(self) -> str | None:
        """The backend whose vectors this index holds (indexes from before backends: torch)."""
        backend = self.docstore.get_meta("embedding_backend")
        if backend is None and self.docstore.get_meta("embedding_model") is not None:
            return "torch"
        return backend

    def _embedder_for_index(self, embedder: Embedder | None) -> Embedder:
        """Queries must be embedded the way the stored vectors were: an index built on another
        backend is opened with that backend when the setting is `auto`, and refused otherwise."""
        chosen = embedder or get_embedder(self.settings.embedding)
        recorded = self.recorded_backend()
        if recorded is None or chosen.backend == recorded:
            return chosen
        if self.settings.embedding.backend in ("auto", recorded):
            return get_embedder(chosen.settings.model_copy(update={"backend": recorded}))
        raise IndexMismatchError(
            f"the index at {self.dir} holds vectors from the {recorded!r} embedding backend, "
            f"but the settings ask for {chosen.backend!r}. Set CLINIQ_EMBEDDING__BACKEND="
            f"{recorded} (or auto), or rebuild: `cliniq ingest corpus/ --rebuild --index "
            f"{self.dir}`"
        )

    def record_model(self) -> None:
        """Record the model and backend on a new index; an existing index only names them."""
        if self.docstore.get_meta("embedding_model") is None:
            self.docstore.set_meta("embedding_model", self.embedder.model_name)
            self.docstore.set_meta("embedding_dimension", str(self.embedder.dimension))
            self.docstore.set_meta("embedding_backend", self.embedder.backend)

    def check_dimension(self, vectors_dim: int) -> None:
        """Called with freshly computed vectors: a model swapped under the same name shows here."""
        dim = int(self.docstore.get_meta("embedding_dimension") or 0)
        if dim and dim != vectors_dim:
            raise IndexMismatchError(
                f"the index at {self.dir} holds {dim}-dimensional vectors but the model at "
                f"{self.embedder.model_path} gives {vectors_dim}; rebuild with "
                "`cliniq ingest corpus/ --rebuild`"
            )

    # -- reading ----------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return self.docstore.get_chunks(ids)

    def document_chunks(self, document_id: str) -> list[Chunk]:
        """All served chunks of one document, in order."""
        return self.docstore.get_chunks(self.docstore.document_chunk_ids(document_id))

    def query_dense(
        self, query: str | np.ndarray, k: int, filters: ChunkFilter | None = None
    ) -> list[Hit]:
        """Nearest served chunks. A filtered query never goes to Chroma's metadata filter
        where it can be helped (180 ms at 100k chunks, against 8 ms unfiltered): a narrow
        filter (recommendations, guideline prose) is an exact search over its few vectors,
        kept in memory; a broad one (all but the guidelines) is an unfiltered search,
        over-fetched by as many chunks as it turns away, filtered here."""
        vector = self.embedder.embed_query(query) if isinstance(query, str) else query
        try:
            hits = self._query_dense(vector, k, filters)
        except (StoreUnavailableError, IndexDamagedError, IndexSpaceError) as exc:
            # The lexical half still answers; the caller says so (`vector_fault`).
            self.vector_fault = str(exc)
            return []
        self.vector_fault = None
        return hits

    def _query_dense(self, vector: np.ndarray, k: int, filters: ChunkFilter | None) -> list[Hit]:
        served = self._served_kinds()
        if filters is not None and filters.chroma_where() is not None:
            accepted = self._accepted(filters)
            if len(accepted) <= EXACT_SEARCH_MAX:
                return self._exact_search(vector, k, filters)
            rejected = len(served) - len(accepted)
            if rejected <= OVERFETCH_MAX:
                # The nearest k accepted chunks are among the nearest k + rejected (+ orphans).
                raw = self.vectors.query(vector, k + 20 + rejected)
                return self._hits([h for h in raw if h.chunk_id in accepted], k)
        where = filters.chroma_where() if filters else None
        # Over-fetch: vectors of pending documents (or orphans after a crash) are dropped below.
        raw = self.vectors.query(vector, k + 20, where)
        return self._hits([h for h in raw if h.chunk_id in served], k)

    @staticmethod
    def _hits(hits: Sequence[VectorHit], k: int) -> list[Hit]:
        return [Hit(h.chunk_id, h.similarity, rank) for rank, h in enumerate(hits[:k], start=1)]

    def _accepted(self, filters: ChunkFilter) -> frozenset[str]:
        """The served chunk ids a filter lets through (remembered until `invalidate`)."""
        if filters not in self._accepted_ids:
            self._accepted_ids[filters] = frozenset(
                cid for cid, kind in self._served_kinds().items() if filters.accepts(*kind)
            )
        return self._accepted_ids[filters]

    def _exact_search(self, vector: np.ndarray, k: int, filters: ChunkFilter) -> list[Hit]:
        if filters not in self._subset_vectors:
            ids = sorted(self._accepted(filters))
            stored: dict[str, np.ndarray] = {}
            for start in range(0, len(ids), 2000):
                stored.update(self.vectors.vectors(ids[start : start + 2000]))
            kept = [i for i in ids if i in stored]
            matrix = (
                np.stack([stored[i] for i in kept])
                if kept
                else np.zeros((0, len(vector)), dtype=np.float32)
            )
            self._subset_vectors[filters] = (kept, matrix)
        ids, matrix = self._subset_vectors[filters]
        if not ids:
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-scores, kind="stable")[:k]
        return self._hits([VectorHit(ids[i], float(scores[i])) for i in top], k)

    def similarities(self, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        """Cosine of stored chunk vectors to `vector` (chunks the dense search did not return).
        Read from the manifest's embedding cache (one SQLite query); Chroma for any it lacks."""
        wanted = sorted(set(ids))
        backend = self.embedder.backend
        keys = {c.id: cache_key(backend, embedding_input(c)) for c in self.get(wanted)}
        cached = self.docstore.cached_embeddings(sorted(set(keys.values())))
        stored = {cid: cached[key] for cid, key in keys.items() if key in cached}
        missing = [cid for cid in wanted if cid not in stored]
        if missing:
            with contextlib.suppress(StoreUnavailableError):  # scored as not found
                stored.update(self.vectors.vectors(missing))
        return {i: float(np.dot(v, vector)) for i, v in stored.items()}

    def query_lexical(self, query: str, k: int, filters: ChunkFilter | None = None) -> list[Hit]:
        lexical = self.lexical()
        served = self._served_kinds()
        fetch = k if filters is None else k * 10
        out: list[Hit] = []
        for hit in lexical.query(query, fetch):
            kind = served.get(hit.chunk_id)
            if kind is None or (filters and not filters.accepts(*kind)):
                continue
            out.append(Hit(hit.chunk_id, hit.score, len(out) + 1))
            if len(out) == k:
                break
        return out

    def _served_kinds(self) -> dict[str, tuple[str, str, bool]]:
        """chunk id -> (doc_type, status, is_recommendation) for every committed chunk."""
        if self._chunk_kinds is None:
            self._chunk_kinds = self.docstore.served_chunk_kinds()
        return self._chunk_kinds

    def lexical(self) -> BM25Index:
        """The BM25 index of the current manifest generation, rebuilt if stale or missing."""
        generation = self.docstore.generation
        if self._lexical is not None and self._lexical.generation == generation:
            return self._lexical
        loaded = BM25Index.load(self.dir / "bm25")
        if loaded is None or loaded.generation != generation:
            loaded = self.rebuild_lexical()
        self._lexical = loaded
        return loaded

    def rebuild_lexical(self) -> BM25Index:
        ids, texts = [], []
        for cid, text, chunk_json in self.docstore.iter_committed_chunks():
            ids.append(cid)
            data = json.loads(chunk_json)
            doc = data.get("document") or {}
            texts.append(
                lexical_text(
                    doc.get("title") or "",
                    data.get("section_path") or [],
                    text,
                    doc.get("doc_type") or "",
                )
            )
        index = BM25Index.build(ids, texts, self.docstore.generation)
        try:
            index.save(self.dir / "bm25")
        except OSError:
            # A full disk or a read-only index: served from memory; the next ingest or
            # `cliniq index rebuild` writes it.
            if not self._reading_only:
                raise
        self._lexical = index
        return index

    def warm_up(self) -> None:
        """Load what the first query would otherwise pay for: BM25, the served-chunk table, and
        Chroma's vector index (its first search reads it from disk: 0.5-1 s at 100k chunks)."""
        self.lexical()
        self._served_kinds()
        with contextlib.suppress(StoreUnavailableError, IndexDamagedError, IndexSpaceError):
            self.vectors.query(self.embedder.embed_query("warm up"), 100)

    def invalidate(self) -> None:
        self._lexical = None
        self._chunk_kinds = None
        self._accepted_ids = {}
        self._subset_vectors = {}

    def _vector_count(self) -> int:
        """-1 when the vector server cannot be reached."""
        try:
            return self.vectors.count()
        except (StoreUnavailableError, IndexDamagedError, IndexSpaceError):
            return -1

    def stats(self) -> IndexStats:
        counts = self.docstore.counts()
        lexical = BM25Index.load(self.dir / "bm25")
        dim = self.docstore.get_meta("embedding_dimension")
        return IndexStats(
            location=str(self.dir),
            vector_backend=self.vectors.location,
            embedding_model=self.docstore.get_meta("embedding_model") or self.embedder.model_name,
            dimension=int(dim) if dim else None,
            documents=counts.get("documents_committed", 0),
            pending_documents=counts.get("documents_pending", 0),
            chunks=counts.get("chunks", 0),
            vectors=self._vector_count(),
            cached_embeddings=counts.get("cached_embeddings", 0),
            lexical_generation=lexical.generation if lexical else -1,
            manifest_generation=self.docstore.generation,
            by_doc_type=self.docstore.count_by("doc_type"),
            by_status=self.docstore.count_by("status"),
            embedding_backend=self.recorded_backend() or self.embedder.backend,
        )


def open_manifest(index_dir: Path) -> DocStore:
    """The manifest, or an error naming it when it is not a readable manifest."""
    path = Path(index_dir) / MANIFEST_NAME
    try:
        store = DocStore(path)
        store.check()
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(
            f"the manifest {path} is damaged ({exc}). It is the index's record of every "
            f"document and chunk, so it cannot be rebuilt from the other parts: rebuild the "
            f"index from the sources with `cliniq ingest SOURCES --rebuild --index {index_dir}` "
            f"(`cliniq index check --index {index_dir}` lists every part)"
        ) from exc
    return store
