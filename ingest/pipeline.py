"""Incremental, crash-safe ingest: files -> documents -> chunks -> embeddings -> index.

- Unchanged files (same size, mtime, or content hash) are not even parsed; unchanged documents
  are not re-chunked; a changed document's chunks are replaced; removed documents are deleted.
- Identical embedding inputs are embedded once (a cache keyed by their hash), and a chunk whose
  id the vector store already holds is never re-embedded.
- One writer at a time (a lock file); a second ingest waits up to ``lock_timeout_s`` or refuses.
- Each batch of documents is marked pending before the vector store changes and committed after;
  the next run deletes what a killed run left pending and ingests it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from filelock import FileLock, Timeout

from ingest.chunking import chunk_document
from ingest.docstore import FileRecord
from ingest.embedding import Embedder, cache_key
from ingest.errors import (
    CliniqError,
    IndexBusyError,
    IndexSpaceError,
    LoaderError,
    StoreUnavailableError,
    out_of_space,
)
from ingest.grading import registry
from ingest.loaders import iter_files, load_file_result
from ingest.settings import Settings
from ingest.store import INPUT_FORMAT, MANIFEST_NAME, Index, chunk_metadata, embedding_input
from ingest.tokens import default_token_counter
from ingest.types import Chunk, Document
from ingest.vectors import drop_embedded

# Bump when Chunk / DocumentRef fields, chunking rules or what a loader extracts (metadata,
# recommendations, grades) change: the next ingest reads every file again and re-chunks, so an
# index built by an earlier version does not keep its extraction.
CHUNK_FORMAT = "10"  # 10: remarks headings, list neighbours; 9: labels by layout; 8: contents


class Progress(Protocol):
    """What the CLI's progress bar implements; the pipeline reports, it never prints."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, phase: str, amount: int = 1) -> None: ...


class _NoProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, phase: str, amount: int = 1) -> None:
        pass


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class IngestReport:
    files_seen: int = 0
    files_unchanged: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_removed: int = 0
    documents_unchanged: int = 0
    documents_repaired: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_kept: int = 0
    chunks_embedded: int = 0
    embeddings_reused: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    embed_s: float = 0.0

    @property
    def documents_ingested(self) -> int:
        """Documents the given paths now have in the index (new, updated or unchanged)."""
        return self.documents_added + self.documents_updated + self.documents_unchanged

    @property
    def changed(self) -> bool:
        return bool(
            self.documents_added
            or self.documents_updated
            or self.documents_removed
            or self.documents_repaired
        )


@dataclass
class _Pending:
    document: Document
    chunks: list[Chunk]
    is_update: bool


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def acquire_lock(settings: Settings) -> FileLock:
    index_dir = Path(settings.store.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=settings.ingest.lock_timeout_s)
    except Timeout as exc:
        raise IndexBusyError(
            f"another ingest is writing to the index at {index_dir}; wait for it to finish, "
            "or rerun with --wait SECONDS to queue behind it"
        ) from exc
    return lock


def wipe_index(settings: Settings) -> None:
    """--rebuild: drop the manifest, BM25 and (embedded) Chroma data under the lock."""
    index_dir = Path(settings.store.index_dir)
    for name in (MANIFEST_NAME, MANIFEST_NAME + "-wal", MANIFEST_NAME + "-shm"):
        (index_dir / name).unlink(missing_ok=True)
    shutil.rmtree(index_dir / "bm25", ignore_errors=True)
    drop_embedded(index_dir / "chroma")
    if settings.store.host:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(
            host=settings.store.host,
            port=settings.store.port,
            settings=ChromaSettings(anonymized_telemetry=False),
        )
        with contextlib.suppress(Exception):  # a missing collection is what we want anyway
            client.delete_collection(settings.store.collection)


def ingest_paths(
    paths: Sequence[Path],
    settings: Settings,
    *,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    rebuild: bool = False,
) -> IngestReport:
    progress = progress or _NoProgress()
    started = time.perf_counter()
    registry()  # a bad extra grading file stops the run here, before anything is written
    lock = acquire_lock(settings)
    try:
        if rebuild:
            wipe_index(settings)
        index = Index(settings, embedder)
        try:
            report = _Ingest(index, settings, progress).run(paths)
        except StoreUnavailableError as exc:
            raise StoreUnavailableError(f"ingest stopped: {exc}. {_left(index)}") from exc
        except (OSError, sqlite3.OperationalError, IndexSpaceError) as exc:
            if not out_of_space(exc):
                raise
            raise IndexSpaceError(
                f"ingest stopped: the disk under the index at {settings.store.index_dir} is full "
                f"({exc}). The documents served before are still served; {_left(index)} Free "
                "some space (or set CLINIQ_STORE__INDEX_DIR to a larger disk) and run the "
                "ingest again"
            ) from exc
        finally:
            index.close()
    finally:
        lock.release()
    report.elapsed_s = time.perf_counter() - started
    return report


def _left(index: Index) -> str:
    """What an interrupted ingest leaves, for its error message."""
    try:
        pending = len(index.docstore.documents(state="pending"))
    except sqlite3.Error:
        pending = 0
    if not pending:
        return "nothing was left half-written."
    return f"{pending} document(s) were left pending (not served); the next ingest repairs them."


class _Ingest:
    def __init__(self, index: Index, settings: Settings, progress: Progress) -> None:
        self.index = index
        self.store = index.docstore
        self.settings = settings
        self.progress = progress
        self.report = IngestReport()
        self.counter = default_token_counter()
        self._reembed = False

    def run(self, paths: Sequence[Path]) -> IngestReport:
        self.index.vectors.count()  # an unreachable vector server stops us before any work
        self.index.record_model()
        self._repair()
        self._check_chunk_format()
        files, roots = self._expand(paths)
        pending, produced, loaded_files = self._scan(files)
        self._write(pending)
        if self._reembed:
            self.store.set_meta("input_format", INPUT_FORMAT)
        self._remove(produced, loaded_files, files, roots)
        self._record_files(loaded_files)
        if self.report.changed or self.index.lexical().generation != self.store.generation:
            if self.report.changed:
                self.store.bump_generation()
            self.index.invalidate()
            self.index.rebuild_lexical()
        return self.report

    def _check_chunk_format(self) -> None:
        """A new chunk format re-chunks every document (embeddings come from the cache); a new
        embedding-input format also replaces every stored vector, even of unchanged chunks."""
        recorded = self.store.get_meta("input_format")
        if recorded != INPUT_FORMAT:
            if self.store.documents():
                self._reembed = True
            else:
                self.store.set_meta("input_format", INPUT_FORMAT)
        if self.store.get_meta("chunk_format") == CHUNK_FORMAT and not self._reembed:
            return
        with self.store.transaction() as conn:
            conn.execute("UPDATE documents SET content_hash = 'rechunk:' || content_hash")
            conn.execute("DELETE FROM files")
            self.store.set_meta("chunk_format", CHUNK_FORMAT)

    # -- repair -----------------------------------------------------------------------------
    def _repair(self) -> None:
        """Finish what a killed run left: pending documents are deleted and re-ingested."""
        stale = self.store.documents(state="pending")
        if not stale and self.store.get_meta("dirty") != "1":
            return
        for record in stale:
            self.index.vectors.delete(
                sorted(set(record.chunk_ids) | set(record.previous_chunk_ids))
            )
            with self.store.transaction() as conn:
                self.store.delete_document(conn, record.id)
                conn.execute("DELETE FROM files WHERE path = ?", (record.source_path,))
        # Vectors no manifest row knows of (cannot happen by design; cheap to be sure).
        known = {cid for d in self.store.documents() for cid in d.chunk_ids}
        orphans = sorted(self.index.vectors.ids() - known)
        self.index.vectors.delete(orphans)
        self.report.documents_repaired = len(stale)
        if stale:
            self.report.warnings.append(
                f"repaired {len(stale)} document(s) left half-written by an interrupted ingest"
            )
        self.store.set_meta("dirty", "0")

    # -- scan -------------------------------------------------------------------------------
    def _expand(self, paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
        existing: list[Path] = []
        for path in paths:
            if not path.exists():
                self.report.skipped.append(
                    SkippedFile(str(path), "no such file or directory; check the path")
                )
            else:
                existing.append(path)
        files = [f.resolve() for f in iter_files(existing)]
        roots = [p.resolve() for p in existing if p.is_dir()]
        self.report.files_seen = len(files)
        return files, roots

    def _scan(
        self, files: Sequence[Path]
    ) -> tuple[list[_Pending], dict[str, str], dict[str, FileRecord]]:
        """Load changed files; returns documents to write, doc id -> file, and file records."""
        pending: list[_Pending] = []
        produced: dict[str, str] = {}
        loaded_files: dict[str, FileRecord] = {}
        committed = {d.id: d for d in self.store.documents(state="committed")}
        self.progress.start("files", len(files))
        for path in files:
            key = str(path)
            try:
                stat = path.stat()
                previous = self.store.file(key)
                if (
                    previous
                    and previous.size == stat.st_size
                    and previous.mtime_ns == stat.st_mtime_ns
                    and all(d in committed for d in previous.document_ids)
                ):
                    self._keep_file(previous, produced)
                    continue
                if stat.st_size > self.settings.ingest.max_file_bytes:
                    raise LoaderError(
                        path,
                        f"file is {stat.st_size / 1e6:.1f} MB, over the "
                        f"{self.settings.ingest.max_file_bytes / 1e6:.0f} MB limit; raise "
                        "CLINIQ_INGEST__MAX_FILE_BYTES to ingest it",
                    )
                digest = file_sha256(path)
                if (
                    previous
                    and previous.sha256 == digest
                    and all(d in committed for d in previous.document_ids)
                ):
                    record = FileRecord(
                        key, stat.st_size, stat.st_mtime_ns, digest, previous.document_ids
                    )
                    loaded_files[key] = record
                    self._keep_file(record, produced)
                    continue
                loaded = load_file_result(path, self.settings.ingest)
                self.report.warnings.extend(str(problem) for problem in loaded.problems)
                ids = self._accept_documents(path, loaded.documents, committed, produced, pending)
                loaded_files[key] = FileRecord(
                    key, stat.st_size, stat.st_mtime_ns, digest, tuple(ids)
                )
            except LoaderError as exc:
                self.report.skipped.append(SkippedFile(key, exc.reason))
            except (OSError, UnicodeError, ValueError) as exc:
                self.report.skipped.append(SkippedFile(key, f"could not read the file: {exc}"))
            finally:
                self.progress.advance("files")
        return pending, produced, loaded_files

    def _keep_file(self, record: FileRecord, produced: dict[str, str]) -> None:
        self.report.files_unchanged += 1
        self.report.documents_unchanged += len(record.document_ids)
        for doc_id in record.document_ids:
            produced[doc_id] = record.path

    def _accept_documents(
        self,
        path: Path,
        documents: Iterable[Document],
        committed: dict,
        produced: dict[str, str],
        pending: list[_Pending],
    ) -> list[str]:
        accepted: list[str] = []
        for doc in documents:
            if doc.id in produced:
                self.report.warnings.append(
                    f"{path}: document id {doc.id!r} was already read from {produced[doc.id]}; "
                    "this copy is skipped (give each document a unique id)"
                )
                continue
            if len(doc.text) > self.settings.ingest.max_document_chars:
                self.report.skipped.append(
                    SkippedFile(
                        str(path),
                        f"document {doc.id!r} has {len(doc.text):,} characters, over the "
                        f"{self.settings.ingest.max_document_chars:,} limit for one document; "
                        "split it, or raise CLINIQ_INGEST__MAX_DOCUMENT_CHARS",
                    )
                )
                continue
            produced[doc.id] = str(path)
            accepted.append(doc.id)
            record = committed.get(doc.id)
            if record and record.content_hash == doc.content_hash:
                self.report.documents_unchanged += 1
                continue
            try:
                chunks = chunk_document(doc, self.settings.chunking, self.counter)
            except LoaderError as exc:
                self.report.skipped.append(SkippedFile(str(path), exc.reason))
                accepted.pop()
                produced.pop(doc.id)
                continue
            if not chunks:
                self.report.warnings.append(f"{path}: document {doc.id!r} has no text; skipped")
                accepted.pop()
                produced.pop(doc.id)
                continue
            pending.append(_Pending(doc, chunks, is_update=record is not None))
        return accepted

    # -- write ------------------------------------------------------------------------------
    def _write(self, pending: list[_Pending]) -> None:
        if not pending:
            return
        self.store.set_meta("dirty", "1")
        total_chunks = sum(len(p.chunks) for p in pending)
        self.progress.start("chunks", total_chunks)
        self.progress.start("documents", len(pending))
        batch: list[_Pending] = []
        size = 0
        for item in pending:
            batch.append(item)
            size += len(item.chunks)
            if size >= self.settings.ingest.batch_chunks:
                self._write_batch(batch)
                batch, size = [], 0
        if batch:
            self._write_batch(batch)
        self.store.set_meta("dirty", "0")

    def _write_batch(self, batch: list[_Pending]) -> None:
        previous = {p.document.id: self.store.document(p.document.id) for p in batch}
        old_ids = {
            cid
            for rec in previous.values()
            if rec is not None
            for cid in (*rec.chunk_ids, *rec.previous_chunk_ids)
        }
        chunks = [c for p in batch for c in p.chunks]
        new_ids = {c.id for c in chunks}
        # A chunk whose id is already stored has identical text, document and position.
        present = set() if self._reembed else self.index.vectors.existing(sorted(new_ids & old_ids))
        to_store = [c for c in chunks if c.id not in present]
        vectors = self._embed(to_store)
        self.progress.advance("chunks", len(chunks) - len(to_store))

        with self.store.transaction() as conn:
            for item in batch:
                doc = item.document
                self.store.mark_pending(
                    conn,
                    doc_id=doc.id,
                    source_path=doc.source_path,
                    content_hash=doc.content_hash,
                    title=doc.title,
                    doc_type=str(doc.doc_type),
                    status=str(doc.status),
                    chunks=item.chunks,
                )
        self.index.vectors.delete(sorted(old_ids - new_ids))
        if to_store:
            self.index.vectors.upsert(
                [c.id for c in to_store],
                vectors,
                [c.text for c in to_store],
                [chunk_metadata(c) for c in to_store],
            )
        with self.store.transaction() as conn:
            self.store.mark_committed(conn, [p.document.id for p in batch])

        for item in batch:
            if item.is_update:
                self.report.documents_updated += 1
            else:
                self.report.documents_added += 1
        self.report.chunks_added += len(new_ids - old_ids)
        self.report.chunks_removed += len(old_ids - new_ids)
        self.report.chunks_kept += len(new_ids & old_ids)
        self.progress.advance("documents", len(batch))

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        """Vectors for `chunks`, from the cache where possible; identical inputs embedded once."""
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        inputs = [embedding_input(c) for c in chunks]
        backend = self.index.embedder.backend
        hashes = [cache_key(backend, t) for t in inputs]
        cached = self.store.cached_embeddings(sorted(set(hashes)))
        missing: dict[str, str] = {}
        for h, text in zip(hashes, inputs, strict=True):
            if h not in cached and h not in missing:
                missing[h] = text
        if missing:
            started = time.perf_counter()
            fresh = self.index.embedder.embed(list(missing.values()), bulk=True)
            self.index.check_dimension(int(fresh.shape[1]))
            self.report.embed_s += time.perf_counter() - started
            new = dict(zip(missing.keys(), fresh, strict=True))
            self.store.cache_embeddings(new)
            cached.update(new)
        self.report.chunks_embedded += len(missing)
        self.report.embeddings_reused += len(chunks) - len(missing)
        self.progress.advance("chunks", len(chunks))
        return np.stack([cached[h] for h in hashes])

    # -- removals ---------------------------------------------------------------------------
    def _remove(
        self,
        produced: dict[str, str],
        loaded_files: dict[str, FileRecord],
        files: Sequence[Path],
        roots: Sequence[Path],
    ) -> None:
        """Delete documents whose file was re-read without them, or vanished from a root."""
        seen_files = {str(f) for f in files}
        for record in self.store.documents(state="committed"):
            if record.id in produced:
                continue
            source = record.source_path
            resolved = str(Path(source).resolve()) if source else ""
            reread = resolved in loaded_files
            vanished = (
                resolved not in seen_files
                and not Path(resolved).exists()
                and any(_is_under(Path(resolved), root) for root in roots)
            )
            if reread or vanished:
                self._remove_document(record.id, record.chunk_ids)
                if vanished:
                    with self.store.transaction() as conn:
                        self.store.delete_file(conn, resolved)

    def _remove_document(self, doc_id: str, chunk_ids: Sequence[str]) -> None:
        with self.store.transaction() as conn:
            self.store.mark_removing(conn, doc_id)
        record = self.store.document(doc_id)
        ids = set(chunk_ids) | set(record.previous_chunk_ids if record else ())
        self.index.vectors.delete(sorted(ids))
        with self.store.transaction() as conn:
            self.store.delete_document(conn, doc_id)
        self.report.documents_removed += 1
        self.report.chunks_removed += len(chunk_ids)

    def _record_files(self, loaded_files: dict[str, FileRecord]) -> None:
        if not loaded_files:
            return
        with self.store.transaction() as conn:
            for record in loaded_files.values():
                self.store.set_file(conn, record)


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


__all__ = ["CliniqError", "IngestReport", "Progress", "SkippedFile", "ingest_paths"]
