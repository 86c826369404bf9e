"""Query understanding: map the words of a question to lexicon concepts, and say how we read them.

Clinicians type abbreviations, brand names, misspellings, made-up shorthand ("RESLEG") and
wrong expansions ("Rapid Eye Movement Sleep Leg syndrome"). Retrieval works on canonical names,
and the reader must see any non-obvious reading, so ``normalize_question`` returns the matches,
a rewritten question and a note for every interpretation that was not a plain lookup.

Passes, each only over words the earlier ones left: exact lookup (longest phrase first) ->
fuzzy spelling -> shorthand built from word prefixes -> unseen expansions scored by content-word
overlap with the head noun weighted -> ambiguity resolved from the rest of the question. A real
word (lexicon term, common word, known abbreviation) is never corrected. Work is capped, so a
20,000-character paste costs milliseconds, not seconds.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from assistant.lexicon import STOPWORDS, Entry, Lexicon, fold, tokenize
from assistant.types import ConceptMatch, NormalizationNote, NormalizedQuery

__all__ = ["normalize_question"]

MAX_CHARS = 10_000  # analysed; text beyond this is kept verbatim in the rewrite
MAX_TOKENS = 2_000
MAX_MATCHES = 200
MAX_FUZZY_QUERIES = 48
MAX_SHORTHAND_TOKENS = 12
MAX_EXPANSION_CANDIDATES = 12
MAX_UNRECOGNIZED = 20

HEAD_NOUNS = frozenset({"syndrome", "disease", "disorder"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_POSSESSIVE = re.compile(r"['’][sS]$")
_HARD_BREAK = re.compile(r"[()\[\]{};:?!\n]|\.\s|\.$")
_MEDICAL_SUFFIX = re.compile(
    r"(?:ine|ole|ol|ide|pam|lam|mab|nib|pril|sartan|itis|osis|emia|aemia|pathy|algia|plegia|"
    r"ectomy|oma|azole|cycline|mycin|statin|tidine|afil|triptan|xetine|zepam|done|phine)$"
)
_KIND_TO_TYPE = {
    "canonical": "exact",
    "synonym": "exact",
    "abbreviation": "abbreviation",
    "brand": "brand",
    "misspelling": "misspelling",
    "wrong_expansion": "wrong-expansion",
    "shorthand": "unrecognized-shorthand",
}
_KIND_CONFIDENCE = {
    "canonical": 1.0,
    "synonym": 1.0,
    "abbreviation": 1.0,
    "brand": 1.0,
    "misspelling": 0.95,
    "wrong_expansion": 0.9,
    "shorthand": 0.9,
}
_REAL_TYPES = frozenset({"exact", "abbreviation", "brand"})
_NOTED_TYPES = frozenset(
    {"misspelling", "fuzzy", "wrong-expansion", "unrecognized-shorthand", "initialism"}
)


# --------------------------------------------------------------------------- working state


@dataclass
class _Span:
    """A run of tokens read as one concept (or, before resolution, several candidates)."""

    start: int
    end: int  # exclusive
    candidates: list[str]
    match_type: str
    confidence: float
    term: str  # the lexicon term it matched (fuzzy: the corrected form)
    kind: str = ""
    alternatives: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # words that decided a scored reading
    reason: str = ""  # why an ambiguous term was read this way
    head: int | None = None  # index of a following head noun ("... ) syndrome") it absorbs

    @property
    def concept_id(self) -> str:
        return self.candidates[0]


class _Doc:
    """The analysed text: tokens, their folded forms, and where phrases may not cross."""

    def __init__(
        self, text: str, lexicon: Lexicon, index_word: Callable[[str], bool] | None = None
    ) -> None:
        self.text = text
        self._index_word = index_word
        self.tokens = tokenize(text[:MAX_CHARS], limit=MAX_TOKENS)
        self.raw = [t.text for t in self.tokens]
        self.bare = [_POSSESSIVE.sub("", t) for t in self.raw]  # "COPD's" -> "COPD"
        self.lower = [t.casefold() for t in self.raw]
        self.folded = [fold(t) for t in self.raw]
        n = len(self.tokens)
        self.gap_before = [
            text[self.tokens[i - 1].end if i else 0 : self.tokens[i].start] for i in range(n)
        ]
        tail = text[self.tokens[-1].end : self.tokens[-1].end + 64] if n else ""
        self.gap_after = [self.gap_before[i + 1] if i + 1 < n else tail for i in range(n)]
        self.hard_before = [bool(_HARD_BREAK.search(g)) for g in self.gap_before]
        self.seg_end = [n] * n
        for i in range(n - 2, -1, -1):
            self.seg_end[i] = i + 1 if self.hard_before[i + 1] else self.seg_end[i + 1]
        self.covered = [False] * n
        self._known: dict[int, bool] = {}
        self._lexicon = lexicon

    def __len__(self) -> int:
        return len(self.tokens)

    def known(self, i: int) -> bool:
        if i not in self._known:
            tok = self.raw[i]
            self._known[i] = (
                self._lexicon.is_known_word(tok)
                or tok.isdigit()
                or not _is_ascii_word(tok)
                # A word the indexed sources use is a real word of this corpus ("stones").
                or (self._index_word is not None and len(tok) >= 2 and self._index_word(tok))
            )
        return self._known[i]

    def in_index(self, i: int) -> bool:
        return (
            self._index_word is not None and len(self.raw[i]) >= 2 and self._index_word(self.raw[i])
        )

    def cover(self, span: _Span) -> None:
        for i in range(span.start, span.end):
            self.covered[i] = True
        if span.head is not None:
            self.covered[span.head] = True

    def free_runs(self) -> Iterable[tuple[int, int]]:
        """Maximal runs of uncovered tokens that no hard punctuation splits."""
        i, n = 0, len(self)
        while i < n:
            if self.covered[i]:
                i += 1
                continue
            j = i + 1
            while j < n and not self.covered[j] and not self.hard_before[j]:
                j += 1
            yield i, j
            i = j

    def span_text(self, start: int, end: int) -> str:
        return self.text[self.tokens[start].start : self.tokens[end - 1].end]


def _is_ascii_word(token: str) -> bool:
    return token.isascii() and any(ch.isalpha() for ch in token)


def _looks_like_shorthand(token: str) -> bool:
    """All capitals (RESLEG), or capitals inside a word (ResLeg), or a long lower-case word."""
    if not token.isascii() or not token.isalpha() or not 3 <= len(token) <= 15:
        return False
    if token.isupper() and len(token) >= 4:
        return True
    return any(ch.isupper() for ch in token[1:]) or (token.islower() and len(token) >= 5)


# --------------------------------------------------------------------------- pass 1: exact


def _exact_pass(doc: _Doc, lex: Lexicon) -> list[_Span]:
    spans: list[_Span] = []
    i, n = 0, len(doc)
    first = lex.first_tokens
    while i < n:
        if doc.folded[i] not in first and doc.bare[i] not in first and doc.lower[i] not in first:
            i += 1
            continue
        hit: tuple[int, list[Entry], bool] | None = None
        for size in range(min(lex.max_phrase_tokens, doc.seg_end[i] - i), 0, -1):
            entries = list(lex.phrase_index.get(tuple(doc.folded[i : i + size]), ()))
            abbr = lex.abbr_exact.get(tuple(doc.bare[i : i + size]))
            loose = False
            if abbr is None and doc.raw[i].islower():  # "copd", not "Ida" (a name)
                abbr = lex.abbr_ci.get(tuple(t.casefold() for t in doc.bare[i : i + size]))
                loose = abbr is not None
            seen = {e.concept_id for e in entries}
            entries += [e for e in abbr or () if e.concept_id not in seen]
            if entries:
                hit = (size, entries, loose)
                break
        if hit is None:
            i += 1
            continue
        size, entries, loose = hit
        main = entries[0]
        confidence = _KIND_CONFIDENCE[main.kind]
        if loose and main.kind == "abbreviation" and all(e.kind == "abbreviation" for e in entries):
            confidence = 0.85
        span = _Span(
            start=i,
            end=i + size,
            candidates=[e.concept_id for e in entries],
            match_type=_KIND_TO_TYPE[main.kind],
            confidence=confidence,
            term=main.text,
            kind=main.kind,
        )
        spans.append(span)
        doc.cover(span)
        i += size
    return spans


# --------------------------------------------------------------------------- pass 2: fuzzy


def _fuzzy_cutoff(query: str, size: int) -> float:
    if size > 1:
        return 88.0
    return 85.0 if len(query) >= 8 else 88.0


def _fuzzy_pass(doc: _Doc, lex: Lexicon) -> list[_Span]:
    """Misspellings: only n-grams holding a word we do not know, compared with same-length terms."""
    spans: list[_Span] = []
    budget = MAX_FUZZY_QUERIES
    odd = [
        not doc.covered[j]
        and len(doc.raw[j]) >= 4
        and _is_ascii_word(doc.raw[j])
        and not doc.known(j)
        for j in range(len(doc))
    ]
    for run_start, run_end in list(doc.free_runs()):
        i = run_start
        while i < run_end and budget > 0:
            if not any(odd[i : min(i + 4, run_end)]):
                i += 1
                continue
            found = False
            for size in range(min(4, run_end - i), 0, -1):
                idx = range(i, i + size)
                if doc.lower[i] in STOPWORDS or doc.lower[i + size - 1] in STOPWORDS:
                    continue
                if not all(_is_ascii_word(doc.raw[j]) for j in idx):
                    continue
                if not any(odd[j] for j in idx):
                    continue
                if size == 1 and len(doc.raw[i]) < 6:
                    continue
                query = " ".join(doc.lower[i : i + size])
                choices = list(lex.fuzzy_choices.get(size, ()))
                if size > 1:
                    choices += lex.fuzzy_choices.get(size + 1, [])
                budget -= 1
                results = process.extract(
                    query,
                    choices,
                    scorer=fuzz.ratio,
                    score_cutoff=_fuzzy_cutoff(query, size),
                    limit=6,
                )
                if not results:
                    continue
                best: dict[str, tuple[float, Entry]] = {}
                for text, score, _ in results:
                    for e in lex.fuzzy_targets[text]:
                        if e.concept_id not in best or score > best[e.concept_id][0]:
                            best[e.concept_id] = (score, e)
                ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
                (cid, (score, entry)), rest = ranked[0], ranked[1:]
                alternatives = [c for c, (s, _) in rest if s >= score - 3][:3]
                span = _Span(
                    start=i,
                    end=i + size,
                    candidates=[cid],
                    match_type="fuzzy",
                    confidence=round(min(0.95, score / 100 - 0.03), 2),
                    term=entry.text if entry.kind != "misspelling" else lex.concept(cid).canonical,
                    kind=entry.kind,
                    alternatives=alternatives,
                )
                spans.append(span)
                doc.cover(span)
                i += size
                found = True
                break
            if budget <= 0:
                break
            if not found:
                i += 1
    return spans


# --------------------------------------------------------------------------- pass 3: shorthand


def _segment_score(token: str, words: tuple[str, ...], min_seg: int) -> float:
    """How well ``token`` splits into prefixes of successive ``words`` (RESLEG = RES|LEG of
    'chronic obstructive'): half for how long the prefixes are, half for how many words they use."""
    best = 0.0
    n = len(token)

    def walk(pos: int, j: int, segs: list[tuple[int, int]]) -> None:
        nonlocal best
        if pos == n:
            if len(segs) >= 2 and max(s for s, _ in segs) >= 3:
                length = sum(min(1.0, s / min(4, wl)) for s, wl in segs) / len(segs)
                best = max(best, 0.5 * length + 0.5 * len(segs) / len(words))
            return
        for k in range(j, len(words)):
            w = words[k]
            m = 0
            while m < len(w) and pos + m < n and token[pos + m] == w[m]:
                m += 1
            for size in range(m, min_seg - 1, -1):
                walk(pos + size, k + 1, [*segs, (size, len(w))])

    walk(0, 0, [])
    return best


def _shorthand_scores(token: str, lex: Lexicon) -> dict[str, float]:
    t = token.casefold()
    min_seg = 3 if token.islower() else 2
    scores: dict[str, float] = {}
    for name in lex.names_by_prefix.get(t[:2], ()):
        words = name.words
        if not 2 <= len(words) <= 6:
            continue
        s = _segment_score(t, words, min_seg)
        if s > scores.get(name.concept_id, 0.0):
            scores[name.concept_id] = s
    return scores


def _ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _shorthand_pass(doc: _Doc, lex: Lexicon) -> list[_Span]:
    spans: list[_Span] = []
    tried = 0
    for i in range(len(doc)):
        if tried >= MAX_SHORTHAND_TOKENS:
            break
        tok = doc.raw[i]
        if doc.covered[i] or doc.known(i) or not _looks_like_shorthand(tok):
            continue
        tried += 1
        ranked = _ranked(_shorthand_scores(tok, lex))
        if not ranked or ranked[0][1] < 0.6:
            continue
        cid, score = ranked[0]
        span = _Span(
            start=i,
            end=i + 1,
            candidates=[cid],
            match_type="unrecognized-shorthand",
            confidence=round(min(0.85, score), 2),
            term=lex.concept(cid).canonical,
            kind="shorthand",
            alternatives=[c for c, s in ranked[1:4] if s >= 0.5],
        )
        spans.append(span)
        doc.cover(span)
    return spans


# --------------------------------------------------------------------------- pass 4: expansions


@dataclass
class _Reading:
    scores: dict[str, float]  # after head-noun agreement
    raw: dict[str, float]  # plain weighted overlap
    run: dict[str, int]  # longest run of the phrase's words found in order in one name
    evidence: dict[str, list[str]]

    def alternatives(self, chosen: str) -> list[str]:
        """What else the words pointed to, the literal reading first ("Rapid Eye Movement
        Sleep" spells out REM sleep, so RBD comes before scattered overlaps)."""
        others = [c for c, r in self.raw.items() if c != chosen and r >= 0.3]
        return sorted(others, key=lambda c: (-self.run.get(c, 0), -self.raw[c], c))[:2]


def _longest_run(words: list[str], name_words: list[str]) -> int:
    best = 0
    for i in range(len(words)):
        for j in range(len(name_words)):
            k = 0
            while (
                i + k < len(words) and j + k < len(name_words) and words[i + k] == name_words[j + k]
            ):
                k += 1
            best = max(best, k)
    return best


def _expansion_reading(words: list[str], lex: Lexicon, head_is_noun: bool) -> _Reading:
    """Memoised on the lexicon: long inputs repeat phrases, and scoring walks many names."""
    key = ("expansion", tuple(words), head_is_noun)
    cached = lex.cache.get(key)
    if not isinstance(cached, _Reading):
        if len(lex.cache) > 4096:
            lex.cache.clear()
        cached = lex.cache[key] = _score_expansion(words, lex, head_is_noun)
    return cached


def _score_expansion(words: list[str], lex: Lexicon, head_is_noun: bool) -> _Reading:
    """Weighted overlap of the phrase's content words with each concept's names.

    The last word is the head (weight 3), the one before it weight 2: a made-up "Rapid Eye
    Movement Sleep Leg syndrome" is a kind of *leg syndrome*, so a leg syndrome outranks REM
    sleep behavior disorder even though more words overlap with the latter. A name ending in another
    generic head noun (disorder vs syndrome) is discounted."""
    weights = [1.0] * len(words)
    weights[-1] = 3.0
    if len(words) >= 2:
        weights[-2] = 2.0
    total = sum(weights)
    head = words[-1]
    scores: dict[str, float] = {}
    raw: dict[str, float] = {}
    run: dict[str, int] = {}
    evidence: dict[str, list[str]] = {}
    names = {n for w in set(words) for n in lex.names_by_word.get(w, ())}
    for name in names:
        matched = [w for w in words if w in name.folded]
        if not matched:
            continue
        cover = len(set(matched)) / max(1, len(name.folded))
        body = [w for w in matched if w != head] if head_is_noun else matched
        if cover < 0.6 or not body:
            continue
        overlap = sum(wt for w, wt in zip(words, weights, strict=True) if w in name.folded) / total
        ctx_words = lex.context_words.get(name.concept_id, frozenset())
        ctx = sum(
            wt
            for w, wt in zip(words, weights, strict=True)
            if w in ctx_words and w not in name.folded
        )
        score = overlap + 0.25 * ctx / total
        if head_is_noun and head not in name.folded:
            score *= 0.6 if fold(name.words[-1]) in HEAD_NOUNS else 0.75
        cid = name.concept_id
        raw[cid] = max(raw.get(cid, 0.0), overlap)
        name_words = [fold(w) for w in name.words]
        run[cid] = max(run.get(cid, 0), _longest_run(words, name_words))
        if score > scores.get(cid, 0.0):
            scores[cid] = score
            evidence[cid] = list(dict.fromkeys(matched))
    return _Reading(scores, raw, run, evidence)


def _content_words(doc: _Doc, idx: Iterable[int]) -> list[str]:
    return [
        doc.folded[j] for j in idx if doc.lower[j] not in STOPWORDS and not doc.raw[j].isdigit()
    ]


def _following_head(doc: _Doc, end: int) -> int | None:
    """Index of a head noun right after ``end`` ("(...) syndrome"), if nothing else claims it."""
    if end >= len(doc) or doc.covered[end] or doc.folded[end] not in HEAD_NOUNS:
        return None
    gap = doc.gap_before[end]
    return end if gap.strip(" )]\t") == "" else None


def _paren_groups(doc: _Doc) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    i, n = 0, len(doc)
    while i < n:
        if "(" in doc.gap_before[i] or "[" in doc.gap_before[i]:
            j = i
            while j < n and ")" not in doc.gap_after[j] and "]" not in doc.gap_after[j]:
                if j > i and ("(" in doc.gap_before[j] or j - i > 12):
                    break
                j += 1
            if j < n and (")" in doc.gap_after[j] or "]" in doc.gap_after[j]):
                groups.append((i, j + 1))
                i = j + 1
                continue
        i += 1
    return groups


def _head_phrases(doc: _Doc, lex: Lexicon) -> list[tuple[int, int]]:
    """'... Sleep Leg syndrome': a head noun and the lexicon words right before it."""
    out: list[tuple[int, int]] = []
    for run_start, run_end in doc.free_runs():
        for h in range(run_start, run_end):
            if doc.folded[h] not in HEAD_NOUNS:
                continue
            s = h
            while (
                s - 1 >= run_start
                and h - (s - 1) <= 7
                and doc.lower[s - 1] not in STOPWORDS
                and doc.folded[s - 1] in lex.vocabulary
                and doc.folded[s - 1] not in HEAD_NOUNS
            ):
                s -= 1
            if h - s >= 1:
                out.append((s, h + 1))
    return out


def _expansion_pass(doc: _Doc, lex: Lexicon, spans: list[_Span]) -> list[_Span]:
    """Unseen expansions: parenthesised phrases (fused with the word they explain) and
    head-noun phrases made of lexicon words that are no lexicon name."""
    by_token = {i: s for s in spans for i in range(s.start, s.end)}
    found: list[_Span] = []
    candidates = [(a, b, True) for a, b in _paren_groups(doc)] + [
        (a, b, False) for a, b in _head_phrases(doc, lex)
    ]
    for start, end, in_parens in candidates[:MAX_EXPANSION_CANDIDATES]:
        if any(doc.covered[j] for j in range(start, end)):
            continue
        head = _following_head(doc, end) if in_parens else None
        idx = [*range(start, end), *([head] if head is not None else [])]
        words = _content_words(doc, idx)
        if len(words) < 2:
            continue
        known = sum(1 for w in words if w in lex.vocabulary)
        if known * 3 < len(words) * 2:
            continue
        before = start - 1 if in_parens and start > 0 else None
        explained = by_token.get(before) if before is not None else None
        if explained is not None and explained.match_type not in _REAL_TYPES:
            explained = None
        unknown = (
            before is not None
            and not doc.covered[before]
            and not doc.known(before)
            and _looks_like_shorthand(doc.raw[before])
        )
        has_head = words[-1] in HEAD_NOUNS
        if in_parens and not (explained or unknown or has_head):
            continue  # a bare "(Rapid Eye Movement Sleep)" explains nothing
        reading = _expansion_reading(words, lex, head_is_noun=has_head)
        if explained is not None:
            # "ABC (Rapid Eye Movement Sleep Leg)": the writer's expansion of a real term.
            cid, score, match_type = explained.concept_id, 0.7, "wrong-expansion"
        else:
            combined = dict(reading.scores)
            if unknown and before is not None:
                for c, s in _shorthand_scores(doc.raw[before], lex).items():
                    combined[c] = combined.get(c, 0.0) + 0.5 * s
            ranked = _ranked(combined)
            if not ranked or ranked[0][1] < 0.45:
                continue
            if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < 0.1:
                continue
            cid, score = ranked[0]
            match_type = "initialism"
            if cid not in reading.scores:
                continue  # the phrase itself says nothing about the concept it is fused with
        span = _Span(
            start=start,
            end=end,
            candidates=[cid],
            match_type=match_type,
            confidence=round(min(0.85, score), 2),
            term=lex.concept(cid).canonical,
            kind=match_type,
            alternatives=reading.alternatives(cid),
            evidence=reading.evidence.get(cid, []),
            head=head,
        )
        found.append(span)
        doc.cover(span)
        if unknown and before is not None:
            shorthand = _Span(
                start=before,
                end=before + 1,
                candidates=[cid],
                match_type="unrecognized-shorthand",
                confidence=round(min(0.8, score), 2),
                term=lex.concept(cid).canonical,
                kind="shorthand",
            )
            found.append(shorthand)
            doc.cover(shorthand)
    return found


def _explain_scored(doc: _Doc, lex: Lexicon, span: _Span) -> None:
    """For a listed wrong expansion: which words point to the concept, and what else they
    could have meant (RBD for 'Rapid Eye Movement Sleep Leg syndrome')."""
    idx = [*range(span.start, span.end), *([span.head] if span.head is not None else [])]
    words = _content_words(doc, idx)
    if not words:
        return
    reading = _expansion_reading(words, lex, head_is_noun=words[-1] in HEAD_NOUNS)
    cid = span.concept_id
    span.evidence = reading.evidence.get(cid, [])
    span.alternatives = reading.alternatives(cid)


# --------------------------------------------------------------------------- ambiguity


def _defer_to_definitions(doc: _Doc, lex: Lexicon, spans: list[_Span]) -> None:
    """'RESLEG (REM sleep behavior disorder)': the writer's own definition of a shorthand
    outranks our guess, so the question gets one reading; the guess stays as the alternative."""
    for a, b in itertools.pairwise(spans):
        if (
            a.match_type == "unrecognized-shorthand"
            and b.start == a.end
            and "(" in doc.gap_before[b.start]
            and b.match_type in {"exact", "abbreviation", "brand"}
            and len(b.candidates) == 1
            and b.concept_id != a.concept_id
        ):
            a.alternatives = [a.concept_id, *(x for x in a.alternatives if x != b.concept_id)]
            a.candidates = [b.concept_id]
            a.term = lex.concept(b.concept_id).canonical
            a.confidence = min(a.confidence, 0.8)
            a.reason = "as the question defines it"


def _resolve(doc: _Doc, lex: Lexicon, spans: list[_Span]) -> None:
    """Pick one reading of a shared term from the rest of the question; keep the others."""
    settled = {s.concept_id for s in spans if len(s.candidates) == 1}
    words = set(doc.folded[:MAX_TOKENS])
    for span in spans:
        if len(span.candidates) < 2:
            continue
        term_key = span.term.casefold()
        scored: list[tuple[float, str, str]] = []
        for cid in span.candidates:
            concept = lex.concept(cid)
            links = sorted(settled & (lex.related(cid) | {cid}))
            ctx = sorted(words & lex.context_words.get(cid, frozenset()))
            prior = 0.3 if any(p.casefold() == term_key for p in concept.preferred_for) else 0.0
            score = prior + 1.0 * len(links) + 0.5 * len(ctx)
            if links:
                why = f"because the question also mentions {lex.concept(links[0]).canonical}"
            elif ctx:
                why = f"because the question mentions '{ctx[0]}'"
            else:
                why = "as the more usual reading here"
            scored.append((score, cid, why))
        scored.sort(key=lambda t: (-t[0], span.candidates.index(t[1])))
        best, second = scored[0], scored[1]
        span.candidates = [cid for _, cid, _ in scored]
        span.alternatives = span.candidates[1:]
        span.reason = best[2]
        margin = best[0] - second[0]
        span.confidence = 0.9 if margin >= 1.0 else 0.75 if margin >= 0.5 else 0.6


# --------------------------------------------------------------------------- output


@dataclass
class _Group:
    spans: list[_Span]
    char_start: int
    char_end: int


def _groups(doc: _Doc, spans: list[_Span]) -> list[_Group]:
    """Adjacent spans of one concept ("RESLEG (Rapid Eye ... Leg) syndrome") become one
    stretch of text to rewrite; a trailing head noun and closing bracket go with them."""
    groups: list[_Group] = []
    for span in spans:
        start = doc.tokens[span.start].start
        last_token = span.end - 1
        end = doc.tokens[last_token].end - (len(doc.raw[last_token]) - len(doc.bare[last_token]))
        if groups:
            last = groups[-1]
            gap = doc.text[last.char_end : start]
            if last.spans[-1].concept_id == span.concept_id and gap.strip(" \t()[]") == "":
                last.spans.append(span)
                last.char_end = end
                continue
        groups.append(_Group([span], start, end))
    for g in groups:
        heads = [s.head for s in g.spans if s.head is not None]
        if heads:
            g.char_end = max(g.char_end, doc.tokens[max(heads)].end)
        else:
            nxt = g.spans[-1].end
            head = _following_head(doc, nxt) if nxt < len(doc) else None
            concept_type = g.spans[-1].match_type
            if head is not None and concept_type != "exact" and ")" in doc.gap_before[head]:
                g.char_end = doc.tokens[head].end
        region = doc.text[g.char_start : g.char_end]
        opened = region.count("(") - region.count(")")
        if opened > 0:
            rest = doc.text[g.char_end :]
            m = re.match(r"\s*\)", rest)
            if m:
                g.char_end += m.end()
    return groups


def _folded_words(text: str) -> list[str]:
    return [fold(t.text) for t in tokenize(text)]


def _contains_canonical(text: str, canonical: str) -> bool:
    """'extended-release oxycodone' already says oxycodone: keep the writer's qualifier."""
    return set(_folded_words(canonical)) <= set(_folded_words(text))


def _is_trivial_variant(text: str, canonical: str) -> bool:
    """'heart attack' or 'kidney transplant' for the canonical name: no need to repeat it."""
    a, b = _folded_words(text), _folded_words(canonical)
    if all(any(w.startswith(x) for w in b) for x in a):
        return True
    return fuzz.ratio(" ".join(a), " ".join(b)) >= 90


def _replacement(doc: _Doc, lex: Lexicon, group: _Group, abbreviated: set[str]) -> str | None:
    spans = group.spans
    cid = spans[0].concept_id
    concept = lex.concept(cid)
    region = doc.text[group.char_start : group.char_end]
    types = {s.match_type for s in spans}
    if not concept.rewrite and "abbreviation" not in types:
        if len(spans) == 1 and types & {"misspelling", "fuzzy"}:
            return spans[0].term if spans[0].kind != "misspelling" else concept.canonical
        return None
    paren: str | None = None
    brand = next((s for s in spans if s.match_type == "brand"), None)
    abbr = next((s for s in spans if s.match_type == "abbreviation"), None)
    if brand is not None:
        paren = doc.span_text(brand.start, brand.end)
    elif types & {"fuzzy"} and spans[0].kind == "brand":
        paren = spans[0].term
    elif abbr is not None:
        typed = _POSSESSIVE.sub("", doc.span_text(abbr.start, abbr.end))
        paren = typed if typed.isupper() or any(c.isupper() for c in typed) else abbr.term
    elif types & {"unrecognized-shorthand", "wrong-expansion", "initialism"}:
        paren = concept.abbreviations[0] if concept.abbreviations else None
    elif types == {"exact"} and len(spans) == 1:
        if _contains_canonical(region, concept.canonical):
            return None
        if not _is_trivial_variant(region, concept.canonical):
            paren = region
    if paren is not None and paren in concept.abbreviations:
        if cid in abbreviated:
            paren = None
        abbreviated.add(cid)
    text = concept.canonical + (f" ({paren})" if paren else "")
    if text.casefold() == region.casefold():
        return None
    if region[:1].isupper() and _sentence_start(doc.text, group.char_start):
        text = text[:1].upper() + text[1:]
    return text


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".?!\n"


def _note(doc: _Doc, lex: Lexicon, span: _Span) -> NormalizationNote | None:
    typed = doc.span_text(span.start, span.end)
    cid = span.concept_id
    display = lex.display(cid)
    alts = [lex.display(a) for a in span.alternatives]
    if len(span.candidates) > 1:
        name = lex.concept(cid).canonical
        others = " or ".join(lex.concept(a).canonical for a in span.alternatives)
        message = f"'{typed}' can mean {name} or {others}; read as {name} {span.reason}."
    elif span.match_type in {"misspelling", "fuzzy"}:
        message = f"'{typed}' looks like a misspelling; read as {display}."
        if span.match_type == "fuzzy" and alts:
            message += f" Also close: {', '.join(alts)}."
    elif span.match_type == "unrecognized-shorthand":
        how = f", {span.reason}" if span.reason else ""
        message = f"'{typed}' is not a recognized medical term; interpreted as {display}{how}."
        if alts:
            message += f" Also considered: {', '.join(alts)}."
    elif span.match_type in {"wrong-expansion", "initialism"}:
        words = ", ".join(f"'{w}'" for w in span.evidence)
        because = f" (its words {words} point there)" if words else ""
        message = (
            f"'{typed}' is not a recognized medical term or expansion; read as {display}{because}."
        )
        if alts:
            message += f" {alts[0]} was considered and not chosen."
    else:
        return None
    return NormalizationNote(
        span=typed, message=message, concept_id=cid, confidence=span.confidence
    )


def _unrecognized(doc: _Doc, lex: Lexicon) -> list[str]:
    """Words that look medical yet match no concept: drug and disease names outside the
    lexicon, capitalised abbreviations, unknown words with drug/disease endings. Retrieval and
    the reader should know we could not place them."""
    out: list[str] = []
    seen: set[str] = set()
    for i, tok in enumerate(doc.raw):
        if len(out) >= MAX_UNRECOGNIZED:
            break
        if doc.covered[i] or tok in seen or not _is_ascii_word(tok):
            continue
        f = doc.folded[i]
        if f in lex.common_words or f in lex.vocabulary or doc.in_index(i):
            continue
        outside = f in lex.outside_terms
        caps = tok.isupper() and sum(ch.isalpha() for ch in tok) >= 2
        odd = (
            not doc.known(i)
            and (
                (tok.islower() and len(tok) >= 6 and bool(_MEDICAL_SUFFIX.search(tok)))
                or (_looks_like_shorthand(tok) and not tok.islower())
                # A capitalised word inside the sentence that no word list knows: a brand name.
                or (i > 0 and len(tok) >= 5 and tok[0].isupper() and tok[1:].islower())
            )
        )
        if outside or caps or odd:
            seen.add(tok)
            out.append(tok)
    return out


def normalize_question(
    question: str, lexicon: Lexicon, index_word: Callable[[str], bool] | None = None
) -> NormalizedQuery:
    """Read a question against the lexicon: matches, a rewritten question, notes, unknowns.

    `index_word` says whether the indexed sources use a word: such a word is never corrected
    nor reported as unknown, so a general corpus's own vocabulary reads as real words."""
    original = question if isinstance(question, str) else str(question or "")
    text = _CONTROL.sub(" ", original)
    doc = _Doc(text, lexicon, index_word)
    if not doc.tokens:
        return NormalizedQuery(original=original, rewritten=text)

    spans = _exact_pass(doc, lexicon)
    for span in spans:
        if span.match_type == "wrong-expansion":
            span.head = _following_head(doc, span.end)
            if span.head is not None:
                doc.cover(span)
    spans += _fuzzy_pass(doc, lexicon)
    spans += _expansion_pass(doc, lexicon, spans)
    spans += _shorthand_pass(doc, lexicon)
    spans.sort(key=lambda s: s.start)
    del spans[MAX_MATCHES:]
    for span in spans:
        if span.match_type == "wrong-expansion":
            _explain_scored(doc, lexicon, span)
    _defer_to_definitions(doc, lexicon, spans)
    _resolve(doc, lexicon, spans)

    matches = [
        ConceptMatch(
            span=doc.span_text(s.start, s.end),
            concept_id=s.concept_id,
            canonical=lexicon.concept(s.concept_id).canonical,
            concept_type=lexicon.concept(s.concept_id).type.value,
            match_type=s.match_type,
            confidence=s.confidence,
            alternatives=s.alternatives,
        )
        for s in spans
    ]
    notes: list[NormalizationNote] = []
    for s in spans:
        if s.match_type in _NOTED_TYPES or len(s.candidates) > 1:
            note = _note(doc, lexicon, s)
            if note is not None and note.message not in {n.message for n in notes}:
                notes.append(note)

    pieces: list[str] = []
    cursor = 0
    abbreviated: set[str] = set()
    for group in _groups(doc, spans):
        replacement = _replacement(doc, lexicon, group, abbreviated)
        if replacement is None:
            continue
        pieces.append(text[cursor : group.char_start])
        pieces.append(replacement)
        cursor = group.char_end
    pieces.append(text[cursor:])
    return NormalizedQuery(
        original=original,
        rewritten="".join(pieces),
        matches=matches,
        notes=notes,
        unrecognized=_unrecognized(doc, lexicon),
    )
