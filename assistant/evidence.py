"""Step 3 of an answer: choose the evidence it may say anything from.

From the retrieved passages: whether the sources cover the question at all, the recommendations
that bear on it (the newest current guideline first, special patient groups apart), guideline
text on the question's own subject, the section of a source page that answers this kind of
question ("What causes X?"), research sentences, and older sources that disagree with the newest
guideline. Nothing here writes a sentence; `assistant.compose` does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from rapidfuzz.distance import Levenshtein

from assistant.context import Sources
from assistant.intent import (
    GENERIC_WORDS,
    KIND_WORDS,
    TREATMENT_FOCUS,
    TREATMENT_OUTCOME_STEMS,
    Ask,
    Intent,
    Kind,
    ask_bonus,
    focus_matches,
    intervention_key,
    is_process_text,
    kind_of,
    kinds_in,
    on_topic,
    subject_bonus,
)
from assistant.lexicon import fold
from assistant.profile import CorpusProfile, content_words
from assistant.prompts import NO_POPULATION_NOTE
from assistant.retrieve import RetrievalFilter
from assistant.types import NormalizationNote
from assistant.understand import Understanding
from ingest.chunking import split_sentences
from ingest.settings import AnswerSettings
from ingest.types import (
    Chunk,
    Direction,
    DocStatus,
    DocType,
    Passage,
    Recommendation,
    RecommendationKind,
)


@dataclass
class RecItem:
    """A recommendation block as retrieved: the block and the passage (rank, scores) it came in."""

    passage: Passage
    rec: Recommendation

    @property
    def chunk(self) -> Chunk:
        return self.passage.chunk

    @property
    def key(self) -> str:
        return intervention_key(self.rec.intervention)

    @property
    def year(self) -> int:
        return self.chunk.document.year or 0


@dataclass
class GuidelineFindings:
    """Recommendations chosen for the answer, before they become sentences."""

    primary_document: str | None = None
    main: list[RecItem] = field(default_factory=list)
    special: dict[str, list[RecItem]] = field(default_factory=dict)  # patient-group key -> blocks
    others: list[RecItem] = field(default_factory=list)  # other current guidelines, new ground only
    # Only when no current guideline speaks to the asked intervention: what a superseded one said.
    superseded: list[RecItem] = field(default_factory=list)
    all_candidates: list[RecItem] = field(default_factory=list)


def sort_key(item: RecItem) -> tuple:
    """Strongest first, then most certain, then retrieval order."""
    return (-item.rec.strength_rank, -item.rec.certainty_rank, item.passage.rank)


def _condition_filter(items: list[RecItem], question: str, profile: CorpusProfile) -> list[RecItem]:
    """Recommendations for the condition asked about (or the corpus's main one), not for
    another condition the same guideline covers."""
    asked = profile.asked_conditions(question)
    return [
        item
        for item in items
        if (subject := profile.subject_condition(item.rec.population)) is None or subject in asked
    ]


def select_recommendations(
    rec_passages: Sequence[Passage],
    intent: Intent,
    question: str,
    intervention_terms: set[str],
    settings: AnswerSettings,
    profile: CorpusProfile,
    document_blocks: Callable[[str], list[Chunk]] | None = None,
) -> GuidelineFindings:
    """Pick the recommendations that bear on the question.

    The primary guideline is the newest current guideline among the relevant blocks; with
    `document_blocks`, all of its blocks are considered (a broad question such as "management
    of C" deserves the complete set, not only the blocks that happened to rank high).
    """
    items = [
        RecItem(p, p.chunk.recommendation)
        for p in rec_passages
        if p.chunk.recommendation is not None
        and (p.dense_score is None or p.dense_score >= settings.rec_floor or p.lexical_rank)
    ]
    if document_blocks is not None:
        items = _complete_primary(items, rec_passages, intent, question, profile, document_blocks)
    findings = GuidelineFindings(all_candidates=list(items))
    items = _condition_filter(items, question, profile)
    if intervention_terms:
        items = [i for i in items if _matches_intervention(i, intervention_terms)]
    elif intent.ask not in (Ask.management, Ask.dose) and (
        intent.focus or intent.ask is not Ask.general
    ):
        # "What are the diagnostic criteria?" or "Is C inherited?" is not answered by the list
        # of drugs: only blocks that speak to the question's subject stay. A general question
        # with no subject of its own ("Is Restonil effective?", once the unknown name is set
        # aside) keeps them all.
        subject = intent.focus - TREATMENT_OUTCOME_STEMS
        items = [i for i in items if _matches_focus(i, subject)]

    current = [
        i
        for i in items
        if i.chunk.document.status is DocStatus.current
        and i.chunk.document.doc_type is DocType.guideline
    ]
    if intervention_terms and not any(
        i.rec.kind is not RecommendationKind.evidence_conclusion for i in current
    ):
        # "Is pergolide used?": no current guideline recommends for or against it, but an older
        # one advised against it. Shown as superseded guidance, never as a current one.
        findings.superseded = sorted(
            (
                i
                for i in items
                if i.chunk.document.status is DocStatus.superseded
                and i.chunk.document.doc_type is DocType.guideline
            ),
            key=lambda i: (-i.year, i.passage.rank),
        )[:3]
    if not current:
        return findings

    # The primary guideline: the newest current guideline with a relevant recommendation,
    # graded recommendations outranking evidence conclusions.
    def doc_rank(i: RecItem) -> tuple:
        graded = i.rec.kind is not RecommendationKind.evidence_conclusion
        return (graded, i.year, -i.passage.rank)

    if intent.populations:
        # The newest guideline that speaks to the requested population leads.
        for_population = [
            i for i in current if profile.record_groups(i.rec.population) & intent.populations
        ]
        current_for_primary = for_population or current
    else:
        current_for_primary = current
    primary = max(current_for_primary, key=doc_rank).chunk.document.id
    findings.primary_document = primary

    claimed: set[str] = set()
    for item in sorted(current, key=lambda i: (-i.year, i.passage.rank)):
        pops = profile.record_groups(item.rec.population)
        if intent.populations:
            if not pops & intent.populations:
                continue
        elif pops:
            if intent.ask in (Ask.management, Ask.general, Ask.dose):
                bucket = findings.special.setdefault(_first_group(pops, profile), [])
                if item.chunk.document.id == primary:
                    bucket.append(item)
            continue
        if item.chunk.document.id == primary:
            findings.main.append(item)
            claimed.add(item.key)
        elif item.key not in claimed and (
            item.rec.kind is not RecommendationKind.evidence_conclusion
            # A dose question is answered by the trial evidence that states the dose.
            or (intent.ask is Ask.dose and bool(_STATED_DOSE.search(item.rec.statement)))
        ):
            findings.others.append(item)
            claimed.add(item.key)
    findings.main.sort(key=sort_key)
    findings.others = sorted(
        findings.others, key=lambda i: (not _matches_focus(i, intent.focus), i.passage.rank)
    )[:4]
    findings.others.sort(key=sort_key)
    for pop, bucket in findings.special.items():
        bucket.sort(key=sort_key)
        findings.special[pop] = bucket[: settings.max_per_special_population]
    return findings


def _first_group(groups: set[str], profile: CorpusProfile) -> str:
    order = profile.ordered_groups()
    return min(groups, key=lambda g: (order.index(g) if g in order else len(order), g))


def _complete_primary(
    items: list[RecItem],
    rec_passages: Sequence[Passage],
    intent: Intent,
    question: str,
    profile: CorpusProfile,
    document_blocks: Callable[[str], list[Chunk]],
) -> list[RecItem]:
    current = [
        i
        for i in _condition_filter(items, question, profile)
        if i.chunk.document.status is DocStatus.current
        and i.chunk.document.doc_type is DocType.guideline
        and i.rec.kind is not RecommendationKind.evidence_conclusion
    ]
    if not current:
        return items
    if intent.populations:
        matching = [
            i for i in current if profile.record_groups(i.rec.population) & intent.populations
        ]
        current = matching or current
    primary = max(current, key=lambda i: (i.year, -i.passage.rank)).chunk.document.id
    have = {i.chunk.id for i in items}
    next_rank = max((p.rank for p in rec_passages), default=0) + 1
    for chunk in document_blocks(primary):
        if chunk.recommendation is None or chunk.id in have:
            continue
        passage = Passage(chunk=chunk, rank=next_rank, score=0.0)
        next_rank += 1
        items.append(RecItem(passage, chunk.recommendation))
    return items


_STATED_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g)\b(?!/)", re.I)


def focus_hits(item: RecItem, focus: set[str]) -> int:
    """How many of the question's subject stems the block speaks to: its own words and its
    section heading ("Prevention of relapse"), not its grading remarks ("not confirmed"). The
    words of its guideline's title name the guideline's topic, which every block shares, so
    they tell no block apart."""
    rec = item.rec
    title = item.chunk.document.title.lower()
    own = {f for f in focus if not re.search(rf"\b{re.escape(f)}", title)}
    text = f"{item.chunk.heading} {rec.intervention} {rec.population} {rec.statement}"
    return focus_matches(text, own) if own else 0


def _matches_focus(item: RecItem, focus: set[str]) -> bool:
    # A guideline on the subject itself ("prevention of relapse") keeps its blocks: here the
    # title's words count.
    rec = item.rec
    text = f"{item.chunk.heading} {rec.intervention} {rec.population} {rec.statement}"
    return bool(focus) and focus_matches(text, focus) > 0


def _matches_intervention(item: RecItem, terms: set[str]) -> bool:
    text = f"{item.rec.intervention} {item.rec.statement}".lower()
    return any(re.search(rf"\b{re.escape(t.lower())}", text) for t in terms)


@dataclass(frozen=True)
class ResearchSentence:
    text: str
    chunk: Chunk
    relevance: float


def mmr_select(
    query_vec: np.ndarray,
    candidates: Sequence[tuple[str, Chunk]],
    vectors: np.ndarray,
    k: int,
    lam: float,
    floor: float,
    bonus: Sequence[float] | None = None,
    spread: float = 0.15,
) -> list[ResearchSentence]:
    """Maximal marginal relevance: relevant to the query, unlike what was already picked.

    Candidates more than `spread` below the best one are not considered."""
    if not candidates:
        return []
    relevance = vectors @ query_vec
    if bonus is not None:
        relevance = relevance + np.asarray(bonus, dtype=relevance.dtype)
    chosen: list[int] = []
    # Absolute floor, and not far below the best sentence: keeps filler out of thin pools.
    cutoff = max(floor, float(relevance.max()) - spread)
    remaining = [i for i in range(len(candidates)) if relevance[i] >= cutoff]
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = (vectors[remaining] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining))
        scores = lam * relevance[remaining] - (1 - lam) * redundancy
        best = remaining[int(np.argmax(scores))]
        chosen.append(best)
        remaining.remove(best)
    return [
        ResearchSentence(candidates[i][0], candidates[i][1], float(relevance[i])) for i in chosen
    ]


_POSITIVE_CUE = re.compile(
    r"\b(first[- ]line|first[- ]choice|initial (?:therapy|treatment)|treatment of choice|"
    r"mainstay|standard (?:therapy|treatment)|recommended|efficacious|effective|approved)\b",
    re.I,
)
_NEGATIVE_CUE = re.compile(r"\b(against|not recommended|avoid|no longer|suggests against)\b", re.I)


@dataclass
class Conflict:
    newer: list[RecItem]
    older_recs: list[RecItem] = field(default_factory=list)
    older_sentences: list[tuple[str, Chunk]] = field(default_factory=list)


def find_conflicts(
    findings: GuidelineFindings,
    research_candidates: Sequence[tuple[str, Chunk]],
    profile: CorpusProfile,
) -> Conflict | None:
    """Older or superseded guidance in favour of what the newest guideline advises against."""
    against = [i for i in findings.main if i.rec.direction is Direction.against]
    for bucket in findings.special.values():
        against.extend(i for i in bucket if i.rec.direction is Direction.against)
    if not against or not findings.primary_document:
        return None
    primary_year = max(i.year for i in against)
    keys = {i.key for i in against}
    # Only like with like: an older pregnancy recommendation does not contradict an adult one.
    class_terms = profile.class_terms
    populations_of: dict[str, set[frozenset[str]]] = defaultdict(set)
    for item in against:
        populations_of[item.key].add(frozenset(profile.record_groups(item.rec.population)))
    names = set(keys)
    for key in keys:
        names |= class_terms.get(key, set())
    conflict = Conflict(newer=sorted(against, key=sort_key))
    for item in findings.all_candidates:
        doc = item.chunk.document
        if doc.id == findings.primary_document or item.rec.direction is not Direction.for_:
            continue
        older = doc.status is DocStatus.superseded or (doc.year or 0) < primary_year
        same_population = (
            frozenset(profile.record_groups(item.rec.population)) in populations_of[item.key]
        )
        if older and item.key in keys and same_population:
            conflict.older_recs.append(item)
    for text, chunk in research_candidates:
        doc = chunk.document
        if (doc.year or 0) >= primary_year and doc.status is DocStatus.current:
            continue
        lowered = text.lower()
        if (
            any(re.search(rf"\b{re.escape(n)}", lowered) for n in names)
            and _POSITIVE_CUE.search(text)
            and not _NEGATIVE_CUE.search(text)
        ):
            conflict.older_sentences.append((text, chunk))
    if not conflict.older_recs and not conflict.older_sentences:
        return None
    return conflict


# -- quotes -----------------------------------------------------------------------------------


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


_ITEM = re.compile(r"^\s*(?:[-*+•▪‣◦]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
_NAVIGATION = re.compile(
    r"^(?:key points?|back to top|top of page|see also|learn more|related (?:topics|links)|"
    r"click here|for more information|updated information and services|references?|"
    r"this (?:page|section) (?:was|is)|last (?:updated|reviewed)|copyright|©|doi:|https?://)",
    re.I,
)
_ENDS_SENTENCE = re.compile(r"[.!?)\"'”’]\s*$")


def is_heading_like(text: str) -> bool:
    """A heading, a question heading ("What causes X?"), navigation or boilerplate: never cited
    as content."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#") or stripped.endswith("?"):
        return True
    if _NAVIGATION.match(stripped):
        return True
    words = stripped.split()
    return len(words) < 4 and not _ENDS_SENTENCE.search(stripped)


def quote_units(chunks: Sequence[Chunk]) -> list[Quote]:
    """The sentences of consecutive chunks in reading order, each once (chunks overlap), with a
    list kept together with the sentence that leads into it."""
    sentences: list[tuple[str, Chunk]] = []
    seen: set[str] = set()
    for chunk in chunks:
        for sentence in split_sentences(chunk.text):
            key = " ".join(sentence.split()).lower()
            if key not in seen:
                seen.add(key)
                sentences.append((sentence, chunk))
    units: list[Quote] = []
    i = 0
    while i < len(sentences):
        text, chunk = sentences[i]
        if _ITEM.match(text):
            units.append(Quote(_ITEM.sub("", text).strip(), chunk))
            i += 1
            continue
        following = i + 1 < len(sentences) and _ITEM.match(sentences[i + 1][0])
        # A sentence a list follows leads into it ("... may include any of the following.").
        if following and not text.rstrip().endswith("?"):
            items: list[str] = []
            j = i + 1
            while j < len(sentences) and _ITEM.match(sentences[j][0]):
                items.append(_ITEM.sub("", sentences[j][0]).strip())
                j += 1
            units.append(Quote(text.strip(), chunk, tuple(items)))
            i = j
            continue
        # A lead-in whose list is not there ("... include:") would end mid-list: left out.
        if not is_heading_like(text) and not text.rstrip().endswith(":"):
            units.append(Quote(text.strip(), chunk))
        i += 1
    out: list[Quote] = []
    seen_units: set[str] = set()
    for unit in units:
        key = " ".join(unit.full_text.lower().split()).rstrip(".")
        # A bare sub-heading ("Genetics.") is no content; nor is a unit said twice.
        if key in seen_units or (not unit.items and len(unit.text.split()) < 4):
            continue
        seen_units.add(key)
        out.append(unit)
    return out


# -- coverage ---------------------------------------------------------------------------------

_SUBJECT_STOP = GENERIC_WORDS | frozenset(
    {"cause", "caus", "risk", "sign", "symptom", "diagnos", "test", "outlook", "prognosi"}
    | {"suspected", "pattern", "workup", "overview", "adult", "child", "people", "person"}
    # How a condition runs, not which condition it is ("COPD flares").
    | {"flare", "exacerbation", "acute", "severe", "mild", "moderate", "early", "recurrent"}
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


def _word_found(word: str, words: frozenset[str] | set[str]) -> bool:
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
    gout question against an opioid guideline) does not count."""
    profile = sources.profile
    if u.conditions or _names_known_concept(u, sources):
        return None
    readings = subject_words(u, profile)
    if not readings:
        return None
    best = max((on_subject(p, readings, profile) for p in passages), default=0.0)
    if best >= ABOUT_SHARE:
        return None
    subject = readings[0]
    missing = [
        w
        for w in subject
        if not any(
            _word_found(w, profile.about.get(p.chunk.document.id, frozenset())) for p in passages
        )
    ]
    named = " ".join(missing or subject)
    return f"The indexed sources do not cover this question's subject ({named})."


def on_subject(passage: Passage, readings: list[list[str]], profile: CorpusProfile) -> float:
    """The share of the question's subject words (weighted by how rarely headings use them)
    that the passage's source is about, under the best reading of the question."""
    about = _about(passage, profile)
    best = 0.0
    for subject in readings:
        if any(c in subject and not _word_found(c, about) for c in _CLASS_WORDS):
            continue  # a class of conditions asked about, and this source is on one member
        weights = {w: profile.heading_weight(w) for w in subject}
        found = sum(weights[w] for w in subject if _word_found(w, about))
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


def _names_known_concept(u: Understanding, sources: Sources) -> bool:
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


# -- answering section ------------------------------------------------------------------------


def heading_kinds(heading: str) -> set[Kind]:
    """The kinds of question a heading answers: a question heading answers its own kind
    ("What are the treatments for X?" is not a definition); a plain heading may name several
    ("Causes and risk factors")."""
    if heading.rstrip().endswith("?"):
        return {kind_of(heading)}
    return kinds_in(heading)


def _section_of_kind(passage: Passage, kind: Kind, sources: Sources) -> Passage | None:
    """The first chunk of the section of the same document that answers this kind."""
    for chunk in sources.index.document_chunks(passage.chunk.document.id):
        heading = chunk.section_path[-1] if chunk.section_path else ""
        if chunk.recommendation is None and kind in heading_kinds(heading):
            return Passage(chunk=chunk, rank=passage.rank, score=passage.score)
    return None


@dataclass
class AnsweringSection:
    """The section of a source page that answers this kind of question, quoted in order, and
    the same section of other pages on the subject, briefly."""

    units: list[Quote]
    passage: Passage
    matched_kind: bool
    others: list[list[Quote]] = field(default_factory=list)


def _section_units(passage: Passage, sources: Sources) -> list[Quote]:
    chunk = passage.chunk
    section = [
        c
        for c in sources.index.document_chunks(chunk.document.id)
        if c.section_path == chunk.section_path and c.recommendation is None
    ] or [chunk]
    return quote_units(section)


def _capped(units: list[Quote], limit_words: int) -> list[Quote]:
    kept: list[Quote] = []
    words = 0
    for unit in units:
        kept.append(unit)
        words += len(unit.full_text.split())
        if words >= limit_words:
            break
    return kept


def answering_section(
    u: Understanding,
    passages: Sequence[Passage],
    sources: Sources,
    limit_words: int = 320,
    other_pages: int = 2,
    other_units: int = 3,
) -> AnsweringSection | None:
    """The best-ranked section of a research or patient page on the question's subject whose
    heading speaks to the question's kind ("What causes X?" for a causes question): all of that
    section, in the source's order, up to about `limit_words`. Pages on the same subject with
    the same kind of section add their first units, so the reader sees each source's answer."""
    profile = sources.profile
    readings = subject_words(u, profile)
    scored: list[tuple[float, Passage, bool]] = []
    for passage in passages[:10]:
        chunk = passage.chunk
        if chunk.recommendation is not None or chunk.document.doc_type is DocType.guideline:
            continue
        heading = chunk.section_path[-1] if chunk.section_path else ""
        kinds = heading_kinds(heading)
        matched = u.kind is not Kind.general and u.kind in kinds
        about = set(content_words(chunk.document.title)) | set(content_words(heading))
        on_subject = max(
            (sum(1 for w in words if _word_found(w, about)) / len(words) for words in readings),
            default=1.0,
        )
        if on_subject < ABOUT_SHARE:
            continue  # another condition's "What causes ...?" does not answer this one
        score = 1.0 / (passage.rank + 1) + (0.6 if matched else 0.0) + on_subject
        if kinds and u.kind is not Kind.general and not matched:
            score -= 0.3
        scored.append((score, passage, matched))
    if not scored:
        return None
    scored.sort(key=lambda t: -t[0])
    if not scored[0][2] and u.kind is not Kind.general:
        # The page is on the subject but retrieval surfaced another of its sections: its own
        # section for this kind of question ("What causes X?") answers it.
        inner = _section_of_kind(scored[0][1], u.kind, sources)
        if inner is not None:
            scored.insert(0, (scored[0][0] + 1.0, inner, True))
    _, passage, matched = scored[0]
    units = _capped(_section_units(passage, sources), limit_words)
    if not units:
        return None
    found = AnsweringSection(units=units, passage=passage, matched_kind=matched)
    seen = {passage.chunk.document.id}
    for _, other, other_matched in scored[1:]:
        doc_id = other.chunk.document.id
        if doc_id in seen or other_matched != matched or len(found.others) >= other_pages:
            continue
        seen.add(doc_id)
        extra = _section_units(other, sources)[:other_units]
        if extra:
            found.others.append(extra)
    return found


# -- the step ---------------------------------------------------------------------------------


@dataclass
class Evidence:
    """Everything the composer may use, each piece tied to the passage it came from."""

    passages: list[Passage]
    best_similarity: float
    refusal: str | None = None
    intent: Intent = field(default_factory=Intent)
    rec_passages: list[Passage] = field(default_factory=list)
    findings: GuidelineFindings = field(default_factory=GuidelineFindings)
    key_points: list[Quote] = field(default_factory=list)
    section: AnsweringSection | None = None
    research: list[Quote] = field(default_factory=list)
    research_pool: list[tuple[str, Chunk]] = field(default_factory=list)
    conflict: Conflict | None = None
    considered: list[Passage] = field(default_factory=list)
    notes: list[NormalizationNote] = field(default_factory=list)


def retrieve_passages(u: Understanding, sources: Sources) -> list[Passage]:
    """Step 2: hybrid retrieval for the standalone query (with the lexicon's expansions)."""
    return sources.retriever.retrieve(u.standalone, lexical_query=u.lexical_query)


def outside_terms(u: Understanding) -> list[str]:
    """Medical-looking terms the lexicon does not know, in a question that names nothing it does
    know: a question about an unknown drug alone is outside the sources, however similar its
    words."""
    normalized = u.normalized
    if normalized is None or not normalized.unrecognized or normalized.matches:
        return []
    return list(normalized.unrecognized)


def select_evidence(u: Understanding, passages: list[Passage], sources: Sources) -> Evidence:
    """Step 3: decide whether the sources cover the question, then gather what answers it."""
    options = sources.options
    best = max((p.dense_score or 0.0 for p in passages), default=0.0)
    evidence = Evidence(passages=passages, best_similarity=best, intent=u.intent)
    if best < options.abstain_floor:
        evidence.refusal = (
            f"The indexed sources do not address this question (best passage similarity "
            f"{best:.2f}, below the {options.abstain_floor:.2f} relevance floor)."
        )
        return evidence
    outside = outside_terms(u)
    if outside:
        evidence.refusal = (
            f"The question is about {', '.join(outside)}, which the indexed sources do not cover."
        )
        return evidence
    gap = coverage_gap(u, passages, sources)
    if gap:
        evidence.refusal = gap
        return evidence

    intent = u.intent
    evidence.rec_passages = sources.retriever.retrieve(
        u.standalone,
        k=options.rec_candidates,
        filters=RetrievalFilter(recommendations_only=True),
        lexical_query=u.lexical_query,
        diversify=False,
    )
    readings = subject_words(u, sources.profile)
    if not u.conditions and not _names_known_concept(u, sources) and readings:
        # Recommendations only from guidelines about the question's subject: a coeliac
        # question is not answered by the newest guideline's recommendations on another disease.
        on_topic_docs = {
            p.chunk.document.id
            for p in [*passages, *evidence.rec_passages]
            if on_subject(p, readings, sources.profile) >= ABOUT_SHARE
        }
        evidence.rec_passages = [
            p for p in evidence.rec_passages if p.chunk.document.id in on_topic_docs
        ]

    def select(intent: Intent) -> GuidelineFindings:
        return select_recommendations(
            evidence.rec_passages,
            intent,
            u.standalone,
            u.intervention_terms,
            options,
            sources.profile,
            document_blocks=sources.index.document_chunks,
        )

    findings = select(intent)
    if intent.populations and not findings.main:
        evidence.notes.append(NormalizationNote(span="", message=NO_POPULATION_NOTE))
        intent = replace(intent, populations=set())
        findings = select(intent)
    evidence.findings = findings
    evidence.intent = intent

    research_pool, research_passages = _research_candidates(u, sources)
    evidence.research_pool = research_pool
    focus = intent.focus
    if not (focus or findings.main or findings.others or findings.special):
        focus = set(TREATMENT_FOCUS) if intent.ask is Ask.management else set()
    evidence.key_points, key_passages = _key_points(u, replace(intent, focus=focus), sources)
    answers_by_recommendation = bool(findings.main) and intent.ask in (Ask.management, Ask.dose)
    if not answers_by_recommendation and not evidence.key_points:
        evidence.section = answering_section(u, passages, sources)
    if evidence.section is None or not evidence.section.matched_kind:
        evidence.research = _research_sentences(u, research_pool, intent, sources)
        if evidence.section is not None and evidence.research:
            evidence.section = None
    older_pool, older_passages = _conflict_candidates(findings, sources)
    evidence.conflict = find_conflicts(
        findings, research_pool + _guideline_prose(passages) + older_pool, sources.profile
    )
    evidence.considered = [
        *evidence.rec_passages,
        *(i.passage for i in findings.all_candidates),
        *research_passages,
        *older_passages,
        *key_passages,
    ]
    return evidence


def _research_candidates(
    u: Understanding, sources: Sources
) -> tuple[list[tuple[str, Chunk]], list[Passage]]:
    research = sources.retriever.retrieve(
        u.standalone,
        k=sources.options.research_passages,
        filters=RetrievalFilter(doc_types=frozenset({DocType.research, DocType.patient_info})),
        lexical_query=u.lexical_query,
    )
    out: dict[str, tuple[str, Chunk]] = {}
    for passage in research:
        for sentence in split_sentences(passage.chunk.text):
            # Overlapping chunks repeat sentences: keep the first (best-ranked) copy.
            if len(sentence.split()) >= 6 and not is_heading_like(sentence) and sentence not in out:
                out[sentence] = (sentence, passage.chunk)
    return list(out.values()), research


def _key_points(
    u: Understanding, intent: Intent, sources: Sources
) -> tuple[list[Quote], list[Passage]]:
    """Sentences of current guideline text (not the graded blocks) on the question's own
    subject: a threshold, diagnostic criteria, a definition.

    Quoted as written, so the verifier checks them by containment. Only for a question with
    a subject beyond the condition and the kind of ask: a broad management question is
    answered by the recommendations."""
    options = sources.options
    profile = sources.profile
    if not intent.focus or options.key_points == 0:
        return [], []
    query = u.standalone
    passages = sources.retriever.retrieve(
        query,
        k=options.key_point_passages,
        filters=RetrievalFilter(
            doc_types=frozenset({DocType.guideline}),
            statuses=frozenset({DocStatus.current}),
            prose_only=True,
        ),
        lexical_query=u.lexical_query,
    )
    asked_conditions = profile.asked_conditions(query)

    def fits(sentence: str) -> bool:
        # The question's condition and patient group, not another's: a question on one
        # condition does not get another's criteria, nor a general one the pregnancy text.
        named = profile.conditions_in(sentence)
        groups = profile.groups_in(sentence)
        return (
            len(sentence.split()) >= 6
            and not is_heading_like(sentence)
            and not is_process_text(sentence)
            and focus_matches(sentence, intent.focus) > 0
            and (not named or not asked_conditions or bool(named & asked_conditions))
            and (
                bool(groups & intent.populations)
                if intent.populations
                # Text for a special group answers a general question only when it speaks of
                # the default group too ("above 15 per hour in adults or above 5 in children").
                else not groups or profile.speaks_to_default(sentence, groups)
            )
        )

    pool: dict[str, tuple[str, Chunk]] = {}
    order: dict[str, tuple[int, int, int]] = {}
    doc_rank: dict[str, int] = {}
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        doc_rank.setdefault(chunk.document.id, rank)
        for n, sentence in enumerate(split_sentences(chunk.text)):
            if not fits(sentence):
                continue
            if sentence not in pool:
                pool[sentence] = (sentence, chunk)
            # Reading order: the first place the sentence appears in its document
            # (chunks overlap, so one sentence can sit in two).
            key = (doc_rank[chunk.document.id], chunk.position, n)
            order[sentence] = min(order.get(sentence, key), key)
    if not pool:
        return [], passages
    candidates = list(pool.values())
    texts = [s for s, _ in candidates]
    vectors = sources.embedder.embed(texts)
    query_vec = sources.embedder.embed_query(query)
    # A section headed with the asked condition is on point even when its sentences share few
    # words with the question.
    bonus = [
        b + (0.1 if asked_conditions & profile.conditions_in(pool[t][1].heading) else 0.0)
        for t, b in zip(texts, subject_bonus(texts, intent, query), strict=True)
    ]
    # Criteria and definitions come as lists: a diagnosis question gets room for them.
    k = options.key_points * (2 if intent.ask is Ask.diagnosis else 1)
    picked = mmr_select(
        query_vec,
        candidates,
        vectors,
        k=k,
        # Guidelines restate a threshold in several places; relevance outweighs novelty.
        lam=max(options.mmr_lambda, 0.9),
        floor=options.research_floor,
        bonus=bonus,
        spread=0.3,
    )
    if not picked:
        return [], passages
    # The best sentence leads (it may become the summary); the rest keep the source's order,
    # so "criterion 1 ... criterion 5" reads as written.
    lead, rest = picked[0], sorted(picked[1:], key=lambda p: order[p.text])
    return [Quote(p.text, p.chunk, relevance=p.relevance) for p in [lead, *rest]], passages


def _research_sentences(
    u: Understanding,
    pool: list[tuple[str, Chunk]],
    intent: Intent,
    sources: Sources,
) -> list[Quote]:
    profile = sources.profile
    query = u.standalone
    asked = profile.asked_conditions(query) if profile.conditions else set()
    pool = [
        (s, c)
        for s, c in pool
        if on_topic(s, intent, profile)
        and (not asked or not profile.conditions_in(s) or profile.conditions_in(s) & asked)
    ]
    if not pool:
        return []
    vectors = sources.embedder.embed([s for s, _ in pool])
    query_vec = sources.embedder.embed_query(query)
    # Prefer sentences that speak to the kind of question (treatment words for a
    # management question): a small, explicit nudge on top of cosine relevance.
    texts = [s for s, _ in pool]
    bonus = ask_bonus(texts, intent.ask)
    if intent.focus:
        bonus = [a + b for a, b in zip(bonus, subject_bonus(texts, intent, query), strict=True)]
    picked = mmr_select(
        query_vec,
        pool,
        vectors,
        k=sources.options.research_sentences,
        lam=sources.options.mmr_lambda,
        floor=sources.options.research_floor,
        bonus=bonus,
    )
    return [Quote(p.text, p.chunk, relevance=p.relevance) for p in picked]


def _conflict_candidates(
    findings: GuidelineFindings, sources: Sources
) -> tuple[list[tuple[str, Chunk]], list[Passage]]:
    """Sentences of reviews and older guidelines about what the newest guideline advises
    against, found by a query of their names (and classes) with 'first-line'."""
    against = [i for i in findings.main if i.rec.direction is Direction.against]
    if not against:
        return [], []
    classes = sources.profile.class_terms
    names: list[str] = []
    for item in against:
        names.append(item.rec.intervention)
        names.extend(sorted(classes.get(item.key, set()))[:2])
    query = " ".join(dict.fromkeys(names)) + " first-line treatment"
    passages = sources.retriever.retrieve(query, k=6, diversify=True)
    out: list[tuple[str, Chunk]] = []
    for passage in passages:
        chunk = passage.chunk
        if chunk.recommendation is None:
            out.extend((s, chunk) for s in split_sentences(chunk.text) if len(s.split()) >= 6)
    return out, passages


def _guideline_prose(passages: list[Passage]) -> list[tuple[str, Chunk]]:
    """Sentences of guideline prose (not blocks) that retrieval surfaced, for conflict checks."""
    out: list[tuple[str, Chunk]] = []
    for passage in passages:
        chunk = passage.chunk
        if chunk.document.doc_type is DocType.guideline and chunk.recommendation is None:
            out.extend((s, chunk) for s in split_sentences(chunk.text) if len(s.split()) >= 6)
    return out
