"""Whether the sources cover a question: the title and headings of a retrieved source must name
most of its subject's words (weighted by how rarely titles and headings use them).

These are rules, kept until a learned answerability model meets the refusal bars on every
library (docs/answering.md); the passages an answer quotes are chosen by relevance
(`assistant.relevance`), not here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from assistant.context import Sources
from assistant.intent import GENERIC_WORDS, KIND_WORDS
from assistant.lexicon import fold
from assistant.profile import CorpusProfile, content_words
from assistant.understand import Understanding
from ingest.types import DocType, Passage

_SUBJECT_STOP = frozenset(fold(w) for w in GENERIC_WORDS) | frozenset(
    {"cause", "caus", "risk", "sign", "symptom", "diagnos", "test", "outlook", "prognosi"}
    | {"suspected", "pattern", "workup", "overview", "adult", "child", "people", "person"}
    # How a condition runs, not which condition it is ("COPD flares").
    | {"flare", "exacerbation", "acute", "severe", "mild", "moderate", "early", "recurrent"}
    # Whose word it is, not what it is about ("according to X").
    | {"according"}
)
#: the share of a question's subject words a title or heading must name for the source to be
#: about it (calibrated on the MedQuAD development suite; docs/abstention.md)
ABOUT_SHARE = 0.6
# "Vaginal diseases" asks about a class of conditions: a page on one member does not cover it.
_CLASS_NOUNS = ("diseases", "disorders", "conditions", "problems", "infections", "injuries")
_CLASS_NOUN = re.compile(rf"\b({'|'.join(_CLASS_NOUNS)})\b", re.I)
_CLASS_WORDS = frozenset(fold(c) for c in _CLASS_NOUNS)


_EXPANDED = re.compile(r"(?P<long>(?:[\w'-]+\s+){0,6}?[\w'-]+)\s\((?P<abbr>[A-Z][A-Z0-9]{1,5}s?)\)")


def subject_words(u: Understanding, profile: CorpusProfile) -> list[list[str]]:
    """What the question is about, beyond the kind of question and whom it concerns: the words
    a source must be about ("What causes kidney stones in adults?" -> kidney, stone).

    An abbreviation read as its long form ("chronic ... disease (COPD)") gives two readings,
    either of which a source may use."""
    readings = [re.sub(r"\s\([A-Z][A-Z0-9]{1,5}s?\)", " ", u.asking)]
    if _EXPANDED.search(u.asking):
        readings.append(_abbreviated(u.asking, profile))
    groups = profile.group_words(u.asking)
    out: list[list[str]] = []
    classes = [fold(m) for m in _CLASS_NOUN.findall(u.asking)]
    for reading in readings:
        words: list[str] = list(dict.fromkeys(classes))
        for word in content_words(KIND_WORDS.sub(" ", reading)):
            if len(word) < 3 or word in _SUBJECT_STOP or word in groups or word.isdigit():
                continue
            if word not in words:
                words.append(word)
        if words and words not in out:
            out.append(words)
    return out


def _abbreviated(text: str, profile: CorpusProfile) -> str:
    """The question with each expanded long form dropped again, its abbreviation kept."""

    def keep_abbreviation(match: re.Match[str]) -> str:
        found = profile.abbreviations.get(match.group("abbr"))
        long_form = match.group("long")
        if found and long_form.lower().endswith(found.lower()):
            return long_form[: len(long_form) - len(found)] + match.group("abbr")
        return match.group("abbr")

    return _EXPANDED.sub(keep_abbreviation, text)


def word_found(word: str, words: frozenset[str] | set[str]) -> bool:
    """Exactly, as the start of a longer word ("pulm"), or a slip or two away ("psoriasys")."""
    if word in words:
        return True
    if len(word) >= 4 and any(w.startswith(word) for w in words):
        return True
    if len(word) < 6:
        return False
    slips = 1 if len(word) < 8 else 2
    return any(
        abs(len(w) - len(word)) <= slips and Levenshtein.distance(word, w) <= slips for w in words
    )


def coverage_gap(u: Understanding, passages: Sequence[Passage], sources: Sources) -> str | None:
    """Why the sources do not cover the question, or None.

    A question is covered when it names a condition or concept the corpus knows, or when the
    title or headings of a retrieved source name most of its subject words. A guideline or
    review may also cover it in its prose. Text that only shares the topic's general words (a
    gout question against an opioid guideline) does not count. A question asked of one body's
    documents ("according to X", "does X recommend") is covered only by X's documents."""
    profile = sources.profile
    cited = u.bodies
    bodies = ", ".join(sorted(profile.short_name(org) for org in cited))
    if cited:
        # Asked of one body's documents ("according to X"): only its documents can cover it,
        # and the words that name it are not the subject.
        passages = [p for p in passages if p.chunk.document.organization in cited]
        if not passages:
            return f"The indexed sources hold no document from {bodies} on this question."
    elif u.absent_bodies:
        return f"The indexed sources hold no document from {', '.join(u.absent_bodies)}."
    elif u.conditions or names_known_concept(u, sources):
        return None
    naming = {w for names in cited.values() for name in names for w in content_words(name)}
    readings = [
        r for r in ([w for w in r if w not in naming] for r in subject_words(u, profile)) if r
    ]
    if not readings:
        return None
    best = max((on_subject(p, readings, profile) for p in passages), default=0.0)
    if best >= ABOUT_SHARE or _names_title(u, passages[:TITLE_RANKS], profile):
        return None
    subject = readings[0]
    missing = [
        w
        for w in subject
        if not any(
            word_found(w, profile.about.get(p.chunk.document.id, frozenset())) for p in passages
        )
    ]
    named = " ".join(missing or subject)
    where = f"The indexed documents from {bodies}" if cited else "The indexed sources"
    if u.documents:
        titles = "; ".join(
            profile.documents[d].title for d in u.documents if d in profile.documents
        )
        where = f"The source asked about ({titles})"
    return f"{where} do not cover this question's subject ({named})."


#: how many of the best passages' documents a question may name by their whole title
TITLE_RANKS = 1


def _names_title(u: Understanding, passages: Sequence[Passage], profile: CorpusProfile) -> bool:
    """The question names the whole title of a best-retrieved source ("do migraines go away
    with age" of a page titled "Migraine"; a patient group's words in the title, as in
    "Childhood ...", need not be named), or one whole subject of a title that joins several
    ("diverticulitis" of "Diverticulosis and Diverticulitis"): it is about that source's
    subject, whatever else its words say."""
    asked = set(content_words(u.asking))
    if _SUBTYPE.search(u.asking):
        return False  # "X 2, renal", "X type B": a subtype, which a page on X need not cover
    for passage in passages:
        name = passage.chunk.document.title
        group = set(content_words(" ".join(profile.population_words(name))))
        # A research article's title states a finding, whose parts name no subject of it.
        research = passage.chunk.document.doc_type is DocType.research
        for part in [name] if research else _TITLE_PARTS.split(name):
            title = [w for w in content_words(part) if w not in _SUBJECT_STOP and w not in group]
            if title and len(title) <= 4 and all(word_found(w, asked) for w in title):
                return True
    return False


# Where a topic's title joins subjects: "X and Y", "X & Y" (a comma inverts one name more
# often than it joins two: "Lymphoma, Non-Hodgkin").
_TITLE_PARTS = re.compile(r"\s+(?:and|&)\s+", re.I)


_SUBTYPE = re.compile(
    r"(?i)\b(?:type|subtype|group|class)\s+\w{1,3}\b"
    r"|\b[a-z]{3,}\s+(?:\d{1,2}[a-z]?|[ivx]{1,4})\b"
    r"(?!\s*(?:%|mg|years?|months?|weeks?|days?|hours?))"
)


def on_subject(passage: Passage, readings: list[list[str]], profile: CorpusProfile) -> float:
    """The share of the question's subject words (weighted by how rarely headings use them)
    that the passage's source is about, under the best reading of the question."""
    about = _about(passage, profile)
    best = 0.0
    for subject in readings:
        if any(c in subject and not word_found(c, about) for c in _CLASS_WORDS):
            continue  # a class of conditions asked about, and this source is on one member
        weights = {w: profile.heading_weight(w) for w in subject}
        found = sum(weights[w] for w in subject if word_found(w, about))
        best = max(best, found / sum(weights.values()))
    return best


def _about(passage: Passage, profile: CorpusProfile) -> set[str]:
    """The words a retrieved source is about: its title and headings; a recommendation's
    population and option; a guideline's or review's prose too."""
    doc = passage.chunk.document
    about = set(profile.about.get(doc.id, frozenset()))
    about.update(content_words(doc.title))
    about.update(w for h in passage.chunk.section_path for w in content_words(h))
    if passage.chunk.recommendation is not None:
        rec = passage.chunk.recommendation
        about.update(content_words(f"{rec.population} {rec.intervention}"))
    if doc.doc_type is not DocType.patient_info:
        # Guidelines and reviews cover subjects in their prose, not only in headings.
        about.update(content_words(passage.chunk.text))
    return about


def names_known_concept(u: Understanding, sources: Sources) -> bool:
    """A lexicon concept the question names, whose name the index's text uses."""
    if u.normalized is None:
        return False
    lexical = sources.index.lexical()
    for match in u.normalized.matches:
        if match.concept_type in {"population"}:
            continue
        if lexical.has_term(match.canonical) or lexical.has_term(match.span):
            return True
    return False
