"""The manifest: documents, their chunks, and the embedding cache, in one SQLite file.

SQLite is the source of truth for what is served. A document is written in two steps: its row is
marked ``pending`` (committed to disk) before any vector changes, and ``committed`` only after the
vector store holds all of its chunks. A killed ingest therefore leaves either the old state or
``pending`` rows, which are never served and which the next ingest repairs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.types import Chunk

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source_path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
    chunk_ids TEXT NOT NULL,
    previous_chunk_ids TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (source_path);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    chunk_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    document_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    input_hash TEXT PRIMARY KEY,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    source_path: str
    content_hash: str
    title: str
    doc_type: str
    status: str
    state: str
    chunk_ids: tuple[str, ...]
    previous_chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    document_ids: tuple[str, ...]


class DocStore:
    """SQLite in WAL mode: readers never block the single writer (the ingest lock holder)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def close(self) -> None:
        self._db.close()

    def check(self, thorough: bool = False) -> None:
        """Raise `sqlite3.DatabaseError` when the file is not a readable manifest: the tables
        are read through (every chunk row, as the first question would), and with `thorough`
        SQLite's own page-by-page check runs too."""
        for table in ("meta", "documents", "files"):
            self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        self._db.execute("SELECT SUM(LENGTH(chunk_json)) FROM chunks").fetchone()
        if thorough:
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems[:3]))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped by every ingest that changed anything; the BM25 index records the one it saw."""
        return int(self.get_meta("generation") or 0)

    def bump_generation(self) -> int:
        new = self.generation + 1
        self.set_meta("generation", str(new))
        return new

    # -- documents --------------------------------------------------------------------------
    def documents(self, state: str | None = None) -> list[DocumentRecord]:
        sql = "SELECT * FROM documents" + (" WHERE state = ?" if state else "") + " ORDER BY id"
        rows = self._db.execute(sql, (state,) if state else ()).fetchall()
        return [self._doc(r) for r in rows]

    def document(self, doc_id: str) -> DocumentRecord | None:
        row = self._db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return self._doc(row) if row else None

    @staticmethod
    def _doc(row: tuple) -> DocumentRecord:
        return DocumentRecord(
            id=row[0],
            source_path=row[1],
            content_hash=row[2],
            title=row[3],
            doc_type=row[4],
            status=row[5],
            state=row[6],
            chunk_ids=tuple(json.loads(row[7])),
            previous_chunk_ids=tuple(json.loads(row[8])),
        )

    def mark_pending(
        self,
        conn: sqlite3.Connection,
        *,
        doc_id: str,
        source_path: str,
        content_hash: str,
        title: str,
        doc_type: str,
        status: str,
        chunks: Sequence[Chunk],
    ) -> None:
        """Record the target state of a document before the vector store is touched."""
        old = conn.execute(
            "SELECT chunk_ids, previous_chunk_ids FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        # Keep every id that may still sit in the vector store, across repeated crashes.
        previous = set(json.loads(old[0]) + json.loads(old[1])) if old else set()
        conn.execute(
            "INSERT OR REPLACE INTO documents (id, source_path, content_hash, title, doc_type,"
            " status, state, chunk_ids, previous_chunk_ids, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, datetime('now'))",
            (
                doc_id,
                source_path,
                content_hash,
                title,
                doc_type,
                status,
                json.dumps([c.id for c in chunks]),
                json.dumps(sorted(previous)),
            ),
        )
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
        conn.executemany(
            "INSERT OR REPLACE INTO chunks (id, document_id, position, text, chunk_json)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (c.id, doc_id, c.position, c.text, c.model_dump_json(exclude={"text"}))
                for c in chunks
            ],
        )

    def mark_committed(self, conn: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        conn.executemany(
            "UPDATE documents SET state = 'committed', previous_chunk_ids = '[]' WHERE id = ?",
            [(d,) for d in doc_ids],
        )

    def mark_removing(self, conn: sqlite3.Connection, doc_id: str) -> None:
        """A removal is a pending document with no chunks: not served, finished by delete."""
        conn.execute(
            "UPDATE documents SET state = 'pending',"
            " previous_chunk_ids = (SELECT json_group_array(value) FROM (SELECT value FROM"
            " json_each(documents.chunk_ids) UNION SELECT value FROM"
            " json_each(documents.previous_chunk_ids))), chunk_ids = '[]' WHERE id = ?",
            (doc_id,),
        )
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))

    def delete_document(self, conn: sqlite3.Connection, doc_id: str) -> None:
        conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))

    # -- chunks -----------------------------------------------------------------------------
    def committed_chunk_ids(self) -> set[str]:
        rows = self._db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.state = 'committed'"
        )
        return {r[0] for r in rows}

    def served_chunk_kinds(self) -> dict[str, tuple[str, str, bool]]:
        """chunk id -> (doc_type, status, is_recommendation) of every committed chunk."""
        rows = self._db.execute(
            "SELECT c.id, d.doc_type, d.status,"
            " json_extract(c.chunk_json, '$.recommendation') IS NOT NULL"
            " FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.state = 'committed'"
        )
        return {cid: (t, s, bool(r)) for cid, t, s, r in rows}

    def document_chunk_ids(self, doc_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.id = ? AND d.state = 'committed' ORDER BY c.position",
            (doc_id,),
        )
        return [r[0] for r in rows]

    def get_chunks(self, ids: Sequence[str], committed_only: bool = True) -> list[Chunk]:
        """Chunks in the order of `ids`; unknown or not-yet-committed ids are left out."""
        if not ids:
            return []
        found: dict[str, Chunk] = {}
        join = " JOIN documents d ON d.id = c.document_id AND d.state = 'committed'"
        for start in range(0, len(ids), 500):
            batch = list(ids[start : start + 500])
            marks = ",".join("?" * len(batch))
            sql = (
                "SELECT c.id, c.text, c.chunk_json FROM chunks c"
                + (join if committed_only else "")
                + f" WHERE c.id IN ({marks})"
            )
            for cid, text, chunk_json in self._db.execute(sql, batch):
                data = json.loads(chunk_json)
                data["text"] = text
                found[cid] = Chunk.model_validate(data)
        return [found[i] for i in ids if i in found]

    def iter_committed_chunks(self) -> Iterator[tuple[str, str, str]]:
        """(id, text, chunk_json) of every served chunk, in a stable order."""
        yield from self._db.execute(
            "SELECT c.id, c.text, c.chunk_json FROM chunks c JOIN documents d"
            " ON d.id = c.document_id WHERE d.state = 'committed' ORDER BY c.document_id,"
            " c.position"
        )

    def counts(self) -> dict[str, int]:
        docs = self._db.execute("SELECT state, COUNT(*) FROM documents GROUP BY state").fetchall()
        out = {f"documents_{state}": n for state, n in docs}
        out["chunks"] = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        out["cached_embeddings"] = self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return out

    def count_by(self, column: str) -> dict[str, int]:
        if column not in {"doc_type", "status"}:
            raise ValueError(column)
        rows = self._db.execute(
            f"SELECT {column}, COUNT(*) FROM documents WHERE state = 'committed' GROUP BY {column}"
        )
        return dict(rows.fetchall())

    # -- files ------------------------------------------------------------------------------
    def file(self, path: str) -> FileRecord | None:
        row = self._db.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        if not row:
            return None
        return FileRecord(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])))

    def set_file(self, conn: sqlite3.Connection, record: FileRecord) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, document_ids)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.path,
                record.size,
                record.mtime_ns,
                record.sha256,
                json.dumps(list(record.document_ids)),
            ),
        )

    def delete_file(self, conn: sqlite3.Connection, path: str) -> None:
        conn.execute("DELETE FROM files WHERE path = ?", (path,))

    def file_paths(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT path FROM files")]

    # -- embedding cache --------------------------------------------------------------------
    def cached_embeddings(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            batch = list(hashes[start : start + 500])
            marks = ",".join("?" * len(batch))
            sql = f"SELECT input_hash, dim, vector FROM embeddings WHERE input_hash IN ({marks})"
            for h, dim, blob in self._db.execute(sql, batch):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    out[h] = vec
        return out

    def cache_embeddings(self, items: dict[str, np.ndarray]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (input_hash, dim, vector) VALUES (?, ?, ?)",
                [
                    (h, int(v.shape[0]), np.asarray(v, np.float32).tobytes())
                    for h, v in items.items()
                ],
            )
