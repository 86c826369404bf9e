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
from assistant.prompts import INJECTION_NOTE, UNRECOGNIZED_NOTE
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
        notes=question_notes(clean, normalized),
    )


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
