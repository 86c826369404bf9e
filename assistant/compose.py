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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.citations import CitationBook
from assistant.intent import POPULATION_LABELS, Ask, Intent, Population, intervention_key
from assistant.intent import populations_in as _populations_in
from assistant.types import Section, Sentence, SentenceKind
from ingest.grading import is_strong
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
    all_candidates: list[_Rec] = field(default_factory=list)


GROUPS: tuple[tuple[str, str], ...] = (
    ("recommended", "Recommended (strong, for)"),
    ("suggested", "Suggested (conditional, for)"),
    ("suggested-against", "Suggested against (conditional, against)"),
    ("recommended-against", "Recommended against (strong, against)"),
    ("good-practice", "Good practice statements (ungraded; apply to all patients)"),
    ("evidence", "Evidence conclusions"),
)


def group_of(rec: Recommendation) -> str:
    if rec.kind is RecommendationKind.good_practice:
        return "good-practice"
    if rec.kind is RecommendationKind.evidence_conclusion:
        return "evidence"
    strong = is_strong(rec.strength)
    if rec.direction is Direction.for_:
        return "recommended" if strong else "suggested"
    return "recommended-against" if strong else "suggested-against"


def sort_key(item: _Rec) -> tuple:
    """Strongest first, then most certain, then retrieval order."""
    return (-item.rec.strength_rank, -item.rec.certainty_rank, item.passage.rank)


def grading_text(rec: Recommendation) -> str:
    if rec.kind is RecommendationKind.good_practice:
        return "good practice statement"
    parts = [f"{rec.strength} {'recommendation' if 'level' not in rec.strength.lower() else ''}"]
    if rec.certainty and rec.certainty.lower() not in {"not graded", "not confirmed"}:
        parts.append(f"{rec.certainty} certainty of evidence")
    elif rec.certainty:
        parts.append(f"certainty {rec.certainty}")
    return "; ".join(re.sub(r"\s+", " ", p).strip() for p in parts)


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
) -> GuidelineFindings:
    items = [
        _Rec(p, p.chunk.recommendation)
        for p in rec_passages
        if p.chunk.recommendation is not None
        and (p.dense_score is None or p.dense_score >= settings.rec_floor or p.lexical_rank)
    ]
    findings = GuidelineFindings(all_candidates=list(items))
    items = _condition_filter(items, question)
    if intervention_terms:
        items = [i for i in items if _matches_intervention(i, intervention_terms)]

    current = [
        i
        for i in items
        if i.chunk.document.status is DocStatus.current
        and i.chunk.document.doc_type is DocType.guideline
    ]
    if not current:
        return findings

    # The primary guideline: the newest current guideline with a relevant recommendation,
    # graded recommendations outranking evidence conclusions.
    def doc_rank(i: _Rec) -> tuple:
        graded = i.rec.kind is not RecommendationKind.evidence_conclusion
        return (graded, i.year, -i.passage.rank)

    primary = max(current, key=doc_rank).chunk.document.id
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
        elif (
            item.key not in claimed and item.rec.kind is not RecommendationKind.evidence_conclusion
        ):
            findings.others.append(item)
            claimed.add(item.key)
    findings.main.sort(key=sort_key)
    findings.others.sort(key=sort_key)
    for pop, bucket in findings.special.items():
        bucket.sort(key=sort_key)
        findings.special[pop] = bucket[: settings.max_per_special_population]
    return findings


def _matches_intervention(item: _Rec, terms: set[str]) -> bool:
    text = f"{item.rec.intervention} {item.rec.statement}".lower()
    return any(re.search(rf"\b{re.escape(t.lower())}", text) for t in terms)


# -- sentences --------------------------------------------------------------------------------


def recommendation_sentence(item: _Rec, book: CitationBook) -> Sentence:
    rec = item.rec
    statement = rec.statement.strip().rstrip(".")
    return Sentence(
        text=f"{statement} ({grading_text(rec)}).",
        citations=book.cite([item.chunk]),
        kind=SentenceKind.recommendation,
        caveat=grade_caveat(rec),
    )


def guideline_section(findings: GuidelineFindings, book: CitationBook) -> Section | None:
    if not (findings.main or findings.special or findings.others):
        return None
    section = Section(key="guidelines", title="From the Guidelines")
    section.subsections.extend(_grouped(findings.main, book, prefix=""))
    if findings.others:
        other = Section(key="other-guidelines", title="Other current guidelines")
        other.sentences = [recommendation_sentence(i, book) for i in findings.others]
        section.subsections.append(other)
    for pop in (Population.esrd, Population.children, Population.pregnancy):
        bucket = findings.special.get(pop)
        if bucket:
            sub = Section(key=f"population-{pop}", title=POPULATION_LABELS[pop])
            sub.sentences = [recommendation_sentence(i, book) for i in bucket]
            section.subsections.append(sub)
    return section


def _grouped(items: list[_Rec], book: CitationBook, prefix: str) -> list[Section]:
    by_group: dict[str, list[_Rec]] = defaultdict(list)
    for item in items:
        by_group[group_of(item.rec)].append(item)
    out = []
    for key, title in GROUPS:
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
) -> list[ResearchSentence]:
    """Maximal marginal relevance: relevant to the query, unlike what was already picked."""
    if not candidates:
        return []
    relevance = vectors @ query_vec
    chosen: list[int] = []
    remaining = [i for i in range(len(candidates)) if relevance[i] >= floor]
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
    names = set(keys)
    for key in keys:
        names |= class_terms.get(key, set())
    conflict = Conflict(newer=sorted(against, key=sort_key))
    for item in findings.all_candidates:
        doc = item.chunk.document
        if doc.id == findings.primary_document or item.rec.direction is not Direction.for_:
            continue
        older = doc.status is DocStatus.superseded or (doc.year or 0) < primary_year
        if older and item.key in keys:
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


def _short_source(chunk: Chunk) -> str:
    doc = chunk.document
    org = doc.organization or doc.journal or "A source"
    acronym = _acronym(org)
    kind = "guideline" if doc.doc_type is DocType.guideline else "review"
    return f"the {acronym} {doc.year} {kind}" if doc.year else f"the {acronym} {kind}"


_KNOWN_ACRONYMS = {
    "american academy of sleep medicine": "AASM",
    "american academy of neurology": "AAN",
    "international restless legs syndrome study group": "IRLSSG",
    "movement disorder society": "MDS",
    "international parkinson and movement disorder society": "MDS",
}


def _acronym(org: str) -> str:
    lowered = org.lower()
    for name, short in _KNOWN_ACRONYMS.items():
        if lowered.startswith(name):
            return short
    if len(org) <= 12:
        return org
    return org


def join_names(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def conflict_section(conflict: Conflict, book: CitationBook) -> Section:
    section = Section(key="conflicts", title="Conflicting evidence")
    by_doc: dict[str, list[_Rec]] = defaultdict(list)
    for item in conflict.older_recs:
        by_doc[item.chunk.document.id].append(item)
    for items in sorted(by_doc.values(), key=lambda its: its[0].year):
        first = items[0].chunk
        grades: dict[str, list[str]] = defaultdict(list)
        for item in sorted(items, key=sort_key):
            grades[item.rec.strength].append(item.rec.intervention)
        clauses = [f"{join_names(drugs)} as {grade}" for grade, drugs in grades.items()]
        status = ""
        if first.document.status is DocStatus.superseded:
            status = " (now superseded)"
        source = _short_source(first)
        section.sentences.append(
            Sentence(
                text=f"{source[0].upper()}{source[1:]}{status} recommended {'; '.join(clauses)}.",
                citations=book.cite([i.chunk for i in items]),
                kind=SentenceKind.conflict,
            )
        )
    for text, chunk in conflict.older_sentences[:3]:
        lead = _short_source(chunk)
        body = text.strip()
        if len(body) > 1 and body[1].islower():
            body = body[0].lower() + body[1:]
        section.sentences.append(
            Sentence(
                text=f"According to {lead}, {body}",
                citations=book.cite([chunk]),
                kind=SentenceKind.conflict,
            )
        )
    newest = conflict.newer
    source = _short_source(newest[0].chunk)
    mentions_augmentation = any("augmentation" in i.chunk.text.lower() for i in newest)
    reason = " because of the risk of augmentation" if mentions_augmentation else ""
    strong = [i for i in newest if is_strong(i.rec.strength)]
    weak = [i for i in newest if not is_strong(i.rec.strength)]
    verbs = []
    if weak:
        verbs.append(
            f"suggests against the standard use of {join_names([i.rec.intervention for i in weak])}"
        )
    if strong:
        verbs.append(f"recommends against {join_names([i.rec.intervention for i in strong])}")
    section.sentences.append(
        Sentence(
            text=f"{source[0].upper()}{source[1:]}, the newer source, {' and '.join(verbs)}"
            f"{reason}.",
            citations=book.cite([i.chunk for i in newest]),
            kind=SentenceKind.conflict,
        )
    )
    return section


# -- summary ----------------------------------------------------------------------------------


def summary_sentence(
    findings: GuidelineFindings, condition: str, intent: Intent, book: CitationBook
) -> Sentence | None:
    items = findings.main
    scope = condition
    if intent.populations:
        labels = [POPULATION_LABELS[p].lower() for p in sorted(intent.populations)]
        scope = f"{condition} in {join_names(labels)}"
    graded = [i for i in items if i.rec.kind is RecommendationKind.recommendation]
    if not graded:
        return None
    source = _short_source(graded[0].chunk)
    parts: list[str] = []
    cited: list[Chunk] = []
    for group, verb in (
        ("recommended", "recommends"),
        ("suggested", "suggests"),
        ("suggested-against", "suggests against the standard use of"),
        ("recommended-against", "recommends against"),
    ):
        chosen = [i for i in graded if group_of(i.rec) == group]
        if not chosen:
            continue
        if group == "suggested" and len(chosen) > 3 and parts:
            parts.append("suggests several other options")
            continue
        names = [i.rec.intervention for i in chosen][:6]
        parts.append(f"{verb} {join_names(names)}")
        cited.extend(i.chunk for i in chosen[:6])
    if not parts:
        return None
    strong_first = parts[0].startswith("recommends ") and not parts[0].startswith(
        "recommends against"
    )
    lead = f"For {scope}, {source}"
    text = f"{lead} {'strongly ' if strong_first else ''}{join_names(parts)}."
    text = text.replace("strongly recommends", "strongly recommends")
    return Sentence(text=text, citations=book.cite(cited), kind=SentenceKind.summary)
