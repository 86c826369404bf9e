"""Chroma, embedded (persistent directory) or client/server (`chroma run`), behind one class.

Only this module imports chromadb. Vectors are always computed by our embedder and passed in;
the collection is still given our embedding function so Chroma never builds its default one
(which downloads a model).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import Embedder
from ingest.errors import (
    CliniqError,
    IndexDamagedError,
    IndexSpaceError,
    StoreUnavailableError,
    out_of_space,
)
from ingest.settings import StoreSettings


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    similarity: float  # cosine similarity, 1 = identical direction


class ChromaVectors:
    """One collection. Against a server, a lost connection raises `StoreUnavailableError`
    naming the server and what to do, and the next call connects again: a server that comes
    back needs no restart of ours. An unreachable server at start-up is not an error until a
    vector is needed, so the lexical half of the index can still answer."""

    def __init__(self, settings: StoreSettings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._client: Any = None
        self._collection_obj: Any = None
        self._nonempty = False
        if settings.host:
            self.location = f"chroma server {settings.host}:{settings.port}"
            with contextlib.suppress(StoreUnavailableError):
                self._connect()
        else:
            path = settings.index_dir / "chroma"
            self.location = f"embedded chroma at {path}"
            with contextlib.suppress(CliniqError):  # said again when a vector is needed
                self._connect()

    @property
    def remote(self) -> bool:
        return bool(self.settings.host)

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        settings = self.settings
        if settings.host:
            try:
                if self._client is None:
                    self._client = chromadb.HttpClient(
                        host=settings.host, port=settings.port, settings=chroma_settings
                    )
                self._client.heartbeat()
                self._collection_obj = self._open_collection()
            except Exception as exc:
                self._client = None if _is_connection_error(exc) else self._client
                raise self.unavailable(exc) from exc
        else:
            path = settings.index_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            try:
                self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
                self._collection_obj = self._open_collection()
            except Exception as exc:
                forget_clients()  # chromadb caches a half-started client per path: not it again
                if out_of_space(exc):
                    raise IndexSpaceError(
                        f"the embedded vector store at {path} cannot be opened: the disk under "
                        f"it is full ({_short(exc)}); free some space"
                    ) from exc
                raise self.damaged(exc) from exc
        return self._collection_obj

    def _open_collection(self) -> Any:
        return self._client.get_or_create_collection(
            name=self.settings.collection,
            embedding_function=self.embedder.chroma_function(),  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedding_model": self.embedder.model_name},
        )

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        s = self.settings
        return StoreUnavailableError(
            f"cannot reach the Chroma server at {s.host}:{s.port} ({_short(exc)}); start it "
            "again with `chroma run --path DIR --host HOST --port PORT` (the next question or "
            "ingest reconnects), or unset CLINIQ_STORE__HOST to use the embedded store"
        )

    @property
    def _collection(self) -> Any:
        if self._collection_obj is None:
            return self._connect()
        return self._collection_obj

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A collection method; a lost server connection becomes `StoreUnavailableError`."""
        try:
            return getattr(self._collection, method)(*args, **kwargs)
        except CliniqError:
            raise
        except Exception as exc:
            if self.remote and _is_connection_error(exc):
                self._collection_obj = None
                raise self.unavailable(exc) from exc
            if not self.remote and out_of_space(exc):
                raise IndexSpaceError(
                    f"the disk under the vector store at {self.settings.index_dir / 'chroma'} "
                    f"is full ({_short(exc)}); free some space"
                ) from exc
            if not self.remote and not isinstance(exc, ValueError | TypeError):
                raise self.damaged(exc) from exc
            raise

    def damaged(self, exc: BaseException) -> IndexDamagedError:
        index_dir = self.settings.index_dir
        return IndexDamagedError(
            f"the vector store at {index_dir / 'chroma'} failed ({_short(exc)}); run "
            f"`cliniq index check --index {index_dir}`, then `cliniq index rebuild --index "
            f"{index_dir}` to restore it from the manifest"
        )

    def _max_batch(self) -> int:
        self._collection  # noqa: B018  (connects)
        try:
            return int(self._client.get_max_batch_size())
        except Exception as exc:
            if self.remote and _is_connection_error(exc):
                self._collection_obj = None
                raise self.unavailable(exc) from exc
            raise

    def reset(self) -> None:
        """Drop the collection (and make an empty one): `cliniq index rebuild` refills it."""
        self._collection  # noqa: B018  (connects)
        with contextlib.suppress(Exception):  # a missing collection is what we want anyway
            self._client.delete_collection(self.settings.collection)
        self._collection_obj = self._open_collection()
        self._nonempty = False

    @property
    def collection_metadata(self) -> dict[str, Any]:
        return dict(self._collection.metadata or {})

    def count(self) -> int:
        return int(self._call("count"))

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._call("get", include=[], limit=page, offset=offset)
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def existing(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 2000):
            batch = list(ids[start : start + 2000])
            out.update(self._call("get", ids=batch, include=[])["ids"])
        return out

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, str | int | float | bool]],
    ) -> None:
        step = max(1, min(1000, self._max_batch()))
        for start in range(0, len(ids), step):
            end = start + step
            self._call(
                "upsert",
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),  # type: ignore[arg-type]
            )

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._call("get", ids=list(ids), include=["embeddings"])
        embeddings = got.get("embeddings")
        if embeddings is None:
            return {}
        return {
            i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], embeddings, strict=True)
        }

    def delete(self, ids: Sequence[str]) -> None:
        self._nonempty = False
        for start in range(0, len(ids), 2000):
            batch = list(ids[start : start + 2000])
            if batch:
                self._call("delete", ids=batch)

    def delete_where(self, document_id: str) -> None:
        self._call("delete", where={"document_id": document_id})

    def query(
        self, embedding: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[VectorHit]:
        if k <= 0:
            return []
        # count() costs as much as the search itself (28 of 50 ms on a busy 2-core machine):
        # asked until the collection is seen non-empty, then trusted to stay so.
        if not self._nonempty:
            if self.count() == 0:
                return []
            self._nonempty = True
        try:
            res = self._call(
                "query",
                query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                n_results=k,
                where=where or None,
                include=["distances"],
            )
        except StoreUnavailableError:
            raise
        except Exception:
            if self.count() == 0:  # emptied by another process since
                self._nonempty = False
                return []
            raise
        ids = res["ids"][0]
        distances = (res.get("distances") or [[]])[0]
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]


def drop_embedded(path: Path) -> None:
    """Delete an embedded Chroma directory, and the clients this process keeps open on it
    (chromadb caches one per path; a new one at the same path would reuse the old files)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    shutil.rmtree(path, ignore_errors=True)


def forget_clients() -> None:
    """Forget the embedded Chroma clients of this process: the next open reads the files, as a
    new process would."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _is_connection_error(exc: BaseException) -> bool:
    """The server is gone or unreachable (not: the server refused a request)."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        if "could not connect to a chroma server" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
