"""Step 3 of an answer: choose the evidence it may say anything from.

From the retrieved passages: whether the sources answer the question at all (coverage, in
`assistant.coverage`), the units of source text most relevant to it (`assistant.relevance`),
the recommendations that bear on it (the newest current guideline first, special patient groups
apart), and older sources that disagree with the newest guideline. Nothing here writes a
sentence; `assistant.compose` does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from assistant.context import Sources
from assistant.coverage import coverage_gap, subject_words, word_found
from assistant.intent import (
    KIND_WORDS,
    TREATMENT_OUTCOME_STEMS,
    Ask,
    Intent,
    focus_matches,
    intervention_key,
)
from assistant.profile import CorpusProfile, content_words
from assistant.prompts import NO_POPULATION_NOTE
from assistant.relevance import (
    Quote,
    Scored,
    Unit,
    Weights,
    candidate_units,
    close_documents,
    default_weights,
    in_source_order,
    logit,
    rank_documents,
    score_units,
    select_units,
)
from assistant.retrieve import RetrievalFilter
from assistant.types import NormalizationNote
from assistant.understand import Understanding
from ingest.chunking import split_sentences
from ingest.loaders.boilerplate import interface_sentence
from ingest.loaders.metadata import ORG_RE
from ingest.settings import AnswerSettings
from ingest.types import (
    Chunk,
    Direction,
    DocStatus,
    DocType,
    DocumentRef,
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


def _matches_focus(item: RecItem, focus: set[str]) -> bool:
    # A guideline on the subject itself ("prevention of relapse") keeps its blocks: here the
    # title's words count.
    rec = item.rec
    text = f"{item.chunk.heading} {rec.intervention} {rec.population} {rec.statement}"
    return bool(focus) and focus_matches(text, focus) > 0


def _matches_intervention(item: RecItem, terms: set[str]) -> bool:
    text = f"{item.rec.intervention} {item.rec.statement}".lower()
    return any(re.search(rf"\b{re.escape(t.lower())}", text) for t in terms)


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


_ITEM = re.compile(r"^\s*(?:[-*+•▪‣◦]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
_NAVIGATION = re.compile(
    r"^(?:key points?|back to top|top of page|see also|learn more|related (?:topics|links)|"
    r"click here|for more information|updated information and services|references?|"
    r"this (?:page|section) (?:was|is)|last (?:updated|reviewed)|copyright|©|doi:|https?://"
    r"|(?:table|figure|fig\.|box|algorithm)\s+\d+\b)",  # a caption names a figure, says nothing
    re.I,
)
_ENDS_SENTENCE = re.compile(r"[.!?)\"'”’]\s*$")
# A sentence that announces a list ("... include:", "... such as", "the following.") or stops
# mid-clause at a chunk's edge ("People at risk are those with"): without its list it says
# nothing whole.
_ANNOUNCES_LIST = re.compile(
    r"(?i)(:|\b(include|includes|including|such as|as follows|the following|following|e\.g|"
    r"for example|namely|are those|those with|those who)\s*[.,;]?"
    r"|\b(are|is|with|of|and|or|the|a|an|to|by|for|from|these|than)\s*[,;]?)$"
)


# A table's or figure's list of abbreviations ("Abbreviations: ART, antiretroviral therapy;
# ..."): a glossary, never an answer.
_GLOSSARY = re.compile(r"\bAbbreviations?\s*:", re.I)


def is_heading_like(text: str) -> bool:
    """A heading, a question heading ("What causes X?"), navigation or boilerplate: never cited
    as content."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#") or stripped.endswith("?"):
        return True
    if _NAVIGATION.match(stripped) or interface_sentence(stripped) or _GLOSSARY.search(stripped):
        return True
    words = stripped.split()
    return len(words) < 4 and not _ENDS_SENTENCE.search(stripped)


# An opening that points back to what came before ("These include ...", "They are ...") or
# opens like a question: the first sentence of an answer cannot lean on one it does not show.
_LEANS_BACK = re.compile(r"(?i)^(these|those|they|this|it|here|such)\b")
_ANNOUNCES_START = re.compile(r"(?i)^(the following|below|listed below)\b")
_OPENS_LIKE_QUESTION = re.compile(
    r"(?i)^(what|how|who|whom|which|why|when|where|is|are|can|do|does|should)\b"
)


_CELL = re.compile(r"[^.!?\"'”’]\)\s*$")


#: a credit line: an organization's name alone, perhaps after a short label ("NIH: National
#: Institute of ...", "Royal College of ...")
_CREDIT = re.compile(rf"(?:[A-Z][\w.-]*:\s*)?(?:{ORG_RE.pattern})\.?")


def _label_or_title(unit: Quote) -> bool:
    words = unit.text.split()
    if len(words) < 4 or (len(words) <= 5 and _CELL.search(unit.text)):
        return True
    if _CREDIT.fullmatch(unit.text.strip()):
        return True
    mine = set(content_words(unit.text))
    return len(mine) >= 3 and mine <= set(content_words(unit.chunk.document.title))


def stands_alone(quote: Quote) -> bool:
    """Whether a unit can open an answer: a whole statement, or a lead-in of more than a few
    words with its list, that needs nothing said before it."""
    text = quote.text.strip()
    if is_heading_like(text) or _LEANS_BACK.match(text):
        return False
    if _OPENS_LIKE_QUESTION.match(text) and not text.endswith((".", "!")):
        return False
    if _ANNOUNCES_START.match(text):
        return False  # "The following ...": the list, not the sentence, says what
    last = quote.items[-1].strip() if quote.items else text
    if _ANNOUNCES_LIST.search(last) or last.endswith("?"):
        return False
    if quote.items:
        return text.endswith(":") or len(text.split()) > 4
    return bool(_ENDS_SENTENCE.search(text))


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
            item = _ITEM.sub("", text).strip()
            if not _ANNOUNCES_LIST.search(item) and not _GLOSSARY.search(item):
                units.append(Quote(item, chunk))
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
        if not is_heading_like(text) and not _ANNOUNCES_LIST.search(text.rstrip()):
            units.append(Quote(text.strip(), chunk))
        i += 1
    out: list[Quote] = []
    seen_units: set[str] = set()
    for unit in units:
        key = " ".join(unit.full_text.lower().split()).rstrip(".")
        # A bare sub-heading ("Genetics.") or a table's cell ("Stage 5 (moderate dementia)") is no
        # content, nor is the document's own title printed as a running header; nor is a unit
        # said twice.
        if key in seen_units or (not unit.items and _label_or_title(unit)):
            continue
        seen_units.add(key)
        out.append(unit)
    return out


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
    relevance: Scored | None = None
    #: the answer's subject: documents whose relevance is close to the best document's
    documents: list[str] = field(default_factory=list)
    #: the most relevant unit
    summary: Quote | None = None
    #: the next most relevant units, each source's in its own order (the first screen)
    key_points: list[Quote] = field(default_factory=list)
    #: more of the same sources, in their order (shown folded)
    more: list[Quote] = field(default_factory=list)
    #: another guideline on the same subject (shown folded, never in the summary)
    other_guidelines: list[Quote] = field(default_factory=list)
    #: a graded recommendation that answers the question better than any quoted unit
    recommendation_lead: RecItem | None = None
    research_pool: list[tuple[str, Chunk]] = field(default_factory=list)
    #: where a refused question could look instead (source and section of the best passages)
    nearest_topics: list[str] = field(default_factory=list)
    conflict: Conflict | None = None
    considered: list[Passage] = field(default_factory=list)
    notes: list[NormalizationNote] = field(default_factory=list)


def retrieve_passages(u: Understanding, sources: Sources) -> list[Passage]:
    """Step 2: hybrid retrieval for the standalone query (with the lexicon's expansions); for
    a question asked of given documents, their passages closest to it."""
    if u.documents:
        return document_passages(u, sources)
    return sources.retriever.retrieve(u.standalone, lexical_query=u.lexical_query)


def document_passages(u: Understanding, sources: Sources) -> list[Passage]:
    """The passages of the documents the question is asked of, closest to it first."""
    chunks = {c.id: c for d in u.documents for c in sources.index.document_chunks(d)}
    if not chunks:
        return []
    query = sources.embedder.embed_query(u.standalone)
    near = sources.index.similarities(query, list(chunks))
    best = sorted(near, key=lambda cid: -near[cid])[: sources.retriever.settings.top_k]
    return [
        Passage(chunk=chunks[cid], rank=i, score=near[cid], dense_score=near[cid])
        for i, cid in enumerate(best, start=1)
    ]


def outside_terms(u: Understanding) -> list[str]:
    """Medical-looking terms the lexicon does not know, in a question that names nothing it does
    know: a question about an unknown drug alone is outside the sources, however similar its
    words."""
    normalized = u.normalized
    if normalized is None or not normalized.unrecognized or normalized.matches:
        return []
    return list(normalized.unrecognized)


def candidate_passages(
    u: Understanding, passages: list[Passage], sources: Sources
) -> list[Passage]:
    """The retrieved passages, then the best prose passages not among them (an index full of
    recommendation blocks would otherwise leave no text to quote); ranks continue."""
    prose = sources.retriever.retrieve(
        u.standalone,
        k=sources.options.key_point_passages,
        filters=RetrievalFilter(prose_only=True),
        lexical_query=u.lexical_query,
    )
    out = list(passages)
    have = {p.chunk.id for p in out}
    for passage in prose:
        if passage.chunk.id not in have:
            have.add(passage.chunk.id)
            out.append(passage.model_copy(update={"rank": len(out) + 1}))
    # The best documents' other sections closest to the question: retrieval may have surfaced
    # a document's opening while the answer sits further on ("family history" in a section on
    # supporting features).
    options = sources.options
    documents = list(dict.fromkeys(p.chunk.document.id for p in passages))
    if options.section_documents and options.sections_per_document and documents:
        query = sources.embedder.embed_query(u.standalone)
        for doc_id in documents[: options.section_documents]:
            chunks = {
                c.id: c
                for c in sources.index.document_chunks(doc_id)
                if c.id not in have and c.recommendation is None
            }
            if not chunks:
                continue
            near = sources.index.similarities(query, list(chunks))
            best = sorted(near, key=lambda cid: -near[cid])[: options.sections_per_document]
            for cid in best:
                have.add(cid)
                out.append(
                    Passage(chunk=chunks[cid], rank=len(out) + 1, score=0.0, dense_score=near[cid])
                )
    return out


def score_question(
    u: Understanding,
    passages: list[Passage],
    sources: Sources,
    weights: Weights | None = None,
    recommendations: Sequence[Passage] = (),
) -> Scored:
    """Every unit of the candidate passages scored against the question (recommendation blocks
    too: they tell how relevant their guideline is, though the composer words them itself).
    The best-retrieved recommendations join them, ranked among the passages by closeness to the
    question: one on exactly what was asked can then lead the answer."""
    pool = candidate_passages(u, passages, sources)
    have = {p.chunk.id for p in pool}
    closeness = [p.dense_score or 0.0 for p in passages]
    pool += [
        p.model_copy(update={"rank": 1 + sum(c > (p.dense_score or 0.0) for c in closeness)})
        for p in recommendations
        if p.chunk.id not in have
    ]
    units = candidate_units(pool, lambda chunk: quote_units([chunk]))
    scored = score_units(u.standalone, units, sources, weights, asking=u.asking)
    return rank_documents(scored, passages, weights)


def nearest_topics(
    passages: list[Passage], profile: CorpusProfile | None = None, limit: int = 3
) -> list[str]:
    """Source and section of the best passages: where a refused question could look. A section
    name many documents share ("Methods", "Results") names no topic, nor does a question."""
    topics: list[str] = []
    for passage in passages:
        doc = passage.document
        section = passage.chunk.section_path[-1] if passage.chunk.section_path else ""
        section = _GLUED_PAGE.sub("", section)  # "69References": a contents line's page number
        if section.endswith("?") or (profile is not None and profile.structural(section)):
            section = ""
        source = doc.title if len(doc.title) <= 60 else _shortened(doc.title, doc.source_name)
        source = f"{source}, {doc.year}" if doc.year else source
        label = f"{section} ({source})" if section else source
        if label not in topics:
            topics.append(label)
        if len(topics) == limit:
            break
    return topics


_GLUED_PAGE = re.compile(r"^\d{1,4}(?=[A-Z][a-z])")


def _shortened(title: str, source: str, words: int = 8) -> str:
    """A long title's first words, where no organization or journal names the source."""
    if source != "unknown source":
        return source
    head = title.split()
    return " ".join(head[:words]) + ("…" if len(head) > words else "")


def select_evidence(u: Understanding, passages: list[Passage], sources: Sources) -> Evidence:
    """Step 3: decide whether the sources answer the question, then gather what answers it."""
    options = sources.options
    best = max((p.dense_score or 0.0 for p in passages), default=0.0)
    evidence = Evidence(passages=passages, best_similarity=best, intent=u.intent)
    evidence.nearest_topics = nearest_topics(passages, sources.profile)
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
    weights = default_weights()
    recommendations = sources.retriever.retrieve(
        u.standalone,
        k=options.rec_candidates,
        filters=RetrievalFilter(recommendations_only=True),
        lexical_query=u.lexical_query,
        diversify=False,
    )
    scored = score_question(u, passages, sources, weights, recommendations[: options.key_points])
    cited = u.bodies
    asked_of = set(u.documents)

    def asked(doc: DocumentRef) -> bool:
        """Asked of one body's documents, or of one document: the answer quotes only them."""
        return (not cited or doc.organization in cited) and (not asked_of or doc.id in asked_of)

    scored = without_narrower(
        scored.keeping(asked), f"{u.clean.text} {u.standalone}", sources.profile
    )
    evidence.relevance = scored
    if not scored.units:
        evidence.refusal = "The indexed sources hold no text that answers this question."
        return evidence
    evidence.documents = close_documents(scored, options.document_margin)

    intent = u.intent
    evidence.rec_passages = recommendations
    # Recommendations only from guidelines on the question's subject, or for a condition, drug,
    # procedure or test it names: a question on one condition is not answered by the newest
    # guideline's recommendations on another, however close their words.
    on_subject = set(evidence.documents)
    named = sources.profile.concepts_in(u.standalone, _SUBJECT_TYPES)
    readings = subject_words(u, sources.profile)
    # A guideline outside the margin lends a recommendation that names the whole subject only
    # when the guideline itself is nearly as relevant (`_REC_MARGIN`).
    relevance = dict(scored.documents)
    floor = (scored.documents[0][1] if scored.documents else 0.0) - _REC_MARGIN
    evidence.rec_passages = [
        p
        for p in evidence.rec_passages
        if (
            p.chunk.document.id in on_subject
            or (named and named & _treats(p, sources))
            or (_names_every(p, readings) and relevance.get(p.chunk.document.id, 0.0) >= floor)
        )
        and asked(p.chunk.document)
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
    _choose_units(evidence, scored, options)

    research_pool, research_passages = _research_candidates(u, sources)
    evidence.research_pool = [
        (text, chunk) for text, chunk in research_pool if asked(chunk.document)
    ]
    older_pool, older_passages = _conflict_candidates(findings, sources)
    evidence.conflict = find_conflicts(
        findings, research_pool + _guideline_prose(passages) + older_pool, sources.profile
    )
    evidence.considered = [
        *evidence.rec_passages,
        *(i.passage for i in findings.all_candidates),
        *research_passages,
        *older_passages,
        *(unit.passage for unit in scored.units),
    ]
    return evidence


#: lexicon concepts that say what a recommendation is about (patient groups do not: "adults")
_SUBJECT_TYPES = frozenset({"condition", "drug", "drug-class", "procedure", "test"})


def _treats(passage: Passage, sources: Sources) -> set[str]:
    """The conditions and treatments a recommendation block speaks of (its population and
    intervention)."""
    rec = passage.chunk.recommendation
    if rec is None:
        return set()
    return sources.profile.concepts_in(f"{rec.population} {rec.intervention}", _SUBJECT_TYPES)


_REC_MARGIN = 0.2


def _names_every(passage: Passage, readings: list[list[str]]) -> bool:
    """A recommendation whose own words name every word of the question's subject ("we suggest
    duloxetine" for patients "with chronic low back pain"), where no lexicon knows them."""
    rec = passage.chunk.recommendation
    if rec is None or not readings:
        return False
    words = set(content_words(f"{rec.statement} {rec.population} {rec.intervention}"))
    return any(reading and all(word_found(w, words) for w in reading) for reading in readings)


def without_narrower(
    scored: Scored, question: str, profile: CorpusProfile | None = None, share: float = 0.3
) -> Scored:
    """Set aside a document on a narrower subject than another relevant one of its kind: its
    title is the other's plus up to three words the question does not use ("Familial
    hemiplegic migraine type 2" beside "Migraine" for "migraine tx?"). Words of scope
    ("diagnosis and treatment") or of a patient group ("childhood") narrow no subject.
    Relevant: at least ``share`` of the best document's score."""
    if not scored.documents:
        return scored
    floor = scored.documents[0][1] * share
    refs = {unit.document_id: unit.quote.chunk.document for unit in scored.units}
    words = {
        d: set(content_words(refs[d].title))
        for d, s in scored.documents
        if s >= floor and not KIND_WORDS.search(refs[d].title)
    }
    asked = set(content_words(question))

    def narrows(d: str, extra: set[str]) -> bool:
        named = profile.group_words(refs[d].title) if profile is not None else ()
        groups = set(content_words(" ".join(named)))
        return 0 < len(extra) <= 3 and not extra & asked and not extra <= groups

    narrower = {
        d
        for d, mine in words.items()
        for other, theirs in words.items()
        if refs[other].doc_type is refs[d].doc_type
        and theirs
        and theirs < mine
        and narrows(d, mine - theirs)
    }
    if not narrower:
        return scored
    return replace(
        scored,
        units=[unit for unit in scored.units if unit.document_id not in narrower],
        documents=[(d, s) for d, s in scored.documents if d not in narrower],
    )


def _choose_units(evidence: Evidence, scored: Scored, options: AnswerSettings) -> None:
    """The summary (the most relevant unit), the key points (the next, by maximal marginal
    relevance, up to the first screen's words, each source's in its own order), more of the
    same sources, and another guideline on the subject apart."""
    documents = evidence.documents
    quotable = [unit for unit in scored.units if unit.quote.chunk.recommendation is None]
    main = [unit for unit in quotable if unit.document_id in documents]
    guidelines = [d for d in documents if _doc_type(scored, d) is DocType.guideline]
    others: set[str] = set()
    # The most relevant document that has a unit to quote leads.
    lead_doc = next((d for d, _ in scored.documents if any(x.document_id == d for x in main)), None)
    if lead_doc is not None:
        if lead_doc in guidelines:
            # One guideline speaks for the subject; another on it goes apart.
            others = {d for d in guidelines if d != lead_doc}
        main = [unit for unit in main if unit.document_id not in others]
    evidence.recommendation_lead = _recommendation_lead(evidence, scored, options)
    if not main:
        return
    pool = Scored(units=main, query=scored.query, documents=scored.documents)
    lam = options.mmr_lambda
    # The most relevant unit of the most relevant document that can open an answer on its own.
    summary = max(main, key=lambda x: (stands_alone(x.quote), x.document_id == lead_doc, x.score))
    words = len(summary.quote.full_text.split())
    chosen = [summary]
    for unit in select_units(pool, k=3 * options.key_points, lam=lam, exclude=[summary]):
        if len(chosen) > options.key_points:
            break
        size = len(unit.quote.full_text.split())
        if words + size > options.first_screen_words:
            continue
        words += size
        chosen.append(unit)
    more = select_units(pool, k=options.more_units, lam=lam, exclude=chosen)
    order = [d for d, _ in scored.documents]
    evidence.summary = _quote(summary)
    evidence.key_points = [_quote(x) for x in in_source_order(chosen[1:], order)]
    evidence.more = [_quote(x) for x in in_source_order(more, order)]
    if others:
        extra = [unit for unit in quotable if unit.document_id in others]
        other_pool = replace(pool, units=extra)
        picked = select_units(other_pool, k=options.key_points, lam=lam)
        evidence.other_guidelines = [_quote(x) for x in in_source_order(picked, order)]


LEAD_MARGIN = 0.75


def _recommendation_lead(
    evidence: Evidence, scored: Scored, options: AnswerSettings
) -> RecItem | None:
    """The recommendation that answers first: the best-retrieved one on the subject, when its
    relevance is close to the best unit's (`LEAD_MARGIN`, on the logit scale: chosen on the
    development side of the mixed library from 0.5 and 0.75); else the best unit, when it is a
    recommendation. Retrieval over recommendations alone tells apart statements that differ
    in one word ("children with HIV", "children who are HIV-negative") better than the
    relevance of their units does."""
    findings = evidence.findings
    best = max(scored.units, key=lambda x: x.score, default=None)
    if best is None:
        return None
    candidates = [best.quote.chunk.id] if best.quote.chunk.recommendation is not None else []
    if evidence.rec_passages:
        top = evidence.rec_passages[0].chunk.id
        score = max((x.score for x in scored.units if x.quote.chunk.id == top), default=0.0)
        if logit(score) >= logit(best.score) - LEAD_MARGIN:
            candidates.insert(0, top)
    for chunk_id in candidates:
        lead = [i for i in findings.main if i.chunk.id == chunk_id]
        if lead and lead[0].rec.kind is not RecommendationKind.evidence_conclusion:
            return lead[0]
    return None


def _quote(unit: Unit) -> Quote:
    return replace(unit.quote, relevance=unit.score)


def _doc_type(scored: Scored, document_id: str) -> DocType | None:
    for unit in scored.units:
        if unit.document_id == document_id:
            return unit.quote.chunk.document.doc_type
    return None


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
