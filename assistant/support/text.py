"""Small text utilities the judges share: sentence splitting, words, light stemming.

Pure functions with no model: the clinical checker and the lexical features must stay fast and
deterministic, and must agree on what a "content word" is.
"""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "et",
        "al",
        "per",
        "via",
        "vs",
        "versus",
        "within",
        "without",
        "among",
        "amongst",
        "whether",
        "however",
        "thus",
        "therefore",
        "although",
        "though",
        "one",
        "two",
        "three",
    ]
)

_SENT_BOUNDARY = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'\-]*|\d+(?:[.,]\d+)*")
_ABBREV_END = re.compile(r"\b(?:e\.g|i\.e|et al|vs|Dr|Fig|No|approx|cf)\.$", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Split a passage into sentences; newlines always split (lists, table rows, headings)."""
    pieces = [p.strip() for p in _SENT_BOUNDARY.split(text) if p and p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and _ABBREV_END.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def words(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately light stemmer: plural and verb endings, enough to match 'doses'/'dose'."""
    w = word.lower().strip("'-")
    for suffix, min_len in (("ations", 7), ("ation", 6), ("ingly", 7), ("edly", 6), ("ing", 5)):
        if w.endswith(suffix) and len(w) >= min_len + 1:
            return w[: -len(suffix)]
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "zes", "ches", "shes")) and len(w) > 4:
        return w[:-2]
    if w.endswith("ed") and len(w) > 4:
        return w[:-2]
    if w.endswith("ly") and len(w) > 5:
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (no stopwords, no bare punctuation)."""
    out = []
    for w in words(text):
        lw = w.lower()
        if lw in STOPWORDS or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.append(stem(lw))
    return out


def overlap_recall(claim: str, passage: str) -> float:
    """Share of the claim's content stems that occur in the passage (1.0 for an empty claim)."""
    claim_stems = set(content_stems(claim))
    if not claim_stems:
        return 1.0
    return len(claim_stems & set(content_stems(passage))) / len(claim_stems)


def best_overlap_sentence(claim: str, sentences: list[str]) -> tuple[int, float]:
    """Index of the sentence sharing most content stems with the claim, and that recall."""
    claim_stems = set(content_stems(claim))
    best, best_score = -1, -1.0
    for i, sentence in enumerate(sentences):
        stems = set(content_stems(sentence))
        score = len(claim_stems & stems) / max(1, len(claim_stems))
        if score > best_score:
            best, best_score = i, score
    return best, max(best_score, 0.0)


def capitalised_names(text: str) -> set[str]:
    """Capitalised words not at a sentence start: names of people, places, drugs, trials."""
    names: set[str] = set()
    for sentence in split_sentences(text):
        tokens = words(sentence)
        for i, token in enumerate(tokens):
            if i == 0 or not token[:1].isupper() or token.lower() in STOPWORDS:
                continue
            names.add(token.lower())
    return names
