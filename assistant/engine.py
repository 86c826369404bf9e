"""The assistant: an answer is six named steps, each a module with one entry point.

    understand  assistant.understand  clean, normalize, conversation, kind of question
    retrieve    assistant.evidence    hybrid BM25 + dense passages
    select      assistant.evidence    coverage, units by relevance, recommendations, conflicts
    compose     assistant.compose     offline and extractive; the LLM answerer swaps this step
    verify      assistant.verify      every cited sentence against its passage
    finish      here                  references, notes, refusal

What the corpus knows (its conditions, patient groups, drug classes, short names) is read from
the index into `Sources.profile`; this module names none of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from assistant.citations import renumber
from assistant.compose import Draft, compose_offline
from assistant.context import Sources, load_lexicon
from assistant.conversation import Session
from assistant.evidence import Evidence, nearest_topics, retrieve_passages, select_evidence
from assistant.intent import Ask
from assistant.profile import CorpusProfile
from assistant.prompts import DISCLAIMER, DROPPED_NOTE, NO_DOSE_NOTE, VECTOR_FAULT_NOTE
from assistant.retrieve import Retriever
from assistant.types import Answer, NormalizationNote, Section, Sentence, SentenceKind
from assistant.understand import (
    CleanQuestion,
    QuestionError,
    Understanding,
    clean_question,
    notes_section,
    question_notes,
    understand,
)
from assistant.verify import Verifier
from ingest.embedding import Embedder, get_embedder
from ingest.settings import Settings
from ingest.store import Index
from ingest.types import Passage

__all__ = [
    "Assistant",
    "CleanQuestion",
    "Composer",
    "QuestionError",
    "clean_question",
    "load_lexicon",
    "notes_section",
    "question_notes",
]

#: Step 4, swappable: the offline composer or the LLM answerer's.
Composer = Callable[[Understanding, Evidence, Sources], Draft]

_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g|ml|units?)\b", re.I)


class Assistant:
    """Offline, extractive answers from the index. One instance serves many questions."""

    def __init__(
        self,
        settings: Settings,
        *,
        index: Index | None = None,
        embedder: Embedder | None = None,
        lexicon: object | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.settings = settings
        embedder = embedder or get_embedder(settings.embedding)
        index = index or Index.open(settings, embedder)
        lexicon = lexicon if lexicon is not None else load_lexicon(settings.lexicon_dir)
        self.sources = Sources(
            index=index,
            retriever=Retriever(index, settings.retrieval),
            embedder=embedder,
            lexicon=lexicon,  # type: ignore[arg-type]
            profile=CorpusProfile(),
            options=settings.answer,
        )
        self.sources.refresh()
        self.options = settings.answer
        self.verifier = verifier or Verifier.default(
            embedder, self.options.verify_threshold, self.options.verify_judge, settings
        )
        self._warm_up()

    # Shortcuts other answerers and tools read.
    @property
    def index(self) -> Index:
        return self.sources.index

    @property
    def embedder(self) -> Embedder:
        return self.sources.embedder

    @property
    def retriever(self) -> Retriever:
        return self.sources.retriever

    @property
    def lexicon(self) -> object | None:
        return self.sources.lexicon

    @property
    def profile(self) -> CorpusProfile:
        return self.sources.profile

    def _warm_up(self) -> None:
        """Load the model, its token encoder and BM25 now, so the first question is as fast as
        the rest."""
        self.embedder.embed_query("warm up")
        self.retriever.token_features.encode(["warm up"])
        self.index.lexical()

    def ask(
        self, question: str, session: Session | None = None, *, compose: Composer | None = None
    ) -> Answer:
        """Answer one question: the six steps, in order, timed."""
        session = session if session is not None else Session()
        clock = _Clock()
        self.sources.refresh()
        with clock("normalize_ms"):
            understanding = understand(question, session, self.sources)
        with clock("retrieve_ms"):
            passages = retrieve_passages(understanding, self.sources)
        if self.index.vector_fault:  # answered from BM25 alone: the reader is told why
            note = VECTOR_FAULT_NOTE.format(reason=self.index.vector_fault)
            understanding.notes.append(NormalizationNote(span="", message=note))
        with clock("select_ms"):
            evidence = select_evidence(understanding, passages, self.sources)
        if evidence.refusal:
            answer = refuse(understanding, evidence)
        else:
            with clock("compose_ms"):
                draft = (compose or compose_offline)(understanding, evidence, self.sources)
            with clock("verify_ms"):
                dropped = verify(draft, self.verifier, self.sources)
            answer = finish(understanding, evidence, draft, dropped)
            clock.steps.update(draft.timings)
        answer.follow_up = understanding.follow_up
        answer.timings_ms = clock.totals()
        session.record(question, understanding.standalone, answer)
        return answer


# -- steps 5 and 6 ----------------------------------------------------------------------------


def verify(draft: Draft, verifier: Verifier, sources: Sources) -> int:
    """Step 5: check every cited sentence not yet checked; drop the unsupported. Returns how
    many were dropped."""
    draft.sections, dropped = verifier.verify_sections(draft.sections, sources.index)
    return dropped


def finish(u: Understanding, evidence: Evidence, draft: Draft, dropped: int) -> Answer:
    """Step 6: the answer as the reader gets it: notes first, references numbered as met."""
    answer = _blank_answer(u, evidence)
    notes = [*u.notes, *evidence.notes, *draft.notes]
    if draft.refusal:
        return refuse(u, evidence, reason=draft.refusal, notes=notes, text=draft.refusal_text)
    if dropped:
        notes.append(NormalizationNote(span="", message=DROPPED_NOTE.format(count=dropped)))
    answer.sections = [_pruned(s) for s in draft.sections if _has_sentences(s)]
    if not answer.sections:
        reason = (
            "No sentence that could be composed was supported by its cited passage."
            if dropped
            else "The indexed sources have no text on this question's subject."
        )
        return refuse(u, evidence, reason=reason, notes=notes)
    sentences = answer.all_sentences()
    if evidence.intent.ask is Ask.dose and not any(_DOSE.search(s.claim) for s in sentences):
        notes.append(NormalizationNote(span="", message=NO_DOSE_NOTE))
    cited = {c.chunk_id for s in sentences for c in s.citations}
    answer.passages = _with_cited(evidence.passages, evidence.considered, cited, draft)
    used = {c.document_id for s in sentences for c in s.citations}
    answer.references = draft.book.references(used)
    renumber((s.citations for s in sentences), answer.references)
    if notes:
        answer.sections.insert(0, notes_section(notes))
    return answer


def refuse(
    u: Understanding,
    evidence: Evidence,
    reason: str | None = None,
    notes: list[NormalizationNote] | None = None,
    text: str | None = None,
) -> Answer:
    """No answer: say why, and which topics the index does cover nearest to the question."""
    answer = _blank_answer(u, evidence)
    answer.abstained = True
    answer.abstention_reason = reason or evidence.refusal
    answer.nearest_topics = evidence.nearest_topics or nearest_topics(evidence.passages)
    text = text or "The indexed sources do not address this question, so no answer is given."
    sentences = [Sentence(text=text, kind=SentenceKind.abstention)]
    if _says_what(answer.abstention_reason):
        # What is missing, where it is named: a subject, a body asked as the source.
        sentences.append(Sentence(text=answer.abstention_reason, kind=SentenceKind.abstention))
    if answer.nearest_topics:
        sentences.append(
            Sentence(
                text="The nearest topics the index does cover are: "
                + "; ".join(answer.nearest_topics)
                + ".",
                kind=SentenceKind.abstention,
            )
        )
    answer.sections = [Section(key="abstention", title="No answer", sentences=sentences)]
    notes = notes if notes is not None else [*u.notes, *evidence.notes]
    if notes:
        answer.sections.insert(0, notes_section(notes))
    answer.references = []
    return answer


def _says_what(reason: str | None) -> bool:
    """A reason that names what the sources lack (a subject, a body), not one that restates the
    refusal or gives a similarity score, which the answer's JSON keeps for auditors."""
    return bool(reason) and bool(re.search(r"\((?!best passage similarity)|\bfrom\b", reason))


def _blank_answer(u: Understanding, evidence: Evidence) -> Answer:
    return Answer(
        question=u.clean.text,
        standalone_query=u.standalone,
        normalization=u.normalized,
        passages=list(evidence.passages),
        disclaimer=DISCLAIMER,
    )


def _with_cited(
    passages: list[Passage], considered: list[Passage], cited: set[str], draft: Draft
) -> list[Passage]:
    """The retrieved passages, plus every other passage a sentence cites (ranks continue)."""
    out = list(passages)
    have = {p.chunk.id for p in out}
    extra = list(considered) + [
        Passage(chunk=chunk, rank=1, score=0.0) for chunk in draft.book.chunks()
    ]
    for passage in extra:
        if passage.chunk.id in cited and passage.chunk.id not in have:
            have.add(passage.chunk.id)
            out.append(passage.model_copy(update={"rank": len(out) + 1}))
    return out


def _has_sentences(section: Section) -> bool:
    return bool(section.sentences) or any(_has_sentences(s) for s in section.subsections)


def _pruned(section: Section) -> Section:
    """The section without the groups verification left empty (no heading over nothing)."""
    kept = [_pruned(s) for s in section.subsections if _has_sentences(s)]
    return section.model_copy(update={"subsections": kept})


class _Clock:
    """Milliseconds per step, and the total."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = (time.perf_counter() - t0) * 1000

    def totals(self) -> dict[str, float]:
        total = (time.perf_counter() - self.started) * 1000
        return {k: round(v, 1) for k, v in {**self.steps, "total_ms": total}.items()}
