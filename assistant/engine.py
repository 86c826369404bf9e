"""The assistant: question -> normalized query -> standalone query -> passages -> cited answer.

Each step is a small function with typed input and output; this module only wires them and
times them. The offline composer is the default and needs no language model.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from assistant.citations import CitationBook, renumber
from assistant.compose import (
    GuidelineFindings,
    conflict_section,
    find_conflicts,
    guideline_section,
    mmr_select,
    select_recommendations,
    summary_sentences,
)
from assistant.conversation import Session, Topic
from assistant.intent import (
    TREATMENT_FOCUS,
    Ask,
    Intent,
    Population,
    ask_bonus,
    ask_of,
    asks_for_number,
    conditions_in,
    focus_matches,
    focus_terms,
    intervention_key,
    is_process_text,
    on_topic,
    populations_in,
    question_core,
    stem,
    subject_bonus,
)
from assistant.prompts import (
    DISCLAIMER,
    DROPPED_NOTE,
    INJECTION_NOTE,
    NO_DOSE_NOTE,
    NO_POPULATION_NOTE,
    UNRECOGNIZED_NOTE,
)
from assistant.retrieve import RetrievalFilter, Retriever
from assistant.types import (
    Answer,
    NormalizationNote,
    NormalizedQuery,
    Section,
    Sentence,
    SentenceKind,
)
from assistant.verify import Verifier
from ingest.chunking import split_sentences
from ingest.embedding import Embedder, get_embedder
from ingest.errors import CliniqError
from ingest.settings import Settings
from ingest.store import Index
from ingest.types import Chunk, Direction, DocStatus, DocType, Passage

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b|"
    r"\byou are now\b|\bsystem prompt\b|\bact as\b|\bpretend to\b|\bjailbreak\b",
    re.I | re.S,
)


_ADULTS = re.compile(r"\badults?\b", re.I)
_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g|ml|units?)\b", re.I)


class QuestionError(CliniqError):
    """The question cannot be answered as given (empty, nothing but symbols)."""


@dataclass(frozen=True)
class CleanQuestion:
    text: str
    notes: tuple[str, ...] = ()


# (clean question, normalized question, standalone query, topic, timings) -> Answer
AnswerStep = Callable[[CleanQuestion, NormalizedQuery | None, str, Topic, dict[str, float]], Answer]


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
            '"What is the management approach for restless legs syndrome?"'
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
        self.embedder = embedder or get_embedder(settings.embedding)
        self.index = index or Index.open(settings, self.embedder)
        self.retriever = Retriever(self.index, settings.retrieval)
        self.lexicon = lexicon if lexicon is not None else load_lexicon(settings.lexicon_dir)
        self.options = settings.answer
        self._class_cache: dict[str, set[str]] | None = None
        self.verifier = verifier or Verifier.default(
            self.embedder, self.options.verify_threshold, self.options.verify_judge, settings
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the model and BM25 now, so the first question is as fast as the rest."""
        self.embedder.embed_query("warm up")
        self.index.lexical()

    # -- public -----------------------------------------------------------------------------
    def ask(
        self, question: str, session: Session | None = None, *, compose: AnswerStep | None = None
    ) -> Answer:
        """Answer one question. ``compose`` replaces the offline composition step (the LLM
        answerer passes its own); cleaning, normalization, the conversation and timings stay."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        clean = clean_question(question, self.options.max_question_chars)
        normalized = self._normalize(clean.text)
        timings["normalize_ms"] = _ms(started)

        session = session if session is not None else Session()
        standalone, follow_up = session.standalone(clean.text, normalized)
        answer = (compose or self._answer)(clean, normalized, standalone, session.topic, timings)
        answer.follow_up = follow_up
        timings["total_ms"] = _ms(started)
        answer.timings_ms = {k: round(v, 1) for k, v in timings.items()}
        session.record(question, standalone, answer)
        return answer

    # -- steps other answerers reuse (assistant.generate) -----------------------------------
    def lexical_query(
        self, standalone: str, normalized: NormalizedQuery | None, topic: Topic
    ) -> str:
        """The BM25 query: the standalone query plus lexicon expansions (and inherited drugs)."""
        expansion, _ = self._expansions(normalized, topic)
        return " ".join([standalone, *expansion])

    def abstain(
        self, answer: Answer, notes: list[NormalizationNote], passages: list[Passage], best: float
    ) -> Answer:
        """The relevance-floor abstention, with the nearest topics the index covers."""
        return self._abstain(answer, notes, passages, best)

    # -- steps ------------------------------------------------------------------------------
    def _normalize(self, text: str) -> NormalizedQuery | None:
        if self.lexicon is None:
            return None
        from assistant.normalize import normalize_question

        return normalize_question(text, self.lexicon)  # type: ignore[arg-type]

    def _expansions(
        self, normalized: NormalizedQuery | None, topic: Topic
    ) -> tuple[list[str], set[str]]:
        """Extra BM25 terms, and the intervention names the question is restricted to.

        A follow-up that names no drug ("what dose?") inherits the conversation's drugs.
        """
        if self.lexicon is None:
            return [], set()
        concept_ids = [m.concept_id for m in normalized.matches] if normalized else []
        drug_ids = [cid for cid, _ in topic.interventions]
        terms: list[str] = []
        interventions: set[str] = set()
        for concept_id in dict.fromkeys([*concept_ids, *drug_ids]):
            names = list(self.lexicon.expansion_terms(concept_id))  # type: ignore[attr-defined]
            terms.extend(names)
            if concept_id in drug_ids:
                interventions.update(n.lower() for n in names)
        return terms, interventions

    def _answer(
        self,
        clean: CleanQuestion,
        normalized: NormalizedQuery | None,
        standalone: str,
        topic: Topic,
        timings: dict[str, float],
    ) -> Answer:
        t0 = time.perf_counter()
        expansion, intervention_terms = self._expansions(normalized, topic)
        # A follow-up names no drug itself but may inherit one ("what dose?" after "opioids").
        lexical_query = " ".join([standalone, *expansion])
        passages = self.retriever.retrieve(standalone, lexical_query=lexical_query)
        timings["retrieve_ms"] = _ms(t0)
        notes = question_notes(clean, normalized)
        answer = Answer(
            question=clean.text,
            standalone_query=standalone,
            normalization=normalized,
            passages=passages,
            disclaimer=DISCLAIMER,
        )
        best = max((p.dense_score or 0.0 for p in passages), default=0.0)
        if best < self.options.abstain_floor:
            return self._abstain(answer, notes, passages, best)
        outside = _outside_terms(normalized)
        if outside:
            reason = (
                f"The question is about {', '.join(outside)}, which the indexed sources do not "
                "cover."
            )
            return self._abstain(answer, notes, passages, best, reason=reason)

        t1 = time.perf_counter()
        asking = question_core(standalone)
        unplaced = normalized.unrecognized if normalized else []
        intent = Intent(
            populations=populations_in(standalone),
            interventions=intervention_terms,
            ask=ask_of(asking),
            # A name nothing could place cannot be the subject of any source sentence.
            focus=focus_terms(asking) - {stem(t.lower()) for t in unplaced},
        )
        rec_passages = self.retriever.retrieve(
            standalone,
            k=self.options.rec_candidates,
            filters=RetrievalFilter(recommendations_only=True),
            lexical_query=lexical_query,
            diversify=False,
        )

        def select(intent: Intent) -> GuidelineFindings:
            return select_recommendations(
                rec_passages,
                intent,
                standalone,
                intervention_terms,
                self.options,
                document_blocks=self.index.document_chunks,
            )

        findings = select(intent)
        if intent.populations and not findings.main:
            notes.append(NormalizationNote(span="", message=NO_POPULATION_NOTE))
            intent = Intent(interventions=intervention_terms, ask=intent.ask, focus=intent.focus)
            findings = select(intent)
        research_pool, research_passages = self._research_candidates(standalone, lexical_query)
        book = CitationBook()
        sections: list[Section] = []
        focus = intent.focus
        if not (focus or findings.main or findings.others or findings.special):
            focus = set(TREATMENT_FOCUS) if intent.ask is Ask.management else set()
        key_points, key_passages = self._key_points(
            standalone, lexical_query, replace(intent, focus=focus), book
        )
        summary = summary_sentences(findings, topic.condition or "", intent, book)
        if key_points and (
            intent.ask not in (Ask.management, Ask.dose) or asks_for_number(standalone)
        ):
            # "What is augmentation?" is answered by its definition, "What ferritin level...?"
            # by the threshold, not by the drug list.
            summary = []
        if not summary and key_points:
            summary = [key_points.pop(0).model_copy(update={"kind": SentenceKind.summary})]
        guidelines = guideline_section(findings, book, key_points)
        research = self._research_section(standalone, research_pool, book, intent)
        older_pool, older_passages = self._conflict_candidates(findings)
        conflict = find_conflicts(
            findings,
            research_pool + _guideline_prose(passages) + older_pool,
            self._class_terms(),
        )
        if not summary and research and research.sentences:
            first = research.sentences.pop(0)
            summary = [first.model_copy(update={"kind": SentenceKind.summary})]
        if summary:
            sections.append(Section(key="summary", title="Summary", sentences=summary))
        if guidelines:
            sections.append(guidelines)
        if research and research.sentences:
            sections.append(research)
        if conflict:
            sections.append(conflict_section(conflict, book))
        timings["compose_ms"] = _ms(t1)

        t2 = time.perf_counter()
        kept, dropped = self.verifier.verify_sections(sections, self.index)
        timings["verify_ms"] = _ms(t2)
        if dropped:
            notes.append(NormalizationNote(span="", message=DROPPED_NOTE.format(count=dropped)))
        answer.sections = [s for s in kept if _has_sentences(s)]
        if not answer.sections:
            reason = (
                "No sentence that could be composed was supported by its cited passage."
                if dropped
                else "The indexed sources have no text on this question's subject."
            )
            return self._abstain(answer, notes, passages, best, reason=reason)
        if intent.ask is Ask.dose and not any(_DOSE.search(s.text) for s in answer.all_sentences()):
            notes.append(NormalizationNote(span="", message=NO_DOSE_NOTE))
        if not answer.sections:
            return self._abstain(answer, notes, passages, best)
        answer.passages = _with_cited(
            passages,
            [
                *rec_passages,
                *(i.passage for i in findings.all_candidates),
                *research_passages,
                *older_passages,
                *key_passages,
            ],
            {c.chunk_id for s in answer.all_sentences() for c in s.citations},
        )
        used = {c.document_id for s in answer.all_sentences() for c in s.citations}
        answer.references = book.references(used)
        renumber((s.citations for s in answer.all_sentences()), answer.references)
        if notes:
            answer.sections.insert(0, notes_section(notes))
        return answer

    def _abstain(
        self,
        answer: Answer,
        notes: list[NormalizationNote],
        passages: list[Passage],
        best: float,
        reason: str | None = None,
    ) -> Answer:
        answer.abstained = True
        answer.abstention_reason = reason or (
            f"The indexed sources do not address this question (best passage similarity "
            f"{best:.2f}, below the {self.options.abstain_floor:.2f} relevance floor)."
        )
        answer.nearest_topics = _nearest_topics(passages)
        text = "The indexed sources do not address this question, so no answer is given."
        sentences = [Sentence(text=text, kind=SentenceKind.abstention)]
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
        if notes:
            answer.sections.insert(0, notes_section(notes))
        answer.references = []
        return answer

    def _research_candidates(
        self, query: str, lexical_query: str
    ) -> tuple[list[tuple[str, Chunk]], list[Passage]]:
        research = self.retriever.retrieve(
            query,
            k=self.options.research_passages,
            filters=RetrievalFilter(doc_types=frozenset({DocType.research, DocType.patient_info})),
            lexical_query=lexical_query,
        )
        out: dict[str, tuple[str, Chunk]] = {}
        for passage in research:
            for sentence in split_sentences(passage.chunk.text):
                # Overlapping chunks repeat sentences: keep the first (best-ranked) copy.
                if len(sentence.split()) >= 6 and sentence not in out:
                    out[sentence] = (sentence, passage.chunk)
        return list(out.values()), research

    def _key_points(
        self, query: str, lexical_query: str, intent: Intent, book: CitationBook
    ) -> tuple[list[Sentence], list[Passage]]:
        """Sentences of current guideline text (not the graded blocks) on the question's own
        subject: the ferritin threshold, the diagnostic criteria, what augmentation is.

        Quoted as written, so the verifier checks them by containment. Only for a question with
        a subject beyond the condition and the kind of ask: a broad management question is
        answered by the recommendations."""
        if not intent.focus or self.options.key_points == 0:
            return [], []
        passages = self.retriever.retrieve(
            query,
            k=self.options.key_point_passages,
            filters=RetrievalFilter(
                doc_types=frozenset({DocType.guideline}),
                statuses=frozenset({DocStatus.current}),
                prose_only=True,
            ),
            lexical_query=lexical_query,
        )
        asked_conditions = conditions_in(query)

        def fits(sentence: str) -> bool:
            # The question's condition and population, not another's: a PLMD question does not
            # get the RLS criteria, nor a general one the pregnancy text.
            named = conditions_in(sentence)
            populations = populations_in(sentence)
            return (
                len(sentence.split()) >= 6
                and not is_process_text(sentence)
                and focus_matches(sentence, intent.focus) > 0
                and (not named or not asked_conditions or bool(named & asked_conditions))
                and (
                    bool(populations & intent.populations)
                    if intent.populations
                    # Text for a special population answers a general question only when it
                    # is about children and adults alike ("above 15 per hour in adults or above
                    # 5 in children"); "adults with ESRD" is still ESRD text.
                    else not populations
                    or (populations == {Population.children} and bool(_ADULTS.search(sentence)))
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
        vectors = self.embedder.embed(texts)
        query_vec = self.embedder.embed_query(query)
        # A section headed with the asked condition ("Adults with PLMD") is on point even when
        # its sentences share few words with the question.
        bonus = [
            b + (0.1 if asked_conditions & conditions_in(pool[t][1].heading) else 0.0)
            for t, b in zip(texts, subject_bonus(texts, intent, query), strict=True)
        ]
        # Criteria and definitions come as lists: a diagnosis question gets room for them.
        k = self.options.key_points * (2 if intent.ask is Ask.diagnosis else 1)
        picked = mmr_select(
            query_vec,
            candidates,
            vectors,
            k=k,
            # Guidelines restate a threshold in several places; relevance outweighs novelty.
            lam=max(self.options.mmr_lambda, 0.9),
            floor=self.options.research_floor,
            bonus=bonus,
            spread=0.3,
        )
        if not picked:
            return [], passages
        # The best sentence leads (it may become the summary); the rest keep the source's order,
        # so "criterion 1 ... criterion 5" reads as written.
        lead, rest = picked[0], sorted(picked[1:], key=lambda p: order[p.text])
        sentences = [
            Sentence(text=p.text, citations=book.cite([p.chunk]), kind=SentenceKind.guideline_text)
            for p in [lead, *rest]
        ]
        return sentences, passages

    def _research_section(
        self, query: str, pool: list[tuple[str, Chunk]], book: CitationBook, intent: Intent
    ) -> Section | None:
        asked = conditions_in(query)
        pool = [
            (s, c)
            for s, c in pool
            if on_topic(s, intent)
            and (not asked or not conditions_in(s) or conditions_in(s) & asked)
        ]
        if not pool:
            return None
        vectors = self.embedder.embed([s for s, _ in pool])
        query_vec = self.embedder.embed_query(query)
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
            k=self.options.research_sentences,
            lam=self.options.mmr_lambda,
            floor=self.options.research_floor,
            bonus=bonus,
        )
        if not picked:
            return None
        section = Section(key="research", title="From the Research")
        for item in picked:
            section.sentences.append(
                Sentence(
                    text=item.text, citations=book.cite([item.chunk]), kind=SentenceKind.research
                )
            )
        return section

    def _conflict_candidates(
        self, findings: GuidelineFindings
    ) -> tuple[list[tuple[str, Chunk]], list[Passage]]:
        """Sentences of reviews and older guidelines about what the newest guideline advises
        against, found by a query of their names (and classes) with 'first-line'."""
        against = [i for i in findings.main if i.rec.direction is Direction.against]
        if not against:
            return [], []
        classes = self._class_terms()
        names: list[str] = []
        for item in against:
            names.append(item.rec.intervention)
            names.extend(sorted(classes.get(item.key, set()))[:2])
        query = " ".join(dict.fromkeys(names)) + " first-line treatment"
        passages = self.retriever.retrieve(query, k=6, diversify=True)
        out: list[tuple[str, Chunk]] = []
        for passage in passages:
            chunk = passage.chunk
            if chunk.recommendation is None:
                out.extend((s, chunk) for s in split_sentences(chunk.text) if len(s.split()) >= 6)
        return out, passages

    def _class_terms(self) -> dict[str, set[str]]:
        """intervention key -> names of the drug classes it belongs to ('dopamine agonists')."""
        if self._class_cache is None:
            self._class_cache = class_terms(self.lexicon)
        return self._class_cache


def class_terms(lexicon: object | None) -> dict[str, set[str]]:
    """From the lexicon's drug classes and their members; empty without a lexicon."""
    out: dict[str, set[str]] = {}
    if lexicon is None:
        return out
    for concept in lexicon.concepts:  # type: ignore[attr-defined]
        if str(concept.type) != "drug-class":
            continue
        class_names = {concept.canonical.lower(), *(s.lower() for s in concept.synonyms)}
        for member_id in lexicon.narrower(concept.id):  # type: ignore[attr-defined]
            member = lexicon.concept(member_id)  # type: ignore[attr-defined]
            out.setdefault(intervention_key(member.canonical), set()).update(class_names)
    return out


def load_lexicon(directory: Path) -> object | None:
    """The lexicon if present; the assistant still answers (without normalization) if not."""
    try:
        from assistant.lexicon import Lexicon
    except ImportError:  # pragma: no cover - partial checkout
        return None
    if not Path(directory).is_dir():
        return None
    return Lexicon.cached(Path(directory))


def _outside_terms(normalized: NormalizedQuery | None) -> list[str]:
    """Medical-looking terms the lexicon does not know, in a question that names nothing it does
    know: a question about metoprolol alone is outside the sources, however similar its words."""
    if normalized is None or not normalized.unrecognized or normalized.matches:
        return []
    return list(normalized.unrecognized)


def _with_cited(
    passages: list[Passage], considered: list[Passage], cited: set[str]
) -> list[Passage]:
    """The retrieved passages, plus every other passage a sentence cites (ranks continue)."""
    out = list(passages)
    have = {p.chunk.id for p in out}
    for passage in considered:
        if passage.chunk.id in cited and passage.chunk.id not in have:
            have.add(passage.chunk.id)
            out.append(passage.model_copy(update={"rank": len(out) + 1}))
    return out


def _guideline_prose(passages: list[Passage]) -> list[tuple[str, Chunk]]:
    """Sentences of guideline prose (not blocks) that retrieval surfaced, for conflict checks."""
    out: list[tuple[str, Chunk]] = []
    for passage in passages:
        chunk = passage.chunk
        if chunk.document.doc_type is DocType.guideline and chunk.recommendation is None:
            out.extend((s, chunk) for s in split_sentences(chunk.text) if len(s.split()) >= 6)
    return out


def question_notes(
    clean: CleanQuestion, normalized: NormalizedQuery | None
) -> list[NormalizationNote]:
    """What every answer path tells the reader about how the question was read."""
    notes = [NormalizationNote(span="", message=n) for n in clean.notes]
    if normalized is None:
        return notes
    # A name nothing could place ("Restonil"), beside terms that could be: say so, or the
    # answer about RLS in general reads as an answer about it.
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


def _nearest_topics(passages: list[Passage], limit: int = 3) -> list[str]:
    topics: list[str] = []
    for passage in passages:
        doc = passage.document
        section = passage.chunk.section_path[-1] if passage.chunk.section_path else ""
        source = doc.title if len(doc.title) <= 60 else doc.source_name
        source = f"{source}, {doc.year}" if doc.year else source
        label = f"{section} ({source})" if section else source
        if label not in topics:
            topics.append(label)
        if len(topics) == limit:
            break
    return topics


def _has_sentences(section: Section) -> bool:
    return bool(section.sentences) or any(_has_sentences(s) for s in section.subsections)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
