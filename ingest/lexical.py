"""BM25 over chunk texts (bm25s: it scores sensibly on tiny corpora, unlike rank_bm25).

The index is rebuilt from the manifest after each ingest that changed something and saved
atomically (temporary directory, then rename) with the manifest generation it reflects, so a
stale or half-written index is detected and rebuilt instead of served.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Negations and directions carry clinical meaning; never drop them as stopwords.
_KEEP = frozenset({"no", "not", "against", "nor"})


def lexical_tokens(text: str) -> list[str]:
    """Lower-case word tokens, stopwords out, a light plural strip (legs -> leg)."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in _STOPWORDS and tok not in _KEEP:
            continue
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") and tok.isalpha():
            tok = tok[:-1]
        out.append(tok)
    return out


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    score: float


class BM25Index:
    def __init__(self, ids: Sequence[str], model: bm25s.BM25 | None, generation: int) -> None:
        self.ids = list(ids)
        self._model = model
        self.generation = generation
        self._hyphen_parts: frozenset[str] | None = None

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], generation: int) -> BM25Index:
        if not ids:
            return cls([], None, generation)
        model = bm25s.BM25()
        model.index([lexical_tokens(t) or ["\u2205"] for t in texts], show_progress=False)
        return cls(ids, model, generation)

    def query(self, text: str, k: int) -> list[LexicalHit]:
        if self._model is None or k <= 0:
            return []
        vocab = self._model.vocab_dict
        tokens = [t for t in lexical_tokens(text) if t in vocab]
        if not tokens:
            return []
        k = min(k, len(self.ids))
        # Scores for every chunk, then a partial sort: bm25s's retrieve() would start a thread
        # pool per query (14 ms of a 50 ms budget on a busy machine).
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # Best first; ties by position in the index, so the same query gives the same order.
        order = top[np.lexsort((top, -scores[top]))]
        return [LexicalHit(self.ids[int(i)], float(scores[i])) for i in order if scores[i] > 0]

    def idf(self, token: str) -> float:
        """How rare a (lexical) token is among the chunks: BM25's idf; a token no chunk uses
        gets the idf of a word in none of them."""
        if self._model is None:
            return 0.0
        scores = self._model.scores
        n = int(scores.get("num_docs", len(self.ids)))
        index = self._model.vocab_dict.get(token)
        df = 0
        if index is not None:
            indptr = scores["indptr"]
            df = int(indptr[index + 1] - indptr[index])
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def has_term(self, text: str) -> bool:
        """Whether every word of `text` occurs in the indexed chunks (a name the corpus uses),
        alone or inside a hyphenated word ("Sheldon" in "Freeman-Sheldon")."""
        if self._model is None:
            return False
        tokens = lexical_tokens(text)
        vocab = self._model.vocab_dict
        return bool(tokens) and all(t in vocab or t in self._parts() for t in tokens)

    def _parts(self) -> frozenset[str]:
        if self._hyphen_parts is None:
            vocab = self._model.vocab_dict if self._model is not None else {}
            self._hyphen_parts = frozenset(
                p for t in vocab if "-" in t for p in re.split(r"[.-]", t) if len(p) > 1
            )
        return self._hyphen_parts

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._model is not None:
            self._model.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(self.ids))
        (tmp / "meta.json").write_text(json.dumps({"generation": self.generation}))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index | None:
        """None when missing or unreadable: the caller rebuilds from the manifest."""
        try:
            meta = json.loads((directory / "meta.json").read_text())
            ids = json.loads((directory / "ids.json").read_text())
            model = None
            if ids:
                model = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
            if model is not None and len(ids) != int(model.scores["num_docs"]):
                return None  # ids and scores of different builds
            return cls(ids, model, int(meta["generation"]))
        except Exception:  # a damaged file raises anything numpy or zip can
            return None
