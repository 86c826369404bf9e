"""One shape for an answer to be scored, whichever system produced it.

cliniq's own ``Answer`` (typed sections, citations to chunk ids) and another system's recorded
text (``[n]`` markers into a list of retrieved contexts) both become an ``AnswerRecord``: the
claims with the passages each cites, the passages in rank order, whether it was a refusal, how
the question was read, and how long it took. The metrics read nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from pydantic import BaseModel, Field

from assistant.types import CONTENT_KINDS, Answer
from assistant.verify import source_line
from ingest.types import Chunk


class PassageRecord(BaseModel):
    """A retrieved passage, as the answer saw it."""

    id: str = Field(description="Chunk id (cliniq) or 'ctx-N' (recorded contexts, 1-based).")
    rank: int = Field(ge=1)
    text: str
    document_id: str | None = None
    title: str | None = None
    listed: bool = Field(
        default=True, description="False: cited, but missing from the answer's own passage list."
    )
    source: str | None = Field(
        default=None,
        description="What the reference list says of the passage's source ('Source: AASM, 2025, "
        "guideline, current.'); judged with the text, since a sentence may name its source.",
    )

    def judged_text(self) -> str:
        return f"{self.source}\n{self.text}" if self.source else self.text


class ClaimRecord(BaseModel):
    """A sentence that states something, with the passages it cites."""

    text: str
    kind: str = "claim"
    citations: list[str] = Field(default_factory=list, description="Passage ids, in cited order.")
    citation_errors: list[str] = Field(
        default_factory=list, description="Markers that name no passage (e.g. [7] of 5)."
    )


class NormalizationRecord(BaseModel):
    """How the system read the question (cliniq's lexicon normalization)."""

    rewritten: str | None = None
    concepts: list[str] = Field(default_factory=list, description="Concept ids matched.")
    canonical: list[str] = Field(default_factory=list, description="Their canonical names.")
    notes: list[str] = Field(default_factory=list)


class AnswerRecord(BaseModel):
    """Everything the metrics need from one answer."""

    system: str
    question: str
    standalone_query: str | None = None
    text: str = Field(description="All sentences shown to the reader, one per line.")
    claims: list[ClaimRecord] = Field(default_factory=list)
    passages: list[PassageRecord] = Field(default_factory=list)
    abstained: bool = False
    abstention_source: str = Field(
        default="system", description="system | declared | detected (refusal wording)."
    )
    abstention_reason: str | None = None
    normalization: NormalizationRecord | None = None
    latency_ms: float | None = None
    first_screen: str | None = Field(
        default=None,
        description="What the reader sees before expanding anything (cliniq: the answer's "
        "first_screen_text()); None when the system does not say: then every claim counts.",
    )
    error: str | None = Field(default=None, description="Set when the system raised instead.")

    def passage(self, passage_id: str) -> PassageRecord | None:
        for p in self.passages:
            if p.id == passage_id:
                return p
        return None


def from_answer(
    answer: Answer,
    latency_ms: float | None = None,
    lookup: Callable[[list[str]], list[PassageRecord]] | None = None,
) -> AnswerRecord:
    """cliniq's typed answer -> record. Claims are the content sentences; notes are not.

    A citation to a chunk the answer does not list among its passages is an integrity error,
    recorded as such; with ``lookup`` (chunk ids -> passages from the index) the claim is still
    judged against the text it cites, so the error does not also count as unfaithfulness.
    """
    lines: list[str] = []
    claims: list[ClaimRecord] = []
    for sentence in answer.all_sentences():
        # A lead-in and its list are one claim: the list is what the lead-in asserts.
        lines.append(sentence.claim + (f" ({sentence.caveat})" if sentence.caveat else ""))
        if sentence.kind in CONTENT_KINDS:
            claims.append(
                ClaimRecord(
                    text=sentence.claim,
                    kind=str(sentence.kind),
                    citations=list(dict.fromkeys(c.chunk_id for c in sentence.citations)),
                )
            )
    passages = [
        passage_record(p.chunk, p.rank) for p in sorted(answer.passages, key=lambda p: p.rank)
    ]
    have = {p.id for p in passages}
    missing = [c for claim in claims for c in claim.citations if c not in have]
    found = {p.id: p for p in (lookup(list(dict.fromkeys(missing))) if lookup and missing else [])}
    for passage in found.values():
        passages.append(passage.model_copy(update={"rank": len(passages) + 1, "listed": False}))
    for claim in claims:
        absent = [c for c in claim.citations if c not in have]
        claim.citation_errors.extend(
            f"cites passage {c}, which the answer does not list among its passages" for c in absent
        )
        claim.citations = [c for c in claim.citations if c in have or c in found]
    norm = answer.normalization
    normalization = None
    if norm is not None:
        normalization = NormalizationRecord(
            rewritten=norm.rewritten,
            concepts=[m.concept_id for m in norm.matches],
            canonical=[m.canonical for m in norm.matches],
            notes=[n.message for n in norm.notes],
        )
    notes = [
        sentence.text
        for section in answer.sections
        if section.key == "notes"
        for sentence in section.sentences
    ]
    if notes:
        normalization = normalization or NormalizationRecord()
        normalization.notes = list(dict.fromkeys([*normalization.notes, *notes]))
    return AnswerRecord(
        system=answer.system,
        question=answer.question,
        standalone_query=answer.standalone_query,
        text="\n".join(lines),
        claims=claims,
        passages=passages,
        abstained=answer.abstained,
        abstention_reason=answer.abstention_reason,
        normalization=normalization,
        latency_ms=latency_ms if latency_ms is not None else answer.timings_ms.get("total_ms"),
        first_screen=_first_screen(answer),
    )


def _first_screen(answer: Answer) -> str | None:
    """``Answer.first_screen_text()`` where the answer type has it (a refusal shows none)."""
    method = getattr(answer, "first_screen_text", None)
    if answer.abstained or not callable(method):
        return None
    return str(method())


def passage_record(chunk: Chunk, rank: int) -> PassageRecord:
    """A cliniq passage, with the source line the assistant's verifier also sees."""
    return PassageRecord(
        id=chunk.id,
        rank=rank,
        text=chunk.text,
        document_id=chunk.document.id,
        title=chunk.document.title,
        source=source_line(chunk),
    )


def normalize_text(text: str) -> str:
    """For phrase matching: NFKC, case-folded, dashes unified, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    return re.sub(r"\s+", " ", text).strip()
