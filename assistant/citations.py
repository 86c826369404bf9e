"""Reference numbering: one number per source document, in order of first use.

A sentence cites passages (chunks); its visible number is its document's, so the same source is
never listed under two numbers, while each Citation still records the exact chunk for checking.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.types import Citation, Reference
from ingest.types import Chunk, DocumentRef


class CitationBook:
    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._documents: dict[str, DocumentRef] = {}
        self._chunks: dict[str, list[str]] = {}
        self._cited: dict[str, Chunk] = {}

    def cite(self, chunks: Iterable[Chunk]) -> list[Citation]:
        citations: list[Citation] = []
        seen: set[str] = set()
        for chunk in chunks:
            if chunk.id in seen:
                continue
            seen.add(chunk.id)
            self._cited.setdefault(chunk.id, chunk)
            doc = chunk.document
            if doc.id not in self._numbers:
                self._numbers[doc.id] = len(self._numbers) + 1
                self._documents[doc.id] = doc
                self._chunks[doc.id] = []
            if chunk.id not in self._chunks[doc.id]:
                self._chunks[doc.id].append(chunk.id)
            citations.append(
                Citation(number=self._numbers[doc.id], chunk_id=chunk.id, document_id=doc.id)
            )
        return citations

    def chunks(self) -> list[Chunk]:
        """Every chunk cited so far, in order of first citation."""
        return list(self._cited.values())

    def references(self, used: set[str] | None = None) -> list[Reference]:
        """References in number order; with `used`, only documents still cited, renumbered."""
        docs = sorted(self._numbers, key=self._numbers.__getitem__)
        if used is not None:
            docs = [d for d in docs if d in used]
        return [
            Reference(
                number=n,
                document=self._documents[d],
                chunk_ids=list(self._chunks[d]),
                citation=self._documents[d].citation,
            )
            for n, d in enumerate(docs, start=1)
        ]


def renumber(sentences_citations: Iterable[list[Citation]], references: list[Reference]) -> None:
    """After sentences were dropped, make citation numbers match the final reference list."""
    number_of = {ref.document.id: ref.number for ref in references}
    for citations in sentences_citations:
        for citation in citations:
            citation.number = number_of[citation.document_id]
