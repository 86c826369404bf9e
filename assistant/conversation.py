"""Conversation state: follow-ups become standalone queries before retrieval.

"And after a kidney transplant?" after a question on the management of a condition is retrieved
as "management of <condition>: after a kidney transplant". The topic (condition, kind of ask,
interventions, patient groups) carries over until a question names a new condition. Which words
name a patient group comes from the corpus profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.intent import Ask, ask_of, question_core
from assistant.types import Answer, NormalizedQuery, Turn

if TYPE_CHECKING:
    from assistant.profile import CorpusProfile

_FOLLOW_UP_LEAD = re.compile(
    r"^\s*(?:and|also|but|so|ok(?:ay)?|then)?\s*(?:what|how)\s+about\s+|"
    r"^\s*(?:and|also|but|what if|how about)\s+|^\s*(?:in|for|with)\s+",
    re.I,
)
# "what dose" / "which dose" add nothing once the ask is known.
_ASK_ONLY = re.compile(
    r"^(?:what|which|how much|how)\s+(?:is\s+the\s+|are\s+the\s+)?"
    r"(?:dose|doses|dosing|dosage)s?\b\s*",
    re.I,
)
_PRONOUN = re.compile(r"\b(it|they|them|those|these|that|this|its|their)\b", re.I)
# A follow-up that points at the source the last answer led with ("what did that guideline say
# about children?", "how many patients were in this study?").
_SOURCE_REFERENCE = re.compile(
    r"\b(?:that|this|the same|the above|the last)\s+(?:guidelines?|guidance|study|trial|review|"
    r"article|paper|publication|report|analysis|survey|statement|source|document|page)\b",
    re.I,
)

_ASK_PHRASE = {
    Ask.management: "management of",
    Ask.dose: "dosing of",
    Ask.diagnosis: "diagnosis of",
    Ask.mechanism: "causes of",
    Ask.general: "",
}


@dataclass
class Topic:
    condition: str | None = None  # canonical name
    ask: Ask = Ask.general
    interventions: list[tuple[str, str]] = field(default_factory=list)  # (concept id, name)
    populations: set[str] = field(default_factory=set)  # patient-group keys
    population_words: str = ""  # how the user named them ("transplant recipients")


@dataclass
class Session:
    turns: list[Turn] = field(default_factory=list)
    topic: Topic = field(default_factory=Topic)

    def reset(self) -> None:
        self.turns.clear()
        self.topic = Topic()

    def standalone(
        self,
        question: str,
        normalized: NormalizedQuery | None,
        profile: CorpusProfile | None = None,
    ) -> tuple[str, bool]:
        """The query to retrieve for, and whether the question was read as a follow-up."""
        text = normalized.rewritten if normalized else question
        conditions = _conditions(normalized)
        drugs = _drugs(normalized)
        ask = ask_of(question_core(text))
        populations = profile.groups_in(text) if profile else set()
        follow_up = bool(self.turns) and self.topic.condition is not None and not conditions
        follow_up = follow_up and (
            bool(_FOLLOW_UP_LEAD.search(text))
            or bool(_PRONOUN.search(text))
            or (len(text.split()) <= 8 and not _new_subject(text, normalized, profile))
        )
        if not follow_up:
            self.topic = Topic(
                condition=conditions[0] if conditions else None,
                ask=ask,
                interventions=drugs,
                populations=populations,
                population_words=_group_words(text, profile) if populations else "",
            )
            return text, False

        content = _FOLLOW_UP_LEAD.sub("", text).strip().rstrip("?.! ").strip()
        content = _ASK_ONLY.sub("", content).strip()
        topic = self.topic
        new_ask = ask if ask is not Ask.general else topic.ask
        if drugs:
            topic.interventions = drugs
        if populations:
            topic.populations = populations
            topic.population_words = _group_words(text, profile)
        topic.ask = new_ask
        phrase = _ASK_PHRASE[new_ask]
        subject = topic.condition or ""
        if new_ask is Ask.dose and topic.interventions and not drugs:
            subject = f"{', '.join(n for _, n in topic.interventions)} for {subject}"
        parts = [p for p in (phrase, subject) if p]
        query = " ".join(parts)
        if content and content.lower() not in query.lower():
            query = f"{query}: {content}"
        if topic.populations and not populations and topic.population_words:
            query += " in " + topic.population_words
        return query, True

    @staticmethod
    def points_at_source(question: str) -> bool:
        """Whether a question points at a source already cited ("that guideline")."""
        return bool(_SOURCE_REFERENCE.search(question))

    def referred_documents(self, question: str) -> tuple[str, ...]:
        """The document a follow-up points at ("that guideline", "this study"): the one the last
        answer led with. Empty when the question points at none, or nothing was cited."""
        if not self.turns or not self.points_at_source(question):
            return ()
        answer = self.turns[-1].answer
        if answer is None or not answer.references:
            return ()
        return (answer.references[0].document.id,)

    def record(self, question: str, standalone: str, answer: Answer | None) -> Turn:
        turn = Turn(
            question=question,
            standalone_query=standalone,
            answer=answer,
            topic_concepts=[self.topic.condition] if self.topic.condition else [],
        )
        self.turns.append(turn)
        return turn


_FUNCTION_WORD_TEXT = """
    a an the is are was were be do does did can could should would will what which who how
    when why where is there any for of in on at to with and or about also then than it its
    they them this that these those patient patients people adult adults use used using
    recommended recommend recommendation recommendations treat treatment treatments therapy
    therapies option options first line first-line manage management approach best safe safety
    dose doses dosing dosage much many mg drug drugs medication medications evidence"""
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_TEXT.split())


def _new_subject(
    text: str, normalized: NormalizedQuery | None, profile: CorpusProfile | None
) -> bool:
    """Whether a short question brings a subject of its own ("What is the treatment for gout?")
    rather than refining the current topic ("what dose?", "and in children?")."""
    known = {m.span.lower() for m in normalized.matches} if normalized else set()
    stripped = text.lower()
    for span in known:
        stripped = stripped.replace(span, " ")
    group_words = profile.name_words(text) if profile else frozenset()
    words = re.findall(r"[a-z][a-z-]+", stripped)
    return any(w not in _FUNCTION_WORDS and w not in group_words for w in words)


def _group_words(text: str, profile: CorpusProfile | None) -> str:
    """The user's own words for the patient group ("transplant recipients"), kept for follow-ups."""
    content = _FOLLOW_UP_LEAD.sub("", text).strip().rstrip("?.! ").strip()
    if profile is None:
        return content
    words = profile.group_words(content)
    kept = [w for w in re.findall(r"[\w-]+", content) if w.lower() in words]
    return " ".join(kept) or content


def _conditions(normalized: NormalizedQuery | None) -> list[str]:
    if normalized is None:
        return []
    return [m.canonical for m in normalized.matches if _concept_type(m) == "condition"]


def _drugs(normalized: NormalizedQuery | None) -> list[tuple[str, str]]:
    """Drugs the question asks about: named in its asking sentences, not in a case history
    around them ("she takes sertraline")."""
    if normalized is None:
        return []
    asking = question_core(normalized.original).lower()
    return [
        (m.concept_id, m.canonical)
        for m in normalized.matches
        if _concept_type(m) in {"drug", "drug-class"} and m.span.lower() in asking
    ]


def _concept_type(match: object) -> str | None:
    return getattr(match, "concept_type", None)
