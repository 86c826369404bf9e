"""Post-composition check: each sentence against the passages it cites.

The judge is the same claim-versus-passage implementation the evals score with
(``assistant.support``), so what the assistant shows and what evaluators measure agree.
A sentence its cited passages do not support is dropped, never shown unverified.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from assistant.support import SupportLabel, SupportVerdict
from assistant.types import Section, Sentence
from ingest.types import Chunk

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.store import Index


_SPACE = re.compile(r"\s+")
_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*\.?\s*$")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def extractive_core(sentence: str) -> str:
    """The sentence without a trailing '(grading)' clause and final period."""
    return _TRAILING_PAREN.sub("", sentence).strip().rstrip(".").strip()


_GENERIC = re.compile(r"\b(recommendation|certainty|of|evidence|statement|grade|graded)\b")


def grading_supported(sentence: str, passage: str) -> bool:
    """The '(strong recommendation; moderate certainty of evidence)' words are in the passage."""
    match = _TRAILING_PAREN.search(sentence)
    if not match:
        return True
    haystack = _norm(passage)
    words_in_passage = set(re.findall(r"[\w+]+", haystack))
    for part in re.split(r"[;,]", match.group(0).strip(" .()")):
        words = _SPACE.sub(" ", _GENERIC.sub(" ", part.lower())).strip()
        if not words or words in haystack:
            continue
        # "moderate-certainty evidence" against "Certainty of evidence: Moderate": the same
        # grade words, in the source's own layout.
        if not all(w in words_in_passage for w in re.findall(r"[\w+]+", words)):
            return False
    return True


class Verifier:
    """Extractive sentences are checked by containment and their grade words; composed ones
    (summary, conflicts, model-written text) by the learned judge. Both must pass."""

    def __init__(self, judge: Any, threshold: float = 0.5) -> None:
        self.judge = judge
        self.threshold = threshold

    @classmethod
    def default(
        cls,
        embedder: Embedder | None = None,
        threshold: float = 0.5,
        judge: str | None = None,
        settings: Any = None,
    ) -> Verifier:
        """The named judge from `available_judges`, or the package default judge; `settings`
        (the application's) says where judge weights and a local NLI model are."""
        from assistant.support import available_judges, default_judge, support_settings
        from ingest.errors import CliniqError

        if judge is None or judge == "default":
            return cls(default_judge(settings, model=embedder), threshold)
        if judge != "llm":
            # Naming a local judge must not cost a probe of the LLM endpoint at start-up.
            cfg = support_settings(settings).model_copy(update={"llm_judge": False})
            settings = SimpleNamespace(support=cfg, llm=getattr(settings, "llm", None))
        judges = available_judges(settings, model=embedder)
        if judge not in judges:
            raise CliniqError(
                f"unknown verification judge {judge!r} (CLINIQ_ANSWER__VERIFY_JUDGE); "
                f"available: {', '.join(sorted(judges))}"
            )
        return cls(judges[judge](), threshold)

    def warm_up(self) -> None:
        """Load the judge's encoder now (a long-lived process: the first answer then costs
        what the others do)."""
        features = getattr(self.judge, "features", None)
        if features is not None:
            features.encoder.encode(["warm up"])

    def clear(self) -> None:
        """Forget every remembered encoding (a benchmark times answers from cold)."""
        features = getattr(self.judge, "features", None)
        if features is not None:
            features.clear()

    @property
    def name(self) -> str:
        return f"{getattr(self.judge, 'name', 'judge')}@{getattr(self.judge, 'version', '?')}"

    def verify_sections(
        self, sections: Sequence[Section], index: Index
    ) -> tuple[list[Section], int]:
        """Judge every cited sentence in one batch; drop the unsupported: (kept, dropped)."""
        cited: list[Sentence] = []

        def collect(section: Section) -> None:
            # A sentence an answerer already judged (the LLM path's) is not judged twice.
            cited.extend(s for s in section.sentences if s.citations and s.verified is None)
            for sub in section.subsections:
                collect(sub)

        for section in sections:
            collect(section)
        if not cited:
            return list(sections), 0
        ids = sorted({c.chunk_id for s in cited for c in s.citations})
        texts = {c.id: f"{source_line(c)}\n{c.text}" for c in index.get(ids)}
        pairs = []
        for sentence in cited:
            passage = "\n".join(texts.get(c.chunk_id, "") for c in sentence.citations)
            pairs.append((sentence.claim, passage))
        extractive = [
            len(extractive_core(claim)) > 20 and _norm(extractive_core(claim)) in _norm(passage)
            for claim, passage in pairs
        ]
        verdicts: list[Any] = [None] * len(pairs)
        judged = [i for i, ex in enumerate(extractive) if not ex]
        for i, verdict in zip(
            judged, self.judge.judge_many([pairs[i] for i in judged]), strict=True
        ):
            verdicts[i] = verdict
        for i in (i for i, ex in enumerate(extractive) if ex):
            # Quoted text is supported by construction; the grade words appended to it must be
            # the passage's own.
            ok = grading_supported(*pairs[i])
            verdicts[i] = SupportVerdict(
                label=SupportLabel.supported if ok else SupportLabel.not_supported,
                score=1.0 if ok else 0.0,
                contradiction=0.0,
                judge="extractive",
                rules=[] if ok else ["grading-not-in-passage"],
                evidence=extractive_core(pairs[i][0]),
            )
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


def source_line(chunk: Chunk) -> str:
    """What the reference list says of a passage's source: cited sentences may name it."""
    doc = chunk.document
    parts = [doc.organization, doc.journal, str(doc.year) if doc.year else None]
    parts += [str(doc.doc_type), str(doc.status)]
    return "Source: " + ", ".join(p for p in parts if p) + "."


def _prune(section: Section, rejected: set[int]) -> Section:
    return section.model_copy(
        update={
            "sentences": [s for s in section.sentences if id(s) not in rejected],
            "subsections": [_prune(sub, rejected) for sub in section.subsections],
        }
    )
