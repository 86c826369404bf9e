"""Typed data of the answer: sections -> sentences -> citations -> chunk ids.

Renderers (Markdown, text, JSON), the UI and the evals read these and nothing else.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from ingest.types import DocumentRef, Passage


class ConceptMatch(BaseModel):
    """One span of the question mapped to a lexicon concept."""

    span: str = Field(description="Text as the user wrote it.")
    concept_id: str
    canonical: str = Field(description="Canonical name of the concept.")
    concept_type: str | None = Field(
        default=None, description="condition | drug | drug-class | test | procedure | ..."
    )
    match_type: str = Field(
        description="exact | abbreviation | brand | misspelling | fuzzy | wrong-expansion | "
        "unrecognized-shorthand | initialism"
    )
    confidence: float = Field(ge=0, le=1)
    alternatives: list[str] = Field(
        default_factory=list, description="Other plausible concept ids, likeliest first."
    )


class NormalizationNote(BaseModel):
    """What we told the user about how we read their words."""

    span: str
    message: str = Field(description="e.g. \"'RESLEG' is not a recognized medical term; ...\"")
    concept_id: str | None = None
    confidence: float = Field(default=1.0, ge=0, le=1)


class NormalizedQuery(BaseModel):
    original: str
    rewritten: str = Field(description="Question with recognised terms in canonical form.")
    matches: list[ConceptMatch] = Field(default_factory=list)
    notes: list[NormalizationNote] = Field(default_factory=list)
    unrecognized: list[str] = Field(
        default_factory=list, description="Terms that look medical but match nothing."
    )

    @property
    def concept_ids(self) -> list[str]:
        return [m.concept_id for m in self.matches]


class Citation(BaseModel):
    """A numbered reference to one retrieved passage."""

    number: int = Field(ge=1, description="Reference number, in order of first use.")
    chunk_id: str
    document_id: str
    support_score: float | None = Field(
        default=None, description="How well the cited passage supports the sentence (0-1)."
    )


class SentenceKind(StrEnum):
    summary = "summary"
    recommendation = "recommendation"
    guideline_text = "guideline_text"
    research = "research"
    conflict = "conflict"
    note = "note"
    abstention = "abstention"
    disclaimer = "disclaimer"


#: Sentence kinds that state clinical content and must be supported by what they cite.
CONTENT_KINDS = frozenset(
    {
        SentenceKind.summary,
        SentenceKind.recommendation,
        SentenceKind.guideline_text,
        SentenceKind.research,
        SentenceKind.conflict,
    }
)


class Sentence(BaseModel):
    text: str
    items: list[str] = Field(
        default_factory=list,
        description="A list the sentence leads into, quoted with it as one unit (sub-list).",
    )
    citations: list[Citation] = Field(default_factory=list)
    kind: SentenceKind = SentenceKind.note
    verified: bool | None = Field(
        default=None, description="True when every citation was checked to support the text."
    )
    caveat: str | None = Field(
        default=None,
        description="Shown after the sentence, not part of the claim (e.g. an unconfirmed grade).",
    )

    @property
    def claim(self) -> str:
        """What the sentence asserts, its list included: what verification checks."""
        return " ".join([self.text, *(f"- {item}" for item in self.items)])


class Section(BaseModel):
    key: str = Field(description="summary | guidelines | research | conflicts | ...")
    title: str
    sentences: list[Sentence] = Field(default_factory=list)
    subsections: list[Section] = Field(default_factory=list)
    folded: bool = Field(
        default=False,
        description="Shown under a collapsed 'More from the sources', not on the first screen.",
    )


class Reference(BaseModel):
    number: int = Field(ge=1)
    document: DocumentRef
    chunk_ids: list[str] = Field(default_factory=list)
    citation: str | None = Field(default=None, description="Free-text citation, if known.")


class Answer(BaseModel):
    question: str
    standalone_query: str = Field(description="The query actually retrieved for.")
    follow_up: bool = Field(
        default=False, description="Read together with the conversation's earlier questions."
    )
    normalization: NormalizedQuery | None = None
    sections: list[Section] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list, description="What was retrieved.")
    abstained: bool = False
    abstention_reason: str | None = None
    nearest_topics: list[str] = Field(default_factory=list)
    disclaimer: str = ""
    timings_ms: dict[str, float] = Field(default_factory=dict)
    system: str = Field(default="cliniq-offline", description="Which answerer produced this.")

    def all_sentences(self) -> list[Sentence]:
        out: list[Sentence] = []

        def walk(section: Section) -> None:
            out.extend(section.sentences)
            for sub in section.subsections:
                walk(sub)

        for section in self.sections:
            walk(section)
        return out

    def first_screen(self) -> list[Section]:
        """The content sections shown before 'More from the sources': the summary, the key
        points and any conflict; not the notes, the refusal's topics or the references."""
        return [s for s in self.sections if not s.folded and s.key != "notes"]

    def folded_sections(self) -> list[Section]:
        return [s for s in self.sections if s.folded]

    def first_screen_text(self) -> str:
        """The plain text of the first screen (its lists included, no citation marks)."""
        out: list[str] = []

        def walk(section: Section) -> None:
            out.extend(s.claim.replace(" - ", " ") for s in section.sentences)
            for sub in section.subsections:
                walk(sub)

        for section in self.first_screen():
            walk(section)
        return " ".join(out)

    def pages_cited(self, ref: Reference) -> list[int]:
        """Pages of the passages the shown sentences cite under this reference ("p. 14")."""
        ids = {
            c.chunk_id for s in self.all_sentences() for c in s.citations if c.number == ref.number
        }
        pages = {p.chunk.page for p in self.passages if p.chunk.id in ids}
        return sorted(page for page in pages if page is not None)

    def recs_cited(self, ref: Reference) -> list[str]:
        """Ids of the cited recommendations that have no page (an HTML page, a JSON export):
        where in the source they are ("rec. 1.6.2")."""
        ids = {
            c.chunk_id for s in self.all_sentences() for c in s.citations if c.number == ref.number
        }
        recs = {
            p.chunk.recommendation.id
            for p in self.passages
            if p.chunk.id in ids and p.chunk.page is None and p.chunk.recommendation is not None
        }
        return sorted(r for r in recs if r)


class Turn(BaseModel):
    """One exchange of a conversation."""

    question: str
    standalone_query: str
    answer: Answer | None = None
    topic_concepts: list[str] = Field(default_factory=list)
