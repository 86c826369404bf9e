"""Post-composition check: each sentence against the passages it cites.

The judge is the same claim-versus-passage implementation the evals score with
(``assistant.support``), so what the assistant shows and what evaluators measure agree.
A sentence its cited passages do not support is dropped, never shown unverified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assistant.types import Section, Sentence

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.store import Index


class Verifier:
    def __init__(self, judge: Any, threshold: float = 0.5) -> None:
        self.judge = judge
        self.threshold = threshold

    @classmethod
    def default(cls, embedder: Embedder | None = None, threshold: float = 0.5) -> Verifier:
        from assistant.support import default_judge

        return cls(default_judge(model=embedder), threshold)

    @property
    def name(self) -> str:
        return f"{getattr(self.judge, 'name', 'judge')}@{getattr(self.judge, 'version', '?')}"

    def verify_sections(
        self, sections: Sequence[Section], index: Index
    ) -> tuple[list[Section], int]:
        """Judge every cited sentence in one batch; drop the unsupported: (kept, dropped)."""
        cited: list[Sentence] = []

        def collect(section: Section) -> None:
            cited.extend(s for s in section.sentences if s.citations)
            for sub in section.subsections:
                collect(sub)

        for section in sections:
            collect(section)
        if not cited:
            return list(sections), 0
        ids = sorted({c.chunk_id for s in cited for c in s.citations})
        texts = {c.id: c.text for c in index.get(ids)}
        pairs = []
        for sentence in cited:
            passage = "\n".join(texts.get(c.chunk_id, "") for c in sentence.citations)
            pairs.append((sentence.text, passage))
        verdicts = self.judge.judge_many(pairs)
        rejected: set[int] = set()
        for sentence, verdict in zip(cited, verdicts, strict=True):
            supported = str(verdict.label) == "supported" or (
                verdict.score >= self.threshold and str(verdict.label) != "contradicted"
            )
            sentence.verified = supported
            for citation in sentence.citations:
                citation.support_score = round(float(verdict.score), 3)
            if not supported:
                rejected.add(id(sentence))
        return [_prune(s, rejected) for s in sections], len(rejected)


def _prune(section: Section, rejected: set[int]) -> Section:
    return section.model_copy(
        update={
            "sentences": [s for s in section.sentences if id(s) not in rejected],
            "subsections": [_prune(sub, rejected) for sub in section.subsections],
        }
    )
