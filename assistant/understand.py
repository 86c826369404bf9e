"""Step 1 of an answer: read the question.

Clean it, map its words to concepts (lexicon and index), read it with the conversation so far,
and say what it asks: which condition and patient group, which drugs, what kind of question.
Both answerers (offline and LLM) start here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from assistant.context import Sources
from assistant.conversation import Session, Topic
from assistant.intent import Intent, Kind, ask_of, focus_terms, kind_of, question_core, stem
from assistant.profile import content_words
from assistant.prompts import (
    ABBREVIATION_NOTE,
    INJECTION_NOTE,
    READ_AS_SOURCE_NOTE,
    SPELLING_NOTE,
    UNRECOGNIZED_NOTE,
)
from assistant.types import NormalizationNote, NormalizedQuery, Section, Sentence, SentenceKind
from ingest.errors import CliniqError

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b|"
    r"\byou are now\b|\bsystem prompt\b|\bact as\b|\bpretend to\b|\bjailbreak\b",
    re.I | re.S,
)


class QuestionError(CliniqError):
    """The question cannot be answered as given (empty, nothing but symbols)."""


@dataclass(frozen=True)
class CleanQuestion:
    text: str
    notes: tuple[str, ...] = ()


@dataclass
class Understanding:
    """What the question asks, as every later step reads it."""

    clean: CleanQuestion
    normalized: NormalizedQuery | None
    standalone: str
    follow_up: bool
    topic: Topic
    lexical_query: str
    intervention_terms: set[str]
    intent: Intent
    kind: Kind
    #: the corpus's conditions the question names (lexicon concept ids)
    conditions: set[str] = field(default_factory=set)
    notes: list[NormalizationNote] = field(default_factory=list)
    #: the documents a follow-up is asked of ("what did that guideline say ..."); empty: all
    documents: tuple[str, ...] = ()
    #: the indexed organizations asked as the source ("according to X"), each with the names
    #: the question calls it by; empty: any
    bodies: dict[str, set[str]] = field(default_factory=dict)
    #: bodies asked as the source that no indexed document comes from ("does the X recommend")
    absent_bodies: list[str] = field(default_factory=list)

    @property
    def asking(self) -> str:
        """The sentences that ask, without a case history around them."""
        return question_core(self.standalone)


def clean_question(raw: str, max_chars: int = 1000) -> CleanQuestion:
    """Strip control characters, bound the length, and say what was changed."""
    notes: list[str] = []
    text = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in raw or ""
    )
    text = re.sub(r"\s+", " ", text).strip()
    if not text or not re.search(r"\w", text):
        raise QuestionError(
            "the question is empty; ask a clinical question, e.g. "
            '"What is the first-line treatment for <condition> in adults?"'
        )
    if len(text) > max_chars:
        cut = text[:max_chars].rsplit(" ", 1)[0]
        notes.append(
            f"The question was {len(text):,} characters long; only the first {len(cut):,} "
            "were used."
        )
        text = cut
    if _INJECTION.search(text):
        notes.append(INJECTION_NOTE)
    return CleanQuestion(text=text, notes=tuple(notes))


def understand(question: str, session: Session, sources: Sources) -> Understanding:
    """Clean, normalize, read with the conversation, and classify the question."""
    clean = clean_question(question, sources.options.max_question_chars)
    normalized = sources.normalize(clean.text)
    normalized, expanded = _expand_abbreviations(clean.text, normalized, sources)
    normalized, corrected = _correct_spelling(normalized, sources)
    expanded += corrected
    documents = session.referred_documents(clean.text)
    standalone, follow_up = session.standalone(clean.text, normalized, sources.profile)
    topic = session.topic
    expansion, intervention_terms = _expansions(sources, normalized, topic)
    asking = question_core(standalone)
    unplaced = normalized.unrecognized if normalized else []
    names = sources.profile.name_words(asking)
    intent = Intent(
        populations=sources.profile.groups_in(standalone),
        interventions=intervention_terms,
        ask=ask_of(asking),
        # A name nothing could place cannot be the subject of any source sentence.
        focus=focus_terms(asking, names) - {stem(t.lower()) for t in unplaced},
        names=names,
    )
    return Understanding(
        clean=clean,
        normalized=normalized,
        standalone=standalone,
        follow_up=follow_up,
        topic=topic,
        lexical_query=" ".join([standalone, *expansion]),
        intervention_terms=intervention_terms,
        intent=intent,
        kind=kind_of(asking),
        conditions=sources.profile.conditions_in(standalone),
        notes=[*expanded, *question_notes(clean, normalized), *_referred(documents, sources)],
        documents=documents,
        bodies=sources.profile.cited_organizations(standalone),
        absent_bodies=sources.profile.absent_bodies(clean.text),
    )


def _referred(documents: tuple[str, ...], sources: Sources) -> list[NormalizationNote]:
    """Says which source a follow-up was read as asking about."""
    titles = [
        sources.profile.documents[d].title for d in documents if d in sources.profile.documents
    ]
    if not titles:
        return []
    return [NormalizationNote(span="", message=READ_AS_SOURCE_NOTE.format(title="; ".join(titles)))]


_WORD = re.compile(r"[A-Za-z][a-z]{4,}")


def _correct_spelling(
    normalized: NormalizedQuery | None, sources: Sources
) -> tuple[NormalizedQuery | None, list[NormalizationNote]]:
    """A word neither the lexicon nor the indexed text knows, a letter or two away from a word
    of a document title, is read as that word ("diabetis" -> "diabetes")."""
    if normalized is None:
        return None, []
    lexical = sources.index.lexical()
    lexicon = sources.lexicon
    matched = " ".join(m.span for m in normalized.matches).lower()
    rewritten = normalized.rewritten
    notes: list[NormalizationNote] = []
    for word in dict.fromkeys(_WORD.findall(rewritten)):
        lowered = word.lower()
        if lowered in matched or lexical.has_term(word):
            continue
        if lexicon is not None and lexicon.is_known_word(word):
            continue
        correction = sources.profile.correct(word)
        if correction is None or correction == lowered:
            continue
        rewritten = re.sub(rf"\b{re.escape(word)}\b", correction, rewritten)
        notes.append(
            NormalizationNote(
                span=word, message=SPELLING_NOTE.format(word=word, correction=correction)
            )
        )
    if not notes:
        return normalized, []
    update = {
        "rewritten": rewritten,
        "unrecognized": [t for t in normalized.unrecognized if t not in {n.span for n in notes}],
    }
    return normalized.model_copy(update=update), notes


# "HTN", "COPDs", and mixed case with two capitals or more ("AFib", "IgA").
_ABBREVIATION = re.compile(r"\b(?:[A-Z][A-Z0-9]{1,5}s?|[A-Z][a-z]?[A-Z][A-Za-z]{0,3})\b")


def _expand_abbreviations(
    text: str, normalized: NormalizedQuery | None, sources: Sources
) -> tuple[NormalizedQuery | None, list[NormalizationNote]]:
    """Abbreviations no lexicon concept takes ("RA", "HTN") read as the corpus uses them; the
    query gets the long form beside the abbreviation, and the reader a note."""
    if normalized is None:
        normalized = NormalizedQuery(original=text, rewritten=text)
    matched = {m.span for m in normalized.matches}
    rewritten = normalized.rewritten
    notes: list[NormalizationNote] = []
    expanded: set[str] = set()
    for abbreviation in dict.fromkeys(_ABBREVIATION.findall(normalized.rewritten)):
        if abbreviation in matched or any(abbreviation in span for span in matched):
            continue
        readings = sources.profile.readings(abbreviation, sources.index.lexical().has_term)
        if not readings:
            continue
        long_form, how = _likeliest_reading(rewritten, abbreviation, readings, sources)
        if long_form.lower() in rewritten.lower():
            continue
        rewritten = re.sub(
            rf"\b{re.escape(abbreviation)}\b", f"{long_form} ({abbreviation})", rewritten
        )
        expanded.add(abbreviation)
        notes.append(
            NormalizationNote(
                span=abbreviation,
                message=ABBREVIATION_NOTE.format(
                    abbreviation=abbreviation, expansion=long_form, how=how
                ),
            )
        )
    if not expanded:
        return (normalized if sources.lexicon is not None else None), []
    update = {
        "rewritten": rewritten,
        "unrecognized": [t for t in normalized.unrecognized if t not in expanded],
    }
    return normalized.model_copy(update=update), notes


def _likeliest_reading(
    text: str, abbreviation: str, readings: list[tuple[str, str]], sources: Sources
) -> tuple[str, str]:
    """Of several readings, the one under which the question is closest to an indexed passage:
    the question's other words say which is meant ("ADAMTS13 and TTP" is the purpura, though
    an indexed article defines TTP as a transport protein). A question of the abbreviation
    alone keeps the likeliest reading."""
    rest = re.sub(rf"\b{re.escape(abbreviation)}\b", " ", text)
    if len(readings) == 1 or not content_words(rest):
        return readings[0]

    def closeness(reading: tuple[str, str]) -> float:
        query = re.sub(rf"\b{re.escape(abbreviation)}\b", reading[0], text)
        hits = sources.index.query_dense(query, 1)
        return hits[0].score if hits else 0.0

    # The likeliest reading keeps its place unless another is clearly closer; of readings about
    # as close as the closest, the likelier ("CP ... walking": cerebral palsy 0.700 before
    # cleft palate 0.702).
    scores = [closeness(r) for r in readings]
    best = max(scores)
    if best <= scores[0] + _READING_MARGIN:
        return readings[0]
    near = [r for r, score in zip(readings, scores, strict=True) if score >= best - _READING_TIE]
    return near[0]


#: how much closer to an indexed passage a less likely reading must bring the question
_READING_MARGIN = 0.1
#: closeness within which two readings are as likely as each other
_READING_TIE = 0.02


def _expansions(
    sources: Sources, normalized: NormalizedQuery | None, topic: Topic
) -> tuple[list[str], set[str]]:
    """Extra BM25 terms, and the intervention names the question is restricted to.

    A follow-up that names no drug ("what dose?") inherits the conversation's drugs.
    """
    lexicon = sources.lexicon
    if lexicon is None:
        return [], set()
    concept_ids = [m.concept_id for m in normalized.matches] if normalized else []
    drug_ids = [cid for cid, _ in topic.interventions]
    terms: list[str] = []
    interventions: set[str] = set()
    for concept_id in dict.fromkeys([*concept_ids, *drug_ids]):
        names = list(lexicon.expansion_terms(concept_id))
        terms.extend(names)
        if concept_id in drug_ids:
            interventions.update(n.lower() for n in names)
    return terms, interventions


def question_notes(
    clean: CleanQuestion, normalized: NormalizedQuery | None
) -> list[NormalizationNote]:
    """What every answer path tells the reader about how the question was read."""
    notes = [NormalizationNote(span="", message=n) for n in clean.notes]
    if normalized is None:
        return notes
    # A name nothing could place ("Restonil"), beside terms that could be: say so, or the
    # answer about the condition in general reads as an answer about it.
    unplaced = [
        NormalizationNote(span=term, message=UNRECOGNIZED_NOTE.format(term=term))
        for term in normalized.unrecognized
        if normalized.matches and not any(term in n.span for n in normalized.notes)
    ]
    return list(normalized.notes) + unplaced + notes


def notes_section(notes: list[NormalizationNote]) -> Section:
    return Section(
        key="notes",
        title="How the question was read",
        sentences=[Sentence(text=n.message, kind=SentenceKind.note) for n in notes],
    )
