"""The offline answerer: builds the answer only from retrieved passages, with no language model.

Every content sentence is either a recommendation statement or a research sentence taken from a
passage (our own paraphrase in the corpus), or a short template sentence whose every fact (drug,
direction, grade, year) is read from the recommendation blocks it cites. That is what makes the
answer checkable: the verifier then confirms each sentence against its cited passages.

Layout: summary; From the Guidelines (grouped by direction, strongest first, special populations
apart); From the Research (relevant and non-redundant, by maximal marginal relevance);
Conflicting evidence (older or superseded sources, or reviews, that disagree with the newest
guideline); References; disclaimer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.citations import CitationBook
from assistant.intent import (
    POPULATION_LABELS,
    TREATMENT_OUTCOME_STEMS,
    Ask,
    Intent,
    Population,
    focus_matches,
    intervention_key,
)
from assistant.intent import populations_in as _populations_in
from assistant.types import Section, Sentence, SentenceKind
from ingest.grading import is_graded, is_strong
from ingest.settings import AnswerSettings
from ingest.types import (
    Chunk,
    Direction,
    DocStatus,
    DocType,
    GradeConfidence,
    Passage,
    Recommendation,
    RecommendationKind,
)


@dataclass
class _Rec:
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
    main: list[_Rec] = field(default_factory=list)
    special: dict[Population, list[_Rec]] = field(default_factory=dict)
    others: list[_Rec] = field(default_factory=list)  # other current guidelines, new ground only
    # Only when no current guideline speaks to the asked intervention: what a superseded one said.
    superseded: list[_Rec] = field(default_factory=list)
    all_candidates: list[_Rec] = field(default_factory=list)


GRADE_GROUPS: tuple[tuple[str, str], ...] = (
    ("recommended", "Recommended (strong, for)"),
    ("suggested", "Suggested (conditional, for)"),
    ("suggested-against", "Suggested against (conditional, against)"),
    ("recommended-against", "Recommended against (strong, against)"),
    ("against-unconfirmed", "Advised against (strength not confirmed)"),
    ("for-unconfirmed", "In favour (strength not confirmed)"),
    ("good-practice", "Good practice statements (ungraded; apply to all patients)"),
    ("evidence", "Evidence conclusions"),
)
# Scales other than GRADE (AAN levels, consensus statements) are grouped by direction only, each
# item keeping its own grade, strongest first.
OTHER_GROUPS: tuple[tuple[str, str], ...] = (
    ("for", "In favour"),
    ("against", "Against"),
    ("good-practice", "Good practice statements"),
    ("evidence", "Evidence conclusions"),
)


def is_grade_scale(chunk: Chunk) -> bool:
    return "grade" in (chunk.document.strength_scale or "").lower()


def group_of(rec: Recommendation, grade_scale: bool = True) -> str:
    if rec.kind is RecommendationKind.good_practice:
        return "good-practice"
    if rec.kind is RecommendationKind.evidence_conclusion:
        return "evidence"
    direction = "for" if rec.direction is Direction.for_ else "against"
    if not grade_scale:
        return direction
    if not is_graded(rec.strength):
        return f"{direction}-unconfirmed"
    strong = is_strong(rec.strength)
    if direction == "for":
        return "recommended" if strong else "suggested"
    return "recommended-against" if strong else "suggested-against"


def sort_key(item: _Rec) -> tuple:
    """Strongest first, then most certain, then retrieval order."""
    return (-item.rec.strength_rank, -item.rec.certainty_rank, item.passage.rank)


def grading_text(rec: Recommendation) -> str | None:
    """'strong recommendation; moderate certainty of evidence', or None if the text says it."""
    if rec.kind is RecommendationKind.good_practice:
        return "good practice statement"
    strength = rec.strength.strip()
    parts: list[str] = []
    if strength.lower() not in rec.statement.lower():
        self_describing = re.search(
            r"recommendation|statement|level|efficac|effective|confirmed", strength, re.I
        )
        if rec.kind is RecommendationKind.recommendation and not self_describing:
            parts.append(f"{strength} recommendation")
        else:
            parts.append(strength)
    certainty = (rec.certainty or "").strip()
    if certainty and certainty.lower() != "not graded":
        if certainty.lower() == "not confirmed":
            parts.append("certainty of evidence not confirmed")
        else:
            parts.append(f"{certainty} certainty of evidence")
    return "; ".join(parts) or None


def grade_caveat(rec: Recommendation) -> str | None:
    if rec.grade_confidence is GradeConfidence.secondary:
        return "grading seen only in secondary summaries of the guideline"
    if rec.grade_confidence is GradeConfidence.unverified:
        return "grading not confirmed against the full guideline text"
    return None


def rec_population(rec: Recommendation, document_populations: Sequence[str]) -> set[Population]:
    return _populations_in(rec.population)


def _condition_filter(items: list[_Rec], question: str) -> list[_Rec]:
    """RLS questions get RLS recommendations, PLMD questions PLMD ones."""
    wants_plmd = bool(re.search(r"\bplmd\b|periodic limb movement disorder", question, re.I))
    wants_rls = (
        bool(re.search(r"\brls\b|restless|willis|ekbom|\bwed\b", question, re.I)) or not wants_plmd
    )
    out = []
    for item in items:
        pop = item.rec.population.lower()
        is_plmd = "plmd" in pop or "periodic limb movement disorder" in pop
        if (is_plmd and wants_plmd) or (not is_plmd and wants_rls):
            out.append(item)
    return out


def select_recommendations(
    rec_passages: Sequence[Passage],
    intent: Intent,
    question: str,
    intervention_terms: set[str],
    settings: AnswerSettings,
    document_blocks: Callable[[str], list[Chunk]] | None = None,
) -> GuidelineFindings:
    """Pick the recommendations that bear on the question.

    The primary guideline is the newest current guideline among the relevant blocks; with
    `document_blocks`, all of its blocks are considered (a broad question such as "management
    of RLS" deserves the complete set, not only the blocks that happened to rank high).
    """
    items = [
        _Rec(p, p.chunk.recommendation)
        for p in rec_passages
        if p.chunk.recommendation is not None
        and (p.dense_score is None or p.dense_score >= settings.rec_floor or p.lexical_rank)
    ]
    if document_blocks is not None:
        items = _complete_primary(items, rec_passages, intent, question, document_blocks)
    findings = GuidelineFindings(all_candidates=list(items))
    items = _condition_filter(items, question)
    if intervention_terms:
        items = [i for i in items if _matches_intervention(i, intervention_terms)]
    elif intent.ask not in (Ask.management, Ask.dose) and (
        intent.focus or intent.ask is not Ask.general
    ):
        # "What are the diagnostic criteria?" or "Is RLS inherited?" is not answered by the list
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
    def doc_rank(i: _Rec) -> tuple:
        graded = i.rec.kind is not RecommendationKind.evidence_conclusion
        return (graded, i.year, -i.passage.rank)

    if intent.populations:
        # The newest guideline that speaks to the requested population leads.
        for_population = [i for i in current if rec_population(i.rec, ()) & intent.populations]
        current_for_primary = for_population or current
    else:
        current_for_primary = current
    primary = max(current_for_primary, key=doc_rank).chunk.document.id
    findings.primary_document = primary

    claimed: set[str] = set()
    for item in sorted(current, key=lambda i: (-i.year, i.passage.rank)):
        pops = rec_population(item.rec, item.chunk.document.populations)
        if intent.populations:
            if not pops & intent.populations:
                continue
        elif pops:
            if intent.ask in (Ask.management, Ask.general, Ask.dose):
                bucket = findings.special.setdefault(next(iter(sorted(pops))), [])
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


def _complete_primary(
    items: list[_Rec],
    rec_passages: Sequence[Passage],
    intent: Intent,
    question: str,
    document_blocks: Callable[[str], list[Chunk]],
) -> list[_Rec]:
    current = [
        i
        for i in _condition_filter(items, question)
        if i.chunk.document.status is DocStatus.current
        and i.chunk.document.doc_type is DocType.guideline
        and i.rec.kind is not RecommendationKind.evidence_conclusion
    ]
    if not current:
        return items
    if intent.populations:
        matching = [i for i in current if _populations_in(i.rec.population) & intent.populations]
        current = matching or current
    primary = max(current, key=lambda i: (i.year, -i.passage.rank)).chunk.document.id
    have = {i.chunk.id for i in items}
    next_rank = max((p.rank for p in rec_passages), default=0) + 1
    for chunk in document_blocks(primary):
        if chunk.recommendation is None or chunk.id in have:
            continue
        passage = Passage(chunk=chunk, rank=next_rank, score=0.0)
        next_rank += 1
        items.append(_Rec(passage, chunk.recommendation))
    return items


_STATED_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g)\b(?!/)", re.I)


def _matches_focus(item: _Rec, focus: set[str]) -> bool:
    # The block's own words and its section heading ("Prevention of augmentation"), not its
    # grading remarks ("not confirmed").
    rec = item.rec
    text = f"{item.chunk.heading} {rec.intervention} {rec.population} {rec.statement}"
    return bool(focus) and focus_matches(text, focus) > 0


def _matches_intervention(item: _Rec, terms: set[str]) -> bool:
    text = f"{item.rec.intervention} {item.rec.statement}".lower()
    return any(re.search(rf"\b{re.escape(t.lower())}", text) for t in terms)


# -- sentences --------------------------------------------------------------------------------


def recommendation_sentence(item: _Rec, book: CitationBook) -> Sentence:
    rec = item.rec
    statement = rec.statement.strip().rstrip(".")
    grading = grading_text(rec)
    return Sentence(
        text=f"{statement} ({grading})." if grading else f"{statement}.",
        citations=book.cite([item.chunk]),
        kind=SentenceKind.recommendation,
        caveat=grade_caveat(rec),
    )


def guideline_section(
    findings: GuidelineFindings, book: CitationBook, key_points: Sequence[Sentence] = ()
) -> Section | None:
    """Recommendations grouped by grade, after the guideline text that answers the question's
    own subject (a threshold, a criterion, a definition) when there is such text."""
    found = findings.main or findings.special or findings.others or findings.superseded
    if not (found or key_points):
        return None
    section = Section(key="guidelines", title="From the Guidelines")
    if key_points:
        section.subsections.append(
            Section(key="key-points", title="What the guidelines say", sentences=list(key_points))
        )
    section.subsections.extend(_grouped(findings.main, book, prefix=""))
    if findings.others:
        other = Section(key="other-guidelines", title="Other current guidelines")
        other.sentences = [recommendation_sentence(i, book) for i in findings.others]
        section.subsections.append(other)
    if findings.superseded:
        older = Section(
            key="superseded",
            title="Superseded guidance (no current guideline in the sources addresses this)",
        )
        older.sentences = [recommendation_sentence(i, book) for i in findings.superseded]
        section.subsections.append(older)
    for pop in (Population.esrd, Population.children, Population.pregnancy):
        bucket = findings.special.get(pop)
        if bucket:
            sub = Section(key=f"population-{pop}", title=POPULATION_LABELS[pop])
            sub.sentences = [recommendation_sentence(i, book) for i in bucket]
            section.subsections.append(sub)
    return section


def _grouped(items: list[_Rec], book: CitationBook, prefix: str) -> list[Section]:
    grade_scale = bool(items) and is_grade_scale(items[0].chunk)
    groups = GRADE_GROUPS if grade_scale else OTHER_GROUPS
    by_group: dict[str, list[_Rec]] = defaultdict(list)
    for item in items:
        by_group[group_of(item.rec, grade_scale)].append(item)
    out = []
    for key, title in groups:
        if by_group.get(key):
            sub = Section(key=f"{prefix}{key}", title=title)
            sub.sentences = [
                recommendation_sentence(i, book) for i in sorted(by_group[key], key=sort_key)
            ]
            out.append(sub)
    return out


# -- research ---------------------------------------------------------------------------------


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


# -- conflicts --------------------------------------------------------------------------------

_POSITIVE_CUE = re.compile(
    r"\b(first[- ]line|first[- ]choice|initial (?:therapy|treatment)|treatment of choice|"
    r"mainstay|standard (?:therapy|treatment)|recommended|efficacious|effective|approved)\b",
    re.I,
)
_NEGATIVE_CUE = re.compile(r"\b(against|not recommended|avoid|no longer|suggests against)\b", re.I)


@dataclass
class Conflict:
    newer: list[_Rec]
    older_recs: list[_Rec] = field(default_factory=list)
    older_sentences: list[tuple[str, Chunk]] = field(default_factory=list)


def find_conflicts(
    findings: GuidelineFindings,
    research_candidates: Sequence[tuple[str, Chunk]],
    class_terms: dict[str, set[str]],
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
    populations_of: dict[str, set[frozenset[Population]]] = defaultdict(set)
    for item in against:
        populations_of[item.key].add(frozenset(_populations_in(item.rec.population)))
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
            frozenset(_populations_in(item.rec.population)) in populations_of[item.key]
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


def _names_its_source(sentence: str, chunk: Chunk) -> bool:
    doc = chunk.document
    names = [doc.journal, doc.organization, _acronym(doc.organization or doc.journal or "")]
    year_named = bool(doc.year) and str(doc.year) in sentence
    return year_named and any(n and n in sentence for n in names)


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def _short_source(chunk: Chunk) -> str:
    doc = chunk.document
    org = doc.organization or doc.journal or "A source"
    acronym = _acronym(org)
    review = (
        doc.doc_type is not DocType.guideline or "efficacy" in (doc.strength_scale or "").lower()
    )
    kind = "review" if review else "guideline"
    return f"the {acronym} {doc.year} {kind}" if doc.year else f"the {acronym} {kind}"


_KNOWN_ACRONYMS = {
    "american academy of sleep medicine": "AASM",
    "american academy of neurology": "AAN",
    "international restless legs syndrome study group": "IRLSSG",
    "movement disorder society": "MDS",
    "international parkinson and movement disorder society": "MDS",
}


def _acronym(org: str) -> str:
    """'American Academy of Sleep Medicine' -> 'AASM'; an acronym in brackets wins."""
    bracket = re.search(r"\(([A-Z]{2,})\)", org)
    if bracket:
        return bracket.group(1)
    lowered = org.lower()
    for name, short in _KNOWN_ACRONYMS.items():
        if lowered.startswith(name):
            return short
    return org


def join_names(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _older_verb(items: list[_Rec]) -> str:
    kinds = {i.rec.kind for i in items}
    return "rated" if kinds == {RecommendationKind.evidence_conclusion} else "graded"


def conflict_section(conflict: Conflict, book: CitationBook) -> Section:
    section = Section(key="conflicts", title="Conflicting evidence")
    by_doc: dict[str, list[_Rec]] = defaultdict(list)
    for item in conflict.older_recs:
        by_doc[item.chunk.document.id].append(item)
    disputed: set[str] = set()
    for items in sorted(by_doc.values(), key=lambda its: (its[0].year, its[0].chunk.document.id)):
        # One grade per intervention and source: the strongest it gave.
        best: dict[str, _Rec] = {}
        for item in sorted(items, key=sort_key):
            best.setdefault(item.key, item)
        grades: dict[str, list[_Rec]] = defaultdict(list)
        for item in best.values():
            grades[item.rec.strength].append(item)
        clauses = [
            f"{join_names([i.rec.intervention for i in its])} as {grade}"
            for grade, its in sorted(grades.items(), key=lambda g: -g[1][0].rec.strength_rank)
        ]
        disputed.update(best)
        first = items[0].chunk
        status = " (now superseded)" if first.document.status is DocStatus.superseded else ""
        source = _short_source(first)
        section.sentences.append(
            Sentence(
                text=f"{source[0].upper()}{source[1:]}{status} {_older_verb(items)} "
                f"{'; '.join(clauses)}, in favour of their use.",
                citations=book.cite([i.chunk for i in best.values()]),
                kind=SentenceKind.conflict,
            )
        )
    graded_sources = set(by_doc)
    prose = list(
        {
            t: (t, c) for t, c in conflict.older_sentences if c.document.id not in graded_sources
        }.values()
    )
    for text, chunk in prose[:3]:
        body = text.strip()
        if not _names_its_source(body, chunk):
            body = f"According to {_short_source(chunk)}, {_lower_first(body)}"
        section.sentences.append(
            Sentence(
                text=body,
                citations=book.cite([chunk]),
                kind=SentenceKind.conflict,
            )
        )
        disputed.update(i.key for i in conflict.newer if i.key in text.lower())
    newest = [i for i in conflict.newer if i.key in disputed] or conflict.newer
    source = _short_source(newest[0].chunk)
    clauses = against_clauses(newest)
    section.sentences.append(
        Sentence(
            text=f"{source[0].upper()}{source[1:]}, the newer source, {'; it '.join(clauses)}.",
            citations=book.cite([i.chunk for i in newest]),
            kind=SentenceKind.conflict,
        )
    )
    return section


def against_clauses(items: Sequence[_Rec]) -> list[str]:
    """'suggests against the standard use of X because of the risk of augmentation', then the rest.

    "Standard use" is the guideline's wording for the dopaminergic drugs only; other drugs are
    said to be advised against, with "recommends" kept for strong recommendations.
    """
    augmentation = [i for i in items if "augmentation" in i.chunk.text.lower()]
    strong = [i for i in items if i not in augmentation and is_strong(i.rec.strength)]
    other = [i for i in items if i not in augmentation and i not in strong]
    clauses = []
    if augmentation:
        names = join_names([i.rec.intervention for i in augmentation])
        clauses.append(
            f"suggests against the standard use of {names} because of the risk of augmentation"
        )
    if strong:
        clauses.append(f"recommends against {join_names([i.rec.intervention for i in strong])}")
    if other:
        clauses.append(f"advises against {join_names([i.rec.intervention for i in other])}")
    return clauses


# -- summary ----------------------------------------------------------------------------------


def _scope(items: Sequence[_Rec], condition: str) -> str:
    """Name the condition the recommendations are about, not only the one the question named
    (a question on PLMD and RLS must not present RLS recommendations as PLMD ones)."""
    pops = " ".join(i.rec.population.lower() for i in items)
    if "plmd" in pops and "rls" not in pops:
        return "periodic limb movement disorder"
    if "rls" in pops or "restless legs" in pops:
        return "restless legs syndrome"
    return condition


def summary_sentences(
    findings: GuidelineFindings, condition: str, intent: Intent, book: CitationBook
) -> list[Sentence]:
    """What the primary guideline recommends, then what it advises against: one sentence each,
    each citing only the blocks it names (so each can be checked on its own)."""
    graded = [i for i in findings.main if i.rec.kind is RecommendationKind.recommendation]
    if not graded:
        return []
    scope = _scope(graded, condition)
    if intent.populations:
        labels = [_lower_first(POPULATION_LABELS[p]) for p in sorted(intent.populations)]
        scope = f"{scope} in {join_names(labels)}" if scope else join_names(labels)
    source = _short_source(graded[0].chunk)
    grade_scale = is_grade_scale(graded[0].chunk)
    out: list[Sentence] = []

    group, verb = ("recommended", "makes strong recommendations for")
    if not grade_scale:
        group, verb = ("for", "recommends")
    chosen = sorted((i for i in graded if group_of(i.rec, grade_scale) == group), key=sort_key)
    if grade_scale and not chosen:
        group, verb = ("suggested", "suggests")
        chosen = sorted((i for i in graded if group_of(i.rec, grade_scale) == group), key=sort_key)
    lead = f"For {scope}, {source}" if scope else source[0].upper() + source[1:]
    if chosen:
        names = list(dict.fromkeys(i.rec.intervention for i in chosen))
        shown = names[:5] + (["others"] if len(names) > 5 else [])
        out.append(
            Sentence(
                text=f"{lead} {verb} {join_names(shown)}.",
                citations=book.cite(i.chunk for i in chosen[:5]),
                kind=SentenceKind.summary,
            )
        )
    against = sorted((i for i in graded if i.rec.direction is Direction.against), key=sort_key)
    augmentation = [i for i in against if "augmentation" in i.chunk.text.lower()]
    named = augmentation or against[:4]
    if named:
        subject = lead if not out else source[0].upper() + source[1:]
        clauses = against_clauses(named)
        out.append(
            Sentence(
                text=f"{subject} {'; it '.join(clauses)}.",
                citations=book.cite(i.chunk for i in named),
                kind=SentenceKind.summary,
            )
        )
    return out
