"""Features of a (claim, passage) pair for the learned support scorer.

Three families, each covering a blind spot of the others: MiniLM similarities (paraphrase),
token-level coverage (is *every* part of the claim somewhere in the passage, not just its gist),
and lexical/clinical checks (numbers, names, negation, doses). Texts are encoded once per batch,
deduplicated, so scoring one answer's sentences against its cited passages stays cheap.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.support.clinical import ClinicalCheck, check_claim, negation_count
from assistant.support.models import load_sentence_model, unwrap_sentence_model
from assistant.support.text import (
    STOPWORDS,
    capitalised_names,
    content_stems,
    overlap_recall,
    split_sentences,
    words,
)
from ingest.embedding import TokenEncoder, TorchTokenEncoder

log = logging.getLogger(__name__)

MAX_SENTENCES = 128
_HEDGE = re.compile(
    r"\b(?:may|might|could|possibl[ey]|potential(?:ly)?|suggest(?:s|ed)?|unclear|uncertain|"
    r"limited|preliminary|hypothes[ie]s|further\s+(?:studies|research))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")

BASE_FEATURES = (
    "cos_max",
    "cos_top2",
    "cos_passage",
    "tok_mean",
    "tok_min",
    "tok_p20",
    "tok_uncovered_60",
    "tok_uncovered_75",
    "tok_best_mean",
    "lex_recall",
    "lex_recall_best",
    "bigram_recall",
    "unseen_numbers",
    "unseen_names_frac",
    "claim_len",
    "n_sentences",
    "neg_claim",
    "neg_best",
    "hedge_best",
)


@dataclass
class PairFeatures:
    """Feature rows plus what a verdict shows: the best sentence and the checker's findings."""

    names: list[str]
    matrix: np.ndarray  # (n_pairs, n_features) float32
    evidence: list[str | None]
    checks: list[ClinicalCheck]


def _bigrams(stems: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(stems))


def default_token_encoder(model: Any = None, batch_size: int = 32) -> Any:
    """The given sentence-transformers model's encoder; else our Embedder's, or the packaged
    model's in the precision `auto` chose for this machine: an ONNX graph where one can be
    made (float32: the same features, twice as fast; int8: twice as fast again), torch
    otherwise."""
    if model is not None and hasattr(model, "encode") and hasattr(model, "tokenizer"):
        return TorchTokenEncoder(model, batch_size)
    from assistant.support.models import packaged_model_path
    from ingest.embedding import resolve_backend
    from ingest.settings import Settings

    try:
        if model is not None and hasattr(model, "token_encoder"):
            return model.token_encoder()
        # The precision this machine's answers are judged in (`auto`), so evals agree with them.
        backend = resolve_backend(Settings().embedding)
        if backend != "torch":
            return TokenEncoder(packaged_model_path(), None, int8=backend == "onnx-int8")
    except Exception as exc:  # no onnx / onnxruntime, or an export this machine cannot make
        log.warning("support judge: no ONNX encoder (%s); encoding with torch", exc)
    sentence_model = unwrap_sentence_model(model) if model is not None else None
    return TorchTokenEncoder(sentence_model or load_sentence_model(), batch_size)


class FeatureExtractor:
    """Computes ``feature_names`` for batches of pairs with one MiniLM pass per unique text.

    Each text's encoding is remembered (`text_memo` texts, about 30 KB each): an answer cites
    the same corpus sentences that earlier answers cited, and those are not encoded again."""

    def __init__(
        self,
        model: Any = None,
        batch_size: int = 32,
        memo_size: int = 0,
        encoder: Any = None,
        text_memo: int = 4096,
    ) -> None:
        self._source = model
        self._encoder = encoder
        self.batch_size = batch_size
        self._skip_ids: set[int] | None = None
        # Judges built together (e.g. for the benchmark) share one extractor and its memo.
        self.memo_size = memo_size
        self._memo: OrderedDict[tuple[str, str], tuple[np.ndarray, str, ClinicalCheck]] = (
            OrderedDict()
        )
        self.text_memo = text_memo
        self._texts: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = default_token_encoder(self._source, self.batch_size)
        return self._encoder

    def clear(self) -> None:
        from assistant.support.clinical import default_terms

        self._memo.clear()
        self._texts.clear()
        default_terms().forget()

    @property
    def feature_names(self) -> list[str]:
        from assistant.support.clinical import RULE_NAMES

        return list(BASE_FEATURES) + [f"rule_{r.replace('-', '_')}" for r in RULE_NAMES]

    def _content_token_ids(self) -> set[int]:
        """Vocabulary ids to ignore in token coverage: special tokens, stopwords, punctuation."""
        if self._skip_ids is None:
            skip = set(self.encoder.special_ids)
            for token, idx in self.encoder.vocabulary().items():
                if token in STOPWORDS or not any(ch.isalnum() for ch in token):
                    skip.add(idx)
            self._skip_ids = skip
        return self._skip_ids

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence embeddings (normalised) and each text's content-token embeddings."""
        if not texts:
            return np.zeros((0, 384), np.float32), []
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if missing:
            skip = self._content_token_ids()
            for text, (ids, emb, sent) in zip(missing, self.encoder.encode(missing), strict=True):
                keep = [i for i, t in enumerate(ids) if t not in skip]
                vec = emb[keep] if keep else np.zeros((0, emb.shape[1]), np.float32)
                vec = vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-9)
                fresh[text] = (sent.astype(np.float32), vec.astype(np.float32))
        rows = [fresh[t] if t in fresh else self._texts[t] for t in texts]
        if self.text_memo:
            for text in texts:
                if text in fresh:
                    self._texts[text] = fresh[text]
                self._texts.move_to_end(text)
            while len(self._texts) > self.text_memo:
                self._texts.popitem(last=False)
        return np.stack([r[0] for r in rows]), [r[1] for r in rows]

    def compute(self, pairs: Sequence[tuple[str, str]]) -> PairFeatures:
        todo = [p for p in dict.fromkeys(pairs) if p not in self._memo]
        fresh = self._compute(todo)
        results = dict(zip(todo, fresh, strict=True))
        rows, evidence, checks = [], [], []
        for pair in pairs:
            row, ev, check = results[pair] if pair in results else self._memo[pair]
            rows.append(row)
            evidence.append(ev)
            checks.append(check)
        if self.memo_size:
            for pair, value in results.items():
                self._memo[pair] = value
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(pairs), len(self.feature_names))
        return PairFeatures(self.feature_names, matrix, evidence, checks)

    def _compute(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[np.ndarray, str, ClinicalCheck]]:
        split = [(split_sentences(p) or [p])[:MAX_SENTENCES] for _, p in pairs]
        texts: dict[str, int] = {}
        for (claim, _), sentences in zip(pairs, split, strict=True):
            for t in (claim, *sentences):
                texts.setdefault(t, len(texts))
        sent_emb, tok_emb = self.encode(list(texts))
        out = []
        for (claim, passage), sentences in zip(pairs, split, strict=True):
            ci = texts[claim]
            si = [texts[s] for s in sentences]
            row, best = self._row(
                claim,
                passage,
                sentences,
                sent_emb[ci],
                sent_emb[si],
                tok_emb[ci],
                [tok_emb[i] for i in si],
            )
            check = check_claim(claim, passage, evidence=sentences[best])
            row.extend(check.as_features().values())
            out.append((np.asarray(row, dtype=np.float32), sentences[best], check))
        return out

    @staticmethod
    def _row(
        claim: str,
        passage: str,
        sentences: list[str],
        claim_vec: np.ndarray,
        sent_vecs: np.ndarray,
        claim_tok: np.ndarray,
        sent_toks: list[np.ndarray],
    ) -> tuple[list[float], int]:
        cos = sent_vecs @ claim_vec
        best = int(np.argmax(cos))
        top2 = np.sort(cos)[-2:]
        mean_vec = sent_vecs.mean(axis=0)
        cos_passage = float(mean_vec @ claim_vec / (np.linalg.norm(mean_vec) + 1e-9))

        passage_tok = np.concatenate([t for t in sent_toks if len(t)] or [np.zeros((0, 384))])
        if len(claim_tok) and len(passage_tok):
            cover = (claim_tok @ passage_tok.T).max(axis=1)
            best_tok = sent_toks[best]
            best_cover = (claim_tok @ best_tok.T).max(axis=1) if len(best_tok) else cover * 0
            tok = [
                float(cover.mean()),
                float(cover.min()),
                float(np.percentile(cover, 20)),
                float((cover < 0.60).mean()),
                float((cover < 0.75).mean()),
                float(best_cover.mean()),
            ]
        else:
            tok = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]

        best_sentence = sentences[best]
        claim_stems = content_stems(claim)
        passage_stems = content_stems(passage)
        bigrams = _bigrams(claim_stems)
        bigram_recall = len(bigrams & _bigrams(passage_stems)) / len(bigrams) if bigrams else 1.0
        passage_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
        unseen_numbers = sum(
            n.replace(",", "") not in passage_numbers for n in set(_NUMBER.findall(claim))
        )
        names = capitalised_names(claim)
        passage_words = {w.lower() for w in words(passage)}
        unseen_names = len(names - passage_words) / len(names) if names else 0.0
        row = [
            float(cos[best]),
            float(top2.mean()),
            cos_passage,
            *tok,
            overlap_recall(claim, passage),
            overlap_recall(claim, best_sentence),
            bigram_recall,
            float(unseen_numbers),
            unseen_names,
            math.log1p(len(claim_stems)),
            math.log1p(len(sentences)),
            float(negation_count(claim)),
            float(negation_count(best_sentence)),
            float(bool(_HEDGE.search(best_sentence))),
        ]
        return row, best
