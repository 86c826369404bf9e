"""Chroma, embedded (persistent directory) or client/server (`chroma run`), behind one class.

Only this module imports chromadb. Vectors are always computed by our embedder and passed in;
the collection is still given our embedding function so Chroma never builds its default one
(which downloads a model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.embedding import Embedder
from ingest.errors import StoreUnavailableError
from ingest.settings import StoreSettings


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    similarity: float  # cosine similarity, 1 = identical direction


class ChromaVectors:
    def __init__(self, settings: StoreSettings, embedder: Embedder) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.host:
            try:
                self._client = chromadb.HttpClient(
                    host=settings.host, port=settings.port, settings=chroma_settings
                )
                self._client.heartbeat()
            except Exception as exc:
                raise StoreUnavailableError(
                    f"cannot reach the Chroma server at {settings.host}:{settings.port} ({exc}); "
                    "start it with `chroma run --path DIR --port PORT` or unset CLINIQ_STORE__HOST "
                    "to use the embedded store"
                ) from exc
            self.location = f"chroma server {settings.host}:{settings.port}"
        else:
            path = settings.index_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            self.location = f"embedded chroma at {path}"
        self._nonempty = False
        self._collection = self._client.get_or_create_collection(
            name=settings.collection,
            embedding_function=embedder.chroma_function(),  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedding_model": embedder.model_name},
        )

    @property
    def collection_metadata(self) -> dict[str, Any]:
        return dict(self._collection.metadata or {})

    def count(self) -> int:
        return int(self._collection.count())

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._collection.get(include=[], limit=page, offset=offset)
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def existing(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 2000):
            out.update(self._collection.get(ids=list(ids[start : start + 2000]), include=[])["ids"])
        return out

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, str | int | float | bool]],
    ) -> None:
        step = max(1, min(1000, self._client.get_max_batch_size()))
        for start in range(0, len(ids), step):
            end = start + step
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),  # type: ignore[arg-type]
            )

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
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
                self._collection.delete(ids=batch)

    def delete_where(self, document_id: str) -> None:
        self._collection.delete(where={"document_id": document_id})

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
            res = self._collection.query(
                query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                n_results=k,
                where=where or None,
                include=["distances"],
            )
        except Exception:
            if self.count() == 0:  # emptied by another process since
                self._nonempty = False
                return []
            raise
        ids = res["ids"][0]
        distances = (res.get("distances") or [[]])[0]
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]
