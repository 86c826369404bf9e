"""Typed data that flows through ingest: Document -> Chunk -> (store) -> Passage.

Ids are derived, never invented: a chunk id hashes its document id, position and text, so a
re-ingest upserts instead of duplicating and an unchanged chunk keeps its id.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from ingest.grading import certainty_rank, strength_rank


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DocType(StrEnum):
    guideline = "guideline"
    research = "research"
    patient_info = "patient-info"


class DocStatus(StrEnum):
    current = "current"
    superseded = "superseded"


class Direction(StrEnum):
    for_ = "for"
    against = "against"


class GradeConfidence(StrEnum):
    """How sure we are that a block's strength and certainty match the source's grading."""

    confirmed = "confirmed"  # seen in the primary text (or a verbatim copy of it)
    secondary = "secondary"  # seen only in secondary summaries
    unverified = "unverified"  # recollection, or sources conflict


class RecommendationKind(StrEnum):
    recommendation = "recommendation"
    good_practice = "good-practice"
    consensus = "consensus"
    evidence_conclusion = "evidence-conclusion"


class DocumentRef(BaseModel):
    """What a passage needs to know about its document: enough to cite and to filter."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    organization: str | None = None
    journal: str | None = None
    year: int | None = None
    doc_type: DocType = DocType.research
    status: DocStatus = DocStatus.current
    superseded_by: str | None = None
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    citation: str | None = None
    strength_scale: str | None = None
    populations: tuple[str, ...] = ()

    @property
    def source_name(self) -> str:
        """Organization for guidelines, journal for articles, whichever is known."""
        return self.organization or self.journal or "unknown source"


class Document(BaseModel):
    """One source document, as a loader produced it. `text` is Markdown-shaped body text."""

    id: str = Field(description="Stable document id, unique across the index.")
    title: str = Field(min_length=1)
    organization: str | None = Field(default=None, description="Issuing body (guidelines).")
    journal: str | None = Field(default=None, description="Journal (articles, reviews).")
    authors: list[str] = Field(default_factory=list)
    year: int | None = Field(default=None, ge=1900, le=2100)
    publication_date: date | None = None
    doc_type: DocType = DocType.research
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    citation: str | None = Field(default=None, description="e.g. 'Sleep Med. 2016;21:1-11'.")
    license: str | None = Field(default=None, description="Licence the source states.")
    status: DocStatus = DocStatus.current
    superseded_by: str | None = Field(default=None, description="Id of the newer document.")
    strength_scale: str | None = Field(
        default=None, description="Grading scale the recommendations use (e.g. GRADE, AAN)."
    )
    populations: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    source_path: str = Field(default="", description="File the document was loaded from.")
    content_hash: str = Field(default="", description="sha256 of metadata and text.")
    text: str = Field(default="", repr=False, description="Body, Markdown-shaped.")

    @model_validator(mode="after")
    def _fill_hash(self) -> Document:
        if not self.content_hash:
            # An unset licence is left out, so documents hashed before it existed keep their hash.
            skip = {"content_hash", "text", "source_path"} | (
                {"license"} if not self.license else set()
            )
            meta = self.model_dump_json(exclude=skip)
            self.content_hash = sha256_hex(meta + "\x1f" + self.text)
        return self

    @model_validator(mode="after")
    def _superseded_needs_successor(self) -> Document:
        if self.status is DocStatus.current and self.superseded_by:
            raise ValueError(
                f"document {self.id!r}: superseded_by is set but status is 'current'; "
                "set status: superseded"
            )
        return self

    def ref(self) -> DocumentRef:
        return DocumentRef(
            id=self.id,
            title=self.title,
            organization=self.organization,
            journal=self.journal,
            year=self.year,
            doc_type=self.doc_type,
            status=self.status,
            superseded_by=self.superseded_by,
            doi=self.doi,
            pmid=self.pmid,
            url=self.url,
            citation=self.citation,
            strength_scale=self.strength_scale,
            populations=tuple(self.populations),
        )


class Recommendation(BaseModel):
    """A graded recommendation, in the source's own words and scale."""

    model_config = ConfigDict(frozen=True)

    id: str | None = Field(default=None, description="Source numbering, if any.")
    kind: RecommendationKind = RecommendationKind.recommendation
    statement: str = Field(min_length=1)
    direction: Direction
    strength: str = Field(min_length=1, description="As the source grades it.")
    certainty: str | None = Field(default=None, description="Certainty of evidence.")
    population: str = Field(min_length=1)
    intervention: str = Field(min_length=1)
    section: str | None = Field(default=None, description="Section of the source.")
    pages: str | None = Field(
        default=None, description="Every page printing it (a summary box and its chapter)."
    )
    remarks: str | None = None
    grade_confidence: GradeConfidence = Field(
        default=GradeConfidence.confirmed,
        description="Whether strength/certainty were confirmed in the primary text.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def strength_rank(self) -> int:
        return strength_rank(self.strength)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def certainty_rank(self) -> int:
        return certainty_rank(self.certainty)


class Chunk(BaseModel):
    """A retrievable piece of a document: a section slice, or exactly one recommendation."""

    id: str = Field(default="", description="sha256(document id, position, text), truncated.")
    document: DocumentRef
    position: int = Field(ge=0)
    text: str = Field(min_length=1)
    section_path: list[str] = Field(default_factory=list)
    page: int | None = None
    recommendation: Recommendation | None = None

    @model_validator(mode="after")
    def _fill_id(self) -> Chunk:
        if not self.id:
            self.id = sha256_hex(f"{self.document.id}\x1f{self.position}\x1f{self.text}")[:32]
        return self

    @property
    def text_hash(self) -> str:
        """Key of the embedding cache: identical texts are embedded once."""
        return sha256_hex(self.text)

    @property
    def heading(self) -> str:
        return " > ".join(self.section_path)


RetrievalMode = Literal["bm25", "dense", "hybrid"]


class Passage(BaseModel):
    """A retrieved chunk with the scores that put it where it is."""

    chunk: Chunk
    rank: int = Field(ge=1)
    score: float = Field(description="Final score used for ranking (fused for hybrid).")
    dense_score: float | None = Field(default=None, description="Cosine similarity.")
    lexical_score: float | None = Field(default=None, description="BM25 score.")
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def id(self) -> str:
        return self.chunk.id

    @property
    def document(self) -> DocumentRef:
        return self.chunk.document
