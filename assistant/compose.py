"""Step 4 of an answer (offline): write it only from the selected evidence, with no language model.

Every content sentence is either a recommendation statement or a research sentence taken from a
passage (our own paraphrase in the corpus), or a short template sentence whose every fact (drug,
direction, grade, year) is read from the recommendation blocks it cites. That is what makes the
answer checkable: the verifier then confirms each sentence against its cited passages.

Layout: the first screen (the summary, up to five key points, conflicting evidence: older or
superseded sources that disagree with the newest guideline), then, folded under More from the
sources: From the Guidelines (grouped by direction, strongest first, special populations apart),
more of the answering sources, other guidelines on the subject; References; disclaimer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.citations import CitationBook
from assistant.context import Sources
from assistant.evidence import (
    Conflict,
    Evidence,
    GuidelineFindings,
    RecItem,
    sort_key,
)
from assistant.intent import Ask, Intent
from assistant.profile import CorpusProfile
from assistant.relevance import Quote
from assistant.types import NormalizationNote, Section, Sentence, SentenceKind
from assistant.understand import Understanding
from ingest.grading import certainty_rank, is_graded, is_strong
from ingest.types import (
    Chunk,
    Direction,
    DocStatus,
    DocType,
    GradeConfidence,
    Recommendation,
    RecommendationKind,
)

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


def grading_text(rec: Recommendation) -> str | None:
    """'strong recommendation; moderate certainty of evidence', or None if the text says it."""
    strength = rec.strength.strip()
    if rec.kind is RecommendationKind.good_practice:  # as printed: "Best practice statement"
        default = "good practice statement"
        return strength if strength and strength.lower() != default else default
    parts: list[str] = []
    graded_by_evidence_only = strength.lower() == "not graded" and certainty_rank(rec.certainty) > 0
    if strength.lower() not in rec.statement.lower() and not graded_by_evidence_only:
        # a label ("Grade B", "strong") needs the word; a phrase (a legend's category,
        # "Recommended for adults with a risk factor") says what it is
        self_describing = len(strength.split()) > 3 or re.search(
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
        elif re.search(r"evidence|certainty|quality|type|level", certainty, re.I):
            parts.append(certainty)  # "moderate-certainty evidence", "evidence type: 3"
        else:
            parts.append(f"{certainty} certainty of evidence")
    return "; ".join(parts) or None


def grade_caveat(rec: Recommendation) -> str | None:
    if rec.grade_confidence is GradeConfidence.secondary:
        return "grading seen only in secondary summaries of the guideline"
    if rec.grade_confidence is GradeConfidence.unverified:
        return "grading not confirmed against the full guideline text"
    return None


# -- sentences --------------------------------------------------------------------------------


def recommendation_sentence(item: RecItem, book: CitationBook) -> Sentence:
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
    findings: GuidelineFindings,
    book: CitationBook,
    profile: CorpusProfile,
) -> Section | None:
    """Recommendations grouped by grade; other guidelines on the same subject apart."""
    found = findings.main or findings.special or findings.others or findings.superseded
    if not found:
        return None
    section = Section(key="guidelines", title="From the Guidelines")
    section.subsections.extend(_grouped(findings.main, book, prefix=""))
    if findings.others:
        other = Section(key="other-guidelines", title="Other guidelines")
        other.sentences = [recommendation_sentence(i, book) for i in findings.others]
        section.subsections.append(other)
    if findings.superseded:
        older = Section(
            key="superseded",
            title="Superseded guidance (no current guideline in the sources addresses this)",
        )
        older.sentences = [recommendation_sentence(i, book) for i in findings.superseded]
        section.subsections.append(older)
    for group in profile.ordered_groups():
        bucket = findings.special.get(group)
        if bucket:
            sub = Section(key=f"population-{group}", title=profile.group_label(group))
            sub.sentences = [recommendation_sentence(i, book) for i in bucket]
            section.subsections.append(sub)
    return section


def _grouped(items: list[RecItem], book: CitationBook, prefix: str) -> list[Section]:
    grade_scale = bool(items) and is_grade_scale(items[0].chunk)
    groups = GRADE_GROUPS if grade_scale else OTHER_GROUPS
    by_group: dict[str, list[RecItem]] = defaultdict(list)
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


# -- conflicts --------------------------------------------------------------------------------


def _names_its_source(sentence: str, chunk: Chunk, profile: CorpusProfile) -> bool:
    doc = chunk.document
    names = [doc.journal, doc.organization, profile.short_name(doc.organization or doc.journal)]
    year_named = bool(doc.year) and str(doc.year) in sentence
    return year_named and any(n and n in sentence for n in names)


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def _short_source(chunk: Chunk, profile: CorpusProfile) -> str:
    doc = chunk.document
    org = doc.organization or doc.journal or "A source"
    acronym = profile.short_name(org)
    review = (
        doc.doc_type is not DocType.guideline or "efficacy" in (doc.strength_scale or "").lower()
    )
    kind = "review" if review else "guideline"
    return f"the {acronym} {doc.year} {kind}" if doc.year else f"the {acronym} {kind}"


def join_names(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _older_verb(items: list[RecItem]) -> str:
    kinds = {i.rec.kind for i in items}
    return "rated" if kinds == {RecommendationKind.evidence_conclusion} else "graded"


def conflict_section(conflict: Conflict, book: CitationBook, profile: CorpusProfile) -> Section:
    section = Section(key="conflicts", title="Conflicting evidence")
    by_doc: dict[str, list[RecItem]] = defaultdict(list)
    for item in conflict.older_recs:
        by_doc[item.chunk.document.id].append(item)
    disputed: set[str] = set()
    for items in sorted(by_doc.values(), key=lambda its: (its[0].year, its[0].chunk.document.id)):
        # One grade per intervention and source: the strongest it gave.
        best: dict[str, RecItem] = {}
        for item in sorted(items, key=sort_key):
            best.setdefault(item.key, item)
        grades: dict[str, list[RecItem]] = defaultdict(list)
        for item in best.values():
            grades[item.rec.strength].append(item)
        clauses = [
            f"{join_names([i.rec.intervention for i in its])} as {grade}"
            for grade, its in sorted(grades.items(), key=lambda g: -g[1][0].rec.strength_rank)
        ]
        disputed.update(best)
        first = items[0].chunk
        status = " (now superseded)" if first.document.status is DocStatus.superseded else ""
        source = _short_source(first, profile)
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
        if not _names_its_source(body, chunk, profile):
            body = f"According to {_short_source(chunk, profile)}, {_lower_first(body)}"
        section.sentences.append(
            Sentence(
                text=body,
                citations=book.cite([chunk]),
                kind=SentenceKind.conflict,
            )
        )
        disputed.update(i.key for i in conflict.newer if i.key in text.lower())
    newest = [i for i in conflict.newer if i.key in disputed] or conflict.newer
    source = _short_source(newest[0].chunk, profile)
    clauses = against_clauses(newest)
    section.sentences.append(
        Sentence(
            text=f"{source[0].upper()}{source[1:]}, the newer source, {'; it '.join(clauses)}.",
            citations=book.cite([i.chunk for i in newest]),
            kind=SentenceKind.conflict,
        )
    )
    return section


_AGAINST = re.compile(
    r"\b(recommends|suggests|advises)\s+against\s+"
    r"(the\s+(?:standard|routine)\s+use\s+of|the\s+use\s+of|using)?",
    re.I,
)
_REASON = re.compile(r"\b(?:the reason is|because of|due to|owing to)\s+(?:the\s+)?([^.;]+)", re.I)


def _against_wording(rec: Recommendation) -> tuple[str, str]:
    """How the source words its advice against ("suggests against the standard use of") and
    the reason it gives, both read from the block; the strength decides the verb otherwise."""
    match = _AGAINST.search(rec.statement)
    if match:
        phrase = f"{match.group(1).lower()} against {(match.group(2) or '').lower()}".strip()
    else:
        phrase = "recommends against" if is_strong(rec.strength) else "advises against"
    reason = _REASON.search(f"{rec.statement} {rec.remarks or ''}")
    return phrase, reason.group(1).strip() if reason else ""


def _against_groups(items: Sequence[RecItem]) -> list[tuple[str, str, list[RecItem]]]:
    groups: dict[tuple[str, str], list[RecItem]] = {}
    for item in items:
        groups.setdefault(_against_wording(item.rec), []).append(item)
    return [(phrase, reason, its) for (phrase, reason), its in groups.items()]


def against_clauses(items: Sequence[RecItem]) -> list[str]:
    """'suggests against the standard use of X and Y because of <the reason the source
    gives>', one clause per wording and reason, in the source's own verbs."""
    clauses = []
    for phrase, reason, its in _against_groups(items):
        clause = f"{phrase} {join_names([i.rec.intervention for i in its])}"
        if reason:
            clause += f" because of the {reason}"
        clauses.append(clause)
    return clauses


# -- summary ----------------------------------------------------------------------------------


def _scope(items: Sequence[RecItem], condition: str, profile: CorpusProfile) -> str:
    """Name the condition the recommendations are about, not only the one the question named
    (a question on two conditions must not present one's recommendations as the other's)."""
    treated = [profile.subject_condition(i.rec.population) for i in items]
    named = [c for c in treated if c]
    if named:
        return profile.condition_name(max(set(named), key=named.count))
    return condition


def summary_sentences(
    findings: GuidelineFindings,
    condition: str,
    intent: Intent,
    book: CitationBook,
    profile: CorpusProfile,
) -> list[Sentence]:
    """What the primary guideline recommends, then what it advises against: one sentence each,
    each citing only the blocks it names (so each can be checked on its own)."""
    graded = [i for i in findings.main if i.rec.kind is RecommendationKind.recommendation]
    if not graded:
        return []
    scope = _scope(graded, condition, profile)
    if intent.populations:
        labels = [_lower_first(profile.group_label(p)) for p in sorted(intent.populations)]
        scope = f"{scope} in {join_names(labels)}" if scope else join_names(labels)
    source = _short_source(graded[0].chunk, profile)
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
    # Advice against that the source gives one reason for is said together, with the reason.
    shared = [its for _, reason, its in _against_groups(against) if reason and len(its) > 1]
    named = max(shared, key=len) if shared else against[:4]
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


# -- the step ---------------------------------------------------------------------------------


@dataclass
class Draft:
    """Sections written from the evidence, before verification, and the citations they use."""

    sections: list[Section]
    book: CitationBook
    notes: list[NormalizationNote] = field(default_factory=list)
    #: set when the composer finds nothing it may say (an LLM that declines, say): why
    refusal: str | None = None
    refusal_text: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def quote_sentence(quote: Quote, book: CitationBook, kind: SentenceKind) -> Sentence:
    """A unit of source text as written, a list as its items."""
    return Sentence(
        text=quote.text, items=list(quote.items), citations=book.cite([quote.chunk]), kind=kind
    )


def compose_offline(u: Understanding, evidence: Evidence, sources: Sources) -> Draft:
    """The first screen (summary, key points, conflicts), then, folded, More from the sources:
    the guidelines' recommendations, more of the answering sources, other guidelines on the
    subject. Every sentence is quoted from a passage or filled in from the recommendation
    blocks it cites."""
    profile = sources.profile
    intent = evidence.intent
    findings = evidence.findings
    book = CitationBook()
    summary: list[Sentence] = []
    points: list[Sentence] = []
    quoted = [q for q in (evidence.summary, *evidence.key_points) if q is not None]
    more = list(evidence.more)
    if findings.main and intent.ask in (Ask.management, Ask.dose) and not intent.focus:
        # "How is C managed?", a question with no subject of its own beyond the condition:
        # what the newest guideline recommends, strongest first; the source text goes with the
        # rest of the sources. A question on a subject ("what blood level ...") is
        # summarised by its most relevant unit.
        summary = summary_sentences(findings, u.topic.condition or "", intent, book, profile)
    if summary:
        more = quoted + more
    elif evidence.recommendation_lead is not None:
        # A recommendation on exactly what was asked answers it first.
        lead = recommendation_sentence(evidence.recommendation_lead, book)
        summary = [lead.model_copy(update={"kind": SentenceKind.summary})]
        # The first screen keeps its length: what the recommendation leaves room for.
        room = sources.options.first_screen_words - len(" ".join([lead.text, *lead.items]).split())
        shown: list[Quote] = []
        for q in quoted:
            size = len(q.full_text.split())
            if size <= room:
                shown.append(q)
                room -= size
        more = [q for q in quoted if q not in shown] + more
        points = [quote_sentence(q, book, _kind_of(q)) for q in shown]
    elif evidence.summary is not None:
        summary = [quote_sentence(evidence.summary, book, SentenceKind.summary)]
        points = [quote_sentence(q, book, _kind_of(q)) for q in evidence.key_points]
    sections: list[Section] = []
    if summary:
        sections.append(Section(key="summary", title="Summary", sentences=summary))
    if points:
        sections.append(Section(key="key-points", title="Key points", sentences=points))
    folded_conflict: Section | None = None
    if evidence.conflict:
        conflict = conflict_section(evidence.conflict, book, profile)
        if len(conflict.sentences) > 2:
            # The flag on the first screen: the oldest disagreeing source and the newest
            # guideline's position; the other disagreeing sources under More.
            middle = conflict.sentences[1:-1]
            conflict.sentences = [conflict.sentences[0], conflict.sentences[-1]]
            folded_conflict = Section(
                key="conflicts-more",
                title="Other sources that disagree",
                sentences=middle,
                folded=True,
            )
        sections.append(conflict)
    guidelines = guideline_section(findings, book, profile)
    if guidelines:
        sections.append(guidelines.model_copy(update={"folded": True}))
    if folded_conflict is not None:
        sections.append(folded_conflict)
    more_sentences = [quote_sentence(q, book, _kind_of(q)) for q in more]
    if more_sentences:
        sections.append(
            Section(key="sources", title="From the sources", sentences=more_sentences, folded=True)
        )
    others = [
        quote_sentence(q, book, SentenceKind.guideline_text) for q in evidence.other_guidelines
    ]
    if others:
        sections.append(
            Section(key="other-guidelines", title="Other guidelines", sentences=others, folded=True)
        )
    return Draft(sections=sections, book=book)


def _kind_of(quote: Quote) -> SentenceKind:
    guideline = quote.chunk.document.doc_type is DocType.guideline
    return SentenceKind.guideline_text if guideline else SentenceKind.research
