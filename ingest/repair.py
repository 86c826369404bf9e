"""`cliniq index check` and `cliniq index rebuild`: find a damaged part, and restore the derived
parts from the manifest.

The manifest (SQLite) is the source of truth: it holds every served chunk's text and metadata
and the embedding cache. BM25 and the vectors are derived from it, so a damaged BM25 directory
or vector store is rebuilt from it without reading a source file again (a chunk whose vector is
not cached is embedded again). A damaged manifest cannot be rebuilt from the other parts; the
sources must be ingested again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.docstore import DocStore
from ingest.embedding import Embedder, cache_key, get_embedder
from ingest.errors import CliniqError, IndexDamagedError
from ingest.lexical import BM25Index
from ingest.settings import Settings
from ingest.store import MANIFEST_NAME, Index, chunk_metadata, embedding_input
from ingest.types import Chunk
from ingest.vectors import drop_embedded


@dataclass
class PartCheck:
    """One part of the index and what was found."""

    name: str  # manifest | bm25 | vectors
    location: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    parts: list[PartCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.parts)

    def damaged(self) -> list[PartCheck]:
        return [p for p in self.parts if not p.ok]


@dataclass
class RebuildReport:
    chunks: int = 0
    vectors_from_cache: int = 0
    vectors_embedded: int = 0
    pending_documents: int = 0
    elapsed_s: float = 0.0


def check_index(settings: Settings, embedder: Embedder | None = None) -> CheckReport:
    """Every part, checked against the manifest; nothing is changed."""
    index_dir = Path(settings.store.index_dir)
    report = CheckReport()
    manifest = index_dir / MANIFEST_NAME
    if not manifest.exists():
        report.parts.append(PartCheck("manifest", str(manifest), False, "missing"))
        return report
    try:
        store = DocStore(manifest)
        store.check(thorough=True)
        served = store.committed_chunk_ids()
        counts = store.counts()
    except sqlite3.DatabaseError as exc:
        report.parts.append(
            PartCheck(
                "manifest",
                str(manifest),
                False,
                f"damaged ({exc}); ingest the sources again with `cliniq ingest SOURCES "
                f"--rebuild --index {index_dir}`",
            )
        )
        report.parts.append(PartCheck("bm25", str(index_dir / "bm25"), False, "not checked"))
        report.parts.append(PartCheck("vectors", "", False, "not checked"))
        return report
    report.parts.append(
        PartCheck(
            "manifest",
            str(manifest),
            True,
            f"{counts.get('documents_committed', 0)} documents served, "
            f"{counts.get('documents_pending', 0)} pending, {len(served)} chunks, "
            f"{counts.get('cached_embeddings', 0)} cached embeddings",
        )
    )
    report.parts.append(_check_bm25(index_dir / "bm25", store, served))
    store.close()
    report.parts.append(_check_vectors(settings, embedder, served))
    return report


def _check_bm25(directory: Path, store: DocStore, served: set[str]) -> PartCheck:
    if not directory.exists():
        return PartCheck("bm25", str(directory), False, "missing")
    loaded = BM25Index.load(directory)
    if loaded is None:
        return PartCheck("bm25", str(directory), False, "damaged: its files cannot be read")
    if set(loaded.ids) != served or loaded.generation != store.generation:
        return PartCheck(
            "bm25",
            str(directory),
            False,
            f"stale: {len(loaded.ids)} chunks of generation {loaded.generation}, the manifest "
            f"serves {len(served)} of generation {store.generation}",
        )
    return PartCheck("bm25", str(directory), True, f"{len(loaded.ids)} chunks")


def _check_vectors(settings: Settings, embedder: Embedder | None, served: set[str]) -> PartCheck:
    try:
        index = Index(settings, embedder)
    except CliniqError as exc:
        return PartCheck("vectors", _vector_location(settings), False, str(exc))
    where = index.vectors.location
    try:
        stored = index.vectors.ids()
        missing = served - stored
        if missing:
            problem = f"{len(missing)} of {len(served)} served chunks have no vector"
            return PartCheck("vectors", where, False, problem)
        sample = sorted(served)[:: max(1, len(served) // 20)][:20]
        vectors = index.vectors.vectors(sample)
        for cid in sample:
            vector = vectors.get(cid)
            if vector is None or not np.isfinite(vector).all():
                return PartCheck("vectors", where, False, f"chunk {cid}'s vector is unreadable")
            hits = index.vectors.query(vector, 1)
            if not hits or hits[0].similarity < 0.99:
                problem = f"a search for chunk {cid}'s own vector does not find it"
                return PartCheck("vectors", where, False, problem)
    except CliniqError as exc:
        return PartCheck("vectors", where, False, str(exc))
    except Exception as exc:  # a damaged store raises whatever its library does
        return PartCheck("vectors", where, False, f"damaged: {type(exc).__name__}: {exc}")
    finally:
        index.close()
    extra = len(stored - served)
    detail = f"{len(stored)} vectors"
    if extra:
        detail += f" ({extra} of pending or removed chunks)"
    return PartCheck("vectors", where, True, detail)


def _vector_location(settings: Settings) -> str:
    s = settings.store
    return f"chroma server {s.host}:{s.port}" if s.host else str(Path(s.index_dir) / "chroma")


def rebuild_index(settings: Settings, embedder: Embedder | None = None) -> RebuildReport:
    """BM25 and every served chunk's vector again, from the manifest and its embedding cache.

    Runs under the ingest lock. Pending documents (an interrupted ingest) stay pending: the
    next ingest repairs them as usual."""
    from ingest.pipeline import acquire_lock

    started = time.perf_counter()
    index_dir = Path(settings.store.index_dir)
    manifest = index_dir / MANIFEST_NAME
    if not manifest.exists():
        raise CliniqError(f"no manifest at {manifest}: build the index with `cliniq ingest`")
    lock = acquire_lock(settings)
    try:
        try:
            store = DocStore(manifest)
            store.check(thorough=True)
        except sqlite3.DatabaseError as exc:
            raise IndexDamagedError(
                f"the manifest {manifest} is damaged ({exc}), so nothing can be rebuilt from "
                f"it: ingest the sources again with `cliniq ingest SOURCES --rebuild --index "
                f"{index_dir}`"
            ) from exc
        store.close()
        shutil.rmtree(index_dir / "bm25", ignore_errors=True)
        embedder = embedder or get_embedder(settings.embedding)
        if not settings.store.host:  # made anew: its files may not even open
            drop_embedded(index_dir / "chroma")
        index = Index(settings, embedder)
        try:
            report = _refill(index)
            index.invalidate()
            index.rebuild_lexical()
        finally:
            index.close()
    finally:
        lock.release()
    report.elapsed_s = time.perf_counter() - started
    return report


def _refill(index: Index, batch: int = 1000) -> RebuildReport:
    report = RebuildReport()
    index.vectors.reset()
    backend = index.embedder.backend
    report.pending_documents = len(index.docstore.documents(state="pending"))
    rows = list(index.docstore.iter_committed_chunks())
    for start in range(0, len(rows), batch):
        chunks: list[Chunk] = []
        for _cid, text, chunk_json in rows[start : start + batch]:
            data = json.loads(chunk_json)
            data["text"] = text
            chunks.append(Chunk.model_validate(data))
        inputs = [embedding_input(c) for c in chunks]
        keys = [cache_key(backend, t) for t in inputs]
        cached = index.docstore.cached_embeddings(sorted(set(keys)))
        missing = {k: t for k, t in zip(keys, inputs, strict=True) if k not in cached}
        if missing:
            fresh = index.embedder.embed(list(missing.values()), bulk=True)
            new = dict(zip(missing.keys(), fresh, strict=True))
            index.docstore.cache_embeddings(new)
            cached.update(new)
        report.vectors_embedded += sum(1 for k in keys if k in missing)
        report.vectors_from_cache += sum(1 for k in keys if k not in missing)
        index.vectors.upsert(
            [c.id for c in chunks],
            np.stack([cached[k] for k in keys]),
            [c.text for c in chunks],
            [chunk_metadata(c) for c in chunks],
        )
        report.chunks += len(chunks)
    return report
