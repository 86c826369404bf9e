"""How relevant source text is to a question: what an answer quotes, and whether it answers.

Every candidate unit (a sentence, or a lead-in with its list) of the retrieved passages is scored
with signals that do not depend on how a corpus is laid out: the packaged MiniLM's sentence
cosine and late-interaction token match, BM25 over the units with the index's word rarities, the
passage's rank, and the unit's position and neighbours. The question's kind and the heading are
one small feature among them, never a gate. The weights of the score are data
(`assistant/data/relevance.json`), fitted by `scripts/fit_relevance.py` on development parts of
several libraries.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np

from assistant.context import Sources
from assistant.intent import Kind, asks_for_quantity, kind_of, kinds_in, states_quantity
from ingest.lexical import lexical_tokens
from ingest.types import Chunk, DocType, DocumentRef, Passage

WEIGHTS_PATH = Path(__file__).parent / "data" / "relevance.json"
# The user's own words, kept in brackets after the reading of them ("generic name (Brand)"):
# the reading is what the sources use.
_PARENTHESES = re.compile(r"\([^()]*\)")

#: the features of a unit, in the order the weights are stored
UNIT_FEATURES = (
    "cosine",
    "tokens",
    "bm25",
    "rank",
    "passage",
    "position",
    "neighbours",
    "kind",
    "quantity",
)


#: what retrieval says of a document, beside its best unit: its best passage's fused score
#: over the best passage's, less one (`NOT_RETRIEVED` when none of its passages was retrieved),
#: and how many of the retrieved passages are its own
DOCUMENT_FEATURES = ("fused_gap", "passages")
NOT_RETRIEVED = -0.5


@dataclass(frozen=True)
class Weights:
    """Linear weights of the unit score, and how close to the best a document must be."""

    unit: tuple[float, ...]
    unit_bias: float
    #: a document is cited only when its relevance is within this of the best document's
    document_margin: float
    #: a document's relevance beyond its best unit's, on the same logit scale: per
    #: `DOCUMENT_FEATURES`, what retrieval says of the whole document
    document: tuple[float, ...] = (0.0, 0.0)

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> Weights:
        data = json.loads(Path(path).read_text())
        unit = tuple(float(data["unit"][name]) for name in UNIT_FEATURES)
        document = data.get("document") or {}
        return cls(
            unit=unit,
            unit_bias=float(data.get("unit_intercept", 0.0)),
            document_margin=float(data["document_margin"]),
            document=tuple(float(document.get(name, 0.0)) for name in DOCUMENT_FEATURES),
        )


@cache
def default_weights() -> Weights:
    return Weights.load()


@dataclass(frozen=True)
class Quote:
    """A unit of source text the answer may quote: a sentence, or a lead-in with its list."""

    text: str
    chunk: Chunk
    items: tuple[str, ...] = ()
    relevance: float = 0.0

    @property
    def full_text(self) -> str:
        return " ".join([self.text, *self.items])


@dataclass
class Unit:
    """A candidate unit, where it sits, and how relevant it is."""

    quote: Quote
    passage: Passage
    index: int  # its place among its passage's units
    count: int  # how many units its passage has
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(UNIT_FEATURES)))
    score: float = 0.0
    vector: np.ndarray | None = None

    @property
    def document_id(self) -> str:
        return self.quote.chunk.document.id

    @property
    def order(self) -> tuple[int, int]:
        """Reading order within its document."""
        return (self.quote.chunk.position, self.index)


@dataclass
class Scored:
    """The units of a question's passages, scored."""

    units: list[Unit]
    query: np.ndarray
    #: best unit score per document, best first
    documents: list[tuple[str, float]]

    def keeping(self, keep: Callable[[DocumentRef], bool]) -> Scored:
        """Only the units of the documents `keep` accepts."""
        units = [u for u in self.units if keep(u.quote.chunk.document)]
        kept = {u.document_id for u in units}
        return Scored(units, self.query, [(d, s) for d, s in self.documents if d in kept])


def candidate_units(
    passages: Sequence[Passage], units_of: Callable[[Chunk], list[Quote]]
) -> list[Unit]:
    """The units of the passages, each once (chunks overlap), best-ranked copy first."""
    out: list[Unit] = []
    seen: set[str] = set()
    for passage in passages:
        quotes = units_of(passage.chunk)
        for i, quote in enumerate(quotes):
            key = " ".join(quote.full_text.lower().split())
            if key in seen:
                continue
            seen.add(key)
            out.append(Unit(quote=quote, passage=passage, index=i, count=len(quotes)))
    return out


def _idf(sources: Sources, tokens: set[str]) -> dict[str, float]:
    """Rarity of each word among the index's chunks; a word no chunk uses is rarest."""
    lexical = sources.index.lexical()
    return {t: lexical.idf(t) for t in tokens}


def _bm25(
    query: list[str], docs: list[list[str]], idf: dict[str, float], k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    if not docs:
        return np.zeros(0)
    lengths = np.array([len(d) for d in docs], dtype=np.float32)
    avg = float(lengths.mean()) or 1.0
    scores = np.zeros(len(docs), dtype=np.float32)
    for term in dict.fromkeys(query):
        tf = np.array([d.count(term) for d in docs], dtype=np.float32)
        scores += idf.get(term, 0.0) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
    return scores


def _token_match(query_tokens: np.ndarray, unit_tokens: np.ndarray) -> float:
    if not len(query_tokens) or not len(unit_tokens):
        return 0.0
    return float((query_tokens @ unit_tokens.T).max(axis=1).mean())


def _in_context(quote: Quote) -> str:
    """A recommendation read with the title of its guideline: its statement leaves the
    subject the whole guideline is on unsaid ("For children without HIV, test ...")."""
    if quote.chunk.recommendation is None:
        return quote.full_text
    return f"{quote.chunk.document.title}: {quote.full_text}"


def score_units(
    question: str,
    units: list[Unit],
    sources: Sources,
    weights: Weights | None = None,
    *,
    asking: str | None = None,
) -> Scored:
    """Score every unit against the question.

    `asking`: the sentences that ask (without a case history around them), whose words a
    unit should use."""
    weights = weights or default_weights()
    extractor = sources.retriever.token_features
    q_terms = lexical_tokens(_PARENTHESES.sub(" ", asking or question))
    idf = _idf(sources, set(q_terms))
    texts = [_in_context(u.quote) for u in units]
    unit_terms = [lexical_tokens(t) for t in texts]
    bm25 = _bm25(q_terms, unit_terms, idf)
    # Over the question's total word rarity: about the share of it the unit uses (a unit that
    # names only the words every chunk uses scores low, however it ranks among its peers).
    bm25 = bm25 / (sum(idf.get(t, 0.0) for t in dict.fromkeys(q_terms)) or 1.0)
    vectors, tokens = extractor.encode([question, *texts])
    query, query_tokens = vectors[0], tokens[0]
    vectors, tokens = vectors[1:], tokens[1:]
    kind = kind_of(question)
    wants_quantity = asks_for_quantity(asking or question)
    cosines = vectors @ query if len(units) else np.zeros(0)
    for i, unit in enumerate(units):
        unit.vector = vectors[i]
        heading = unit.quote.chunk.section_path[-1] if unit.quote.chunk.section_path else ""
        neighbours = [
            float(cosines[j])
            for j in (i - 1, i + 1)
            if 0 <= j < len(units) and units[j].passage is unit.passage
        ]
        unit.features = np.array(
            [
                float(cosines[i]),
                _token_match(query_tokens, tokens[i]),
                float(bm25[i]),
                1.0 / unit.passage.rank,
                unit.passage.dense_score or 0.0,
                1.0 / (1 + unit.index),
                max(neighbours, default=0.0),
                1.0 if kind is not Kind.general and kind in kinds_in(heading) else 0.0,
                1.0 if wants_quantity and states_quantity(texts[i]) else 0.0,
            ],
            dtype=np.float32,
        )
        # The probability that the unit holds the answer.
        z = float(np.dot(weights.unit, unit.features)) + weights.unit_bias
        unit.score = 1.0 / (1.0 + math.exp(-z))
    documents: dict[str, float] = {}
    for unit in units:
        doc = unit.document_id
        documents[doc] = max(documents.get(doc, -1e9), unit.score)
    ranked = sorted(documents.items(), key=lambda kv: -kv[1])
    return Scored(units=units, query=query, documents=ranked)


def select_units(
    scored: Scored,
    k: int,
    documents: set[str] | None = None,
    lam: float = 0.75,
    exclude: Sequence[Unit] = (),
) -> list[Unit]:
    """Maximal marginal relevance: the best units, none saying what a chosen one says."""
    pool = [
        u
        for u in scored.units
        if (documents is None or u.document_id in documents) and u not in exclude
    ]
    chosen: list[Unit] = list(exclude)
    picked: list[Unit] = []
    # Relevance relative to the best unit, on the scale of the redundancy (a cosine): where every
    # unit is unlikely to hold the answer, raw probabilities would let the least similar unit,
    # whatever its subject, win.
    top = max((u.score for u in [*pool, *chosen]), default=1.0) or 1.0
    while pool and len(picked) < k:

        def gain(unit: Unit) -> float:
            if not chosen:
                return unit.score
            redundancy = max(float(unit.vector @ c.vector) for c in chosen)  # type: ignore[operator]
            return lam * unit.score / top - (1 - lam) * redundancy

        best = max(pool, key=gain)
        pool.remove(best)
        text = best.quote.full_text.lower()
        if any(
            text in c.quote.full_text.lower() or c.quote.full_text.lower() in text for c in chosen
        ):
            continue  # a list or sentence already said, whole or in part
        chosen.append(best)
        picked.append(best)
    return picked


def in_source_order(units: Sequence[Unit], documents: Sequence[str]) -> list[Unit]:
    """Each source's units in its own reading order, sources in the given order."""
    rank = {d: i for i, d in enumerate(documents)}
    return sorted(units, key=lambda u: (rank.get(u.document_id, len(rank)), u.order))


def document_features(scored: Scored, retrieved: Sequence[Passage]) -> dict[str, list[float]]:
    """`DOCUMENT_FEATURES` of each document with a scored unit."""
    top = max((p.score for p in retrieved), default=0.0)
    best: dict[str, float] = {}
    count: dict[str, int] = {}
    for p in retrieved:
        doc = p.chunk.document.id
        best[doc] = max(best.get(doc, p.score), p.score)
        count[doc] = count.get(doc, 0) + 1
    gap = {doc: score / top - 1.0 if top > 0 else 0.0 for doc, score in best.items()}
    return {doc: [gap.get(doc, NOT_RETRIEVED), count.get(doc, 0)] for doc, _ in scored.documents}


def rank_documents(
    scored: Scored, retrieved: Sequence[Passage], weights: Weights | None = None
) -> Scored:
    """Documents by relevance: the best unit's, plus what retrieval says of the whole document
    (a document whose passages retrieval ranked high, and several of them, is likelier the
    one that answers than another whose single sentence scores a little higher). Fitted with
    the unit weights (`scripts/fit_relevance.py`)."""
    weights = weights or default_weights()
    if not any(weights.document) or not scored.documents:
        return scored
    features = document_features(scored, retrieved)
    ranked = [
        (doc, logit(p) + float(np.dot(weights.document, features[doc])))
        for doc, p in scored.documents
    ]
    ranked.sort(key=lambda kv: -kv[1])
    return replace(scored, documents=[(doc, 1.0 / (1.0 + math.exp(-z))) for doc, z in ranked])


def close_documents(scored: Scored, margin: float | None = None) -> list[str]:
    """Documents whose relevance is close to the best document's: the answer's subject."""
    if not scored.documents:
        return []
    margin = default_weights().document_margin if margin is None else margin
    best = logit(scored.documents[0][1])
    return [d for d, s in scored.documents if logit(s) >= best - margin]


def logit(p: float) -> float:
    """Relevance on the scale the model adds its evidence on: 0.04 against 0.002 is as far
    apart as 0.5 against 0.05, though both differ by less than 0.05."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def is_guideline(unit: Unit) -> bool:
    return unit.quote.chunk.document.doc_type is DocType.guideline
