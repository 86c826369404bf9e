"""Hybrid retrieval: BM25 and dense candidates, fused.

Score fusion (the default) adds the chunk's cosine to `lexical_weight` times its BM25 score over
the query's best BM25 score: it keeps how much better one hit matches than the next, which ranks
lose (+1.4 points R@1 on MedQuAD, +0.3 on PubMedQA, docs/benchmarks.md; the right document cited
more often on a mixed library, docs/answering.md). A lexical-only candidate gets its exact stored
cosine and a dense-only one a BM25 of 0. Reciprocal rank fusion (``fusion="rrf"``) needs no score
at all. After fusion: superseded documents are down-weighted (kept, so an outdated
recommendation can still be flagged), optional filters applied, and a per-document cap keeps
one long document from filling every slot. Ties break on chunk id: same query, same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.support.features import FeatureExtractor
from ingest.settings import RetrievalSettings
from ingest.store import ChunkFilter, Hit, Index, embedding_input
from ingest.types import Chunk, DocStatus, DocType, Passage, RetrievalMode


@dataclass(frozen=True)
class RetrievalFilter:
    """Filters on top of the store's: population matches recommendation or document populations."""

    doc_types: frozenset[DocType] | None = None
    statuses: frozenset[DocStatus] | None = None
    populations: frozenset[str] | None = None
    recommendations_only: bool = False
    prose_only: bool = False

    def store_filter(self) -> ChunkFilter | None:
        if not (self.doc_types or self.statuses or self.recommendations_only or self.prose_only):
            return None
        return ChunkFilter(
            doc_types=self.doc_types,
            statuses=self.statuses,
            recommendations_only=self.recommendations_only,
            prose_only=self.prose_only,
        )

    def accepts(self, chunk: Chunk) -> bool:
        if not self.populations:
            return True
        wanted = {p.lower() for p in self.populations}
        haystack = [p.lower() for p in chunk.document.populations]
        if chunk.recommendation is not None:
            haystack.append(chunk.recommendation.population.lower())
        return any(w in h for w in wanted for h in haystack)


@dataclass
class _Candidate:
    chunk_id: str
    fused: float = 0.0
    dense: Hit | None = None
    lexical: Hit | None = None
    extra: dict[str, float] = field(default_factory=dict)


class Retriever:
    def __init__(self, index: Index, settings: RetrievalSettings | None = None) -> None:
        self.index = index
        self.settings = settings or RetrievalSettings()
        self._token_features: FeatureExtractor | None = None

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: RetrievalMode = "hybrid",
        filters: RetrievalFilter | None = None,
        lexical_query: str | None = None,
        diversify: bool = True,
    ) -> list[Passage]:
        """Top-k passages. `lexical_query` lets the caller add expansion terms for BM25 only;
        `diversify=False` drops the per-document cap (to gather all of one guideline's blocks)."""
        k = k or self.settings.top_k
        n = max(self.settings.candidates, k)
        store_filter = filters.store_filter() if filters else None
        dense = self.index.query_dense(query, n, store_filter) if mode != "bm25" else []
        lexical = (
            self.index.query_lexical(lexical_query or query, n, store_filter)
            if mode != "dense"
            else []
        )
        exact: dict[str, float] = {}
        cosines: dict[str, float] = {}
        if mode != "bm25" and not dense and lexical and self.index.vector_fault:
            # The vector store is out of reach: BM25 ranks alone, and each of its hits gets its
            # cosine from the manifest's embedding cache, so relevance is still judged.
            vector = self.index.embedder.embed_query(query)
            cosines = self.index.similarities(vector, [h.chunk_id for h in lexical])
        if mode == "hybrid" and self.settings.fusion == "score":
            in_dense = {h.chunk_id for h in dense}
            missing = [h.chunk_id for h in lexical if h.chunk_id not in in_dense]
            if missing:
                exact = self.index.similarities(self.index.embedder.embed_query(query), missing)
        candidates = self._fuse(dense, lexical, mode, exact)
        chunks = {c.id: c for c in self.index.get([c.chunk_id for c in candidates])}
        prefer_superseded = bool(filters and filters.statuses == {DocStatus.superseded})
        scored: list[tuple[float, str, _Candidate]] = []
        score_fusion = mode == "hybrid" and self.settings.fusion == "score"
        zero = min((c.fused for c in candidates), default=0.0) if score_fusion else 0.0
        for cand in candidates:
            chunk = chunks.get(cand.chunk_id)
            if chunk is None or (filters and not filters.accepts(chunk)):
                continue
            score = cand.fused
            if chunk.document.status is DocStatus.superseded and not prefer_superseded:
                # The penalty takes a share of the lead over the weakest candidate (RRF's zero
                # is "not retrieved"; a cosine's is the weakest candidate's score).
                score = zero + (score - zero) * (1.0 - self.settings.superseded_penalty)
            scored.append((score, cand.chunk_id, cand))
        scored.sort(key=lambda item: (-item[0], item[1]))
        if self.settings.rerank == "tokens" and mode == "hybrid" and scored:
            scored = self._rerank(query, scored, chunks)
        chosen = self._diversify(scored, chunks, k) if diversify else scored[:k]
        return [
            Passage(
                chunk=chunks[cand.chunk_id],
                rank=rank,
                score=round(score, 6),
                dense_score=cand.dense.score if cand.dense else cosines.get(cand.chunk_id),
                lexical_score=cand.lexical.score if cand.lexical else None,
                dense_rank=cand.dense.rank if cand.dense else None,
                lexical_rank=cand.lexical.rank if cand.lexical else None,
            )
            for rank, (score, _, cand) in enumerate(chosen, start=1)
        ]

    def _rerank(
        self,
        query: str,
        scored: list[tuple[float, str, _Candidate]],
        chunks: dict[str, Chunk],
    ) -> list[tuple[float, str, _Candidate]]:
        """The best `rerank_depth` candidates re-ordered by fused score (RRF's over its best)
        plus `rerank_weight` x the mean, over the query's content tokens, of each token's best
        cosine to a token of the chunk as it was embedded (late interaction): a sentence
        vector blurs which study of one question an abstract is; its words do not."""
        depth = self.settings.rerank_depth
        head, tail = scored[:depth], scored[depth:]
        top = head[0][0] if self.settings.fusion == "rrf" else 1.0
        texts = [query] + [embedding_input(chunks[cid]) for _, cid, _ in head]
        _, tokens = self.token_features.encode(texts)
        query_tokens = tokens[0]
        rescored = []
        for (score, cid, cand), chunk_tokens in zip(head, tokens[1:], strict=True):
            match = 0.0
            if len(query_tokens) and len(chunk_tokens):
                match = float((query_tokens @ chunk_tokens.T).max(axis=1).mean())
            cand.extra["token_match"] = match
            fused = score / top if top > 0 else score
            rescored.append((fused + self.settings.rerank_weight * match, cid, cand))
        rescored.sort(key=lambda item: (-item[0], item[1]))
        # The tail keeps its order below the re-ordered head.
        floor = min(s for s, _, _ in rescored)
        shift = max(0.0, max((s for s, _, _ in tail), default=0.0) - floor + 1e-9)
        return [(s + shift, c, x) for s, c, x in rescored] + tail

    @property
    def token_features(self) -> FeatureExtractor:
        """Token embeddings for `rerank` (the support judge's encoder, this index's precision)."""
        if self._token_features is None:
            self._token_features = FeatureExtractor(self.index.embedder, text_memo=20_000)
        return self._token_features

    def _fuse(
        self,
        dense: Sequence[Hit],
        lexical: Sequence[Hit],
        mode: str,
        exact: dict[str, float] | None = None,
    ) -> list[_Candidate]:
        by_id: dict[str, _Candidate] = {}
        for hit in dense:
            cand = by_id.setdefault(hit.chunk_id, _Candidate(hit.chunk_id))
            cand.dense = hit
        for hit in lexical:
            cand = by_id.setdefault(hit.chunk_id, _Candidate(hit.chunk_id))
            cand.lexical = hit
        rrf_k = self.settings.rrf_k
        best_lexical = max((h.score for h in lexical), default=0.0)
        floor = min((h.score for h in dense), default=0.0)
        for cand in by_id.values():
            if mode == "dense":
                cand.fused = cand.dense.score if cand.dense else 0.0
            elif mode == "bm25":
                cand.fused = cand.lexical.score if cand.lexical else 0.0
            elif self.settings.fusion == "score":
                cosine = cand.dense.score if cand.dense else (exact or {}).get(cand.chunk_id, floor)
                lexical_part = (
                    cand.lexical.score / best_lexical if cand.lexical and best_lexical > 0 else 0.0
                )
                cand.fused = cosine + self.settings.lexical_weight * lexical_part
            else:
                cand.fused = sum(
                    1.0 / (rrf_k + hit.rank) for hit in (cand.dense, cand.lexical) if hit
                )
        return sorted(by_id.values(), key=lambda c: (-c.fused, c.chunk_id))

    def _diversify(
        self, scored: list[tuple[float, str, _Candidate]], chunks: dict[str, Chunk], k: int
    ) -> list[tuple[float, str, _Candidate]]:
        """At most `max_per_document` per document, unless fewer documents than slots."""
        cap = self.settings.max_per_document
        per_doc: dict[str, int] = {}
        chosen, overflow = [], []
        for item in scored:
            doc_id = chunks[item[1]].document.id
            if per_doc.get(doc_id, 0) < cap:
                per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
                chosen.append(item)
            else:
                overflow.append(item)
            if len(chosen) == k:
                return chosen
        return (chosen + overflow)[:k]
