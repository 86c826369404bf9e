"""The LLM answerer: retrieved passages -> a language model's cited answer -> only what checks out.

The question is read, normalized, resolved against the conversation and retrieved for exactly as
the offline answerer does it (by composition: the same ``Assistant`` does those steps), and the
same relevance floor decides abstention before any model is asked. Then:

1. the passages are numbered (current guidelines first) and sent as delimited data;
2. the reply is split into sentences and its ``[n]``, ``[1, 3]``, ``[1-3]`` markers are mapped
   back to passages; markers naming passages that were not given are rejected and counted;
3. a sentence with no valid citation is dropped: nothing is shown uncited;
4. every remaining sentence is judged against its cited passages by the shared ``Verifier`` and
   dropped when they do not support it;
5. survivors become Summary (the first), From the Guidelines, From the Research, with references
   numbered per source document in order of first use.

A note says how many sentences were dropped and why. When nothing survives, none of the model's
text is shown: the offline composer answers from the same evidence, as it does when the model
cannot be reached, times out, answers with an error or with something unreadable. One notice
names the cause and the endpoint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from assistant.citations import CitationBook
from assistant.compose import Draft, compose_offline, grade_caveat
from assistant.context import Sources
from assistant.conversation import Session
from assistant.engine import Assistant
from assistant.evidence import Evidence
from assistant.llm import ChatModel, LLMError, chat_model_from_settings
from assistant.prompts_llm import (
    DROPPED_EXCESS,
    DROPPED_INVALID,
    DROPPED_NOTE,
    DROPPED_UNCITED,
    DROPPED_UNSUPPORTED,
    EMPTY_REASON,
    FALLBACK_NOT_ADDRESSED,
    FALLBACK_NOTE,
    INVALID_MARKERS_NOTE,
    LLM_NOTE,
    NOT_ADDRESSED_REPLY,
    UNVERIFIED_REASON,
    answer_messages,
    format_passage,
)
from assistant.retrieve import RetrievalFilter
from assistant.types import (
    Answer,
    Citation,
    NormalizationNote,
    Section,
    Sentence,
    SentenceKind,
)
from assistant.understand import Understanding
from assistant.verify import Verifier
from ingest.chunking import split_sentences
from ingest.embedding import Embedder
from ingest.grading import strength_rank
from ingest.settings import Settings
from ingest.store import Index
from ingest.types import Chunk, DocStatus, DocType, Passage

SYSTEM = "cliniq-llm"

# [3]  [1, 3]  [1-3]  [1–3; 5]  [Passage 2]: numbers and ranges inside square brackets.
_MARKER = re.compile(
    r"\[\s*(?:(?:passages?|sources?|refs?)\.?\s*)?(\d{1,4}(?:\s*[,;\-–—]\s*\d{1,4})*)\s*\]", re.I
)
_MAX_RANGE = 20  # a wider "range" ([1-900]) is read as its two ends, not expanded
_BULLET = re.compile(r"^(?:[-*•+]|\d{1,2}[.)]|[a-z][.)])\s+")
# Markup a passage could make the model write: HTML tags, Markdown links and images, a block
# quote or heading marker. The words stay; the markup goes (a URL stays as plain text).
_HTML_BLOCK = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)", re.I | re.S)
_HTML_TAG = re.compile(r"</?[a-z][^<>]*>|<!--.*?-->", re.I | re.S)
_MD_LINK = re.compile(r"!?\[([^\[\]]*)\]\(\s*([^()\s]*)[^()]*\)")
_LEADING_MARKUP = re.compile(r"^(?:[>#|]+\s*)+")
# A shown sentence that copies this much of its passage's wording, in order, is set as a quote
# of that document (its title beside it): text written in a source reads as the source's.
QUOTE_SHARE = 0.8
_LABEL = re.compile(r"^(?:summary|answer|in summary|short answer|bottom line)\s*[:\-–—]\s*", re.I)
_LAYOUT = {
    "summary",
    "answer",
    "from the guidelines",
    "from the research",
    "guidelines",
    "research",
    "references",
    "sources",
    "conflicting evidence",
}


# -- parsing the reply ------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftSentence:
    """One sentence of the model's reply, its markers removed and resolved."""

    text: str
    numbers: tuple[int, ...] = ()  # passages it cites that exist, in order of mention
    invalid: tuple[int, ...] = ()  # numbers it cites that name no passage


@dataclass
class ParsedReply:
    sentences: list[DraftSentence] = field(default_factory=list)
    not_addressed: bool = False

    @property
    def cited(self) -> list[DraftSentence]:
        return [s for s in self.sentences if s.numbers]

    @property
    def uncited(self) -> int:
        return sum(1 for s in self.sentences if not s.numbers and not s.invalid)

    @property
    def invalid_only(self) -> int:
        return sum(1 for s in self.sentences if not s.numbers and s.invalid)

    @property
    def invalid_markers(self) -> list[int]:
        return sorted({n for s in self.sentences for n in s.invalid})


def marker_numbers(body: str) -> list[int]:
    """``"1, 3-5"`` -> ``[1, 3, 4, 5]``; reversed or very wide ranges give their two ends."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body.strip()):
        ends = [int(x) for x in re.split(r"\s*[\-–—]\s*", part) if x]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= _MAX_RANGE:
            out.extend(range(ends[0], ends[1] + 1))
        else:
            out.extend(ends)
    return list(dict.fromkeys(out))


def parse_reply(reply: str, n_passages: int) -> ParsedReply:
    """Sentences of the reply with the passage numbers they cite (1..n_passages valid).

    A fragment that is only markers (``... syndrome. [2]``) belongs to the sentence before it.
    Headings and section labels are layout, not claims, and are skipped without counting.
    """
    sentinel = NOT_ADDRESSED_REPLY in reply
    parsed = ParsedReply()
    for piece in split_sentences(reply.replace(NOT_ADDRESSED_REPLY, " ")):
        numbers = [n for body in _MARKER.findall(piece) for n in marker_numbers(body)]
        text = clean_sentence(_MARKER.sub(" ", piece))
        valid = tuple(n for n in numbers if 1 <= n <= n_passages)
        invalid = tuple(n for n in numbers if not 1 <= n <= n_passages)
        if not re.search(r"\w", text):
            if parsed.sentences and numbers:
                last = parsed.sentences[-1]
                parsed.sentences[-1] = DraftSentence(
                    last.text,
                    tuple(dict.fromkeys(last.numbers + valid)),
                    tuple(dict.fromkeys(last.invalid + invalid)),
                )
            continue
        if not numbers and _is_layout(piece, text):
            continue
        parsed.sentences.append(DraftSentence(text, valid, invalid))
    parsed.not_addressed = sentinel and not parsed.cited
    return parsed


def clean_sentence(text: str) -> str:
    """Drop markup (HTML, Markdown links, quote and heading marks), bullets, emphasis, empty
    brackets and stray spaces left by removed markers: the model writes words, the answer's
    layout is ours."""
    text = text.strip()
    text = _HTML_BLOCK.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _MD_LINK.sub(_link_as_text, text)
    text = _LEADING_MARKUP.sub("", text)
    text = _BULLET.sub("", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = _LABEL.sub("", text)
    text = re.sub(r"\(\s*[,;]?\s*\)", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:!?)])", r"\1", text)
    text = re.sub(r"([.,;:!?])(?:\s*[.,;:])+$", r"\1", text)
    return text.strip()


def _link_as_text(match: re.Match[str]) -> str:
    label, target = match.group(1), match.group(2)
    return f"{label} ({target})" if target else label


def _is_layout(raw: str, text: str) -> bool:
    stripped = raw.strip()
    if stripped.startswith("#"):
        return True
    bare = text.strip(" :.*_-").lower()
    return bare in _LAYOUT or (stripped.endswith(":") and len(text.split()) <= 6)


# -- passages ---------------------------------------------------------------------------------


def number_passages(
    general: Iterable[Passage], extra: Iterable[Passage] = (), limit: int = 12
) -> list[Passage]:
    """At most ``limit`` distinct passages: the general retrieval, with up to half the places
    kept for ``extra`` (recommendation blocks it missed). Current guidelines come first, then
    superseded ones, then research, retrieval order within each; ``rank`` becomes the number
    the model sees."""
    first = _unique(general, set())
    more = _unique(extra, {p.chunk.id for p in first})
    n_extra = min(len(more), max(limit // 2, limit - len(first)))
    chosen = first[: limit - n_extra] + more[:n_extra]
    chosen.sort(
        key=lambda p: (
            p.document.doc_type is not DocType.guideline,
            p.document.status is DocStatus.superseded,
        )
    )
    return [p.model_copy(update={"rank": i}) for i, p in enumerate(chosen, start=1)]


def _unique(passages: Iterable[Passage], seen: set[str]) -> list[Passage]:
    out: list[Passage] = []
    for passage in passages:
        if passage.chunk.id not in seen:
            seen.add(passage.chunk.id)
            out.append(passage)
    return out


def passage_block(passage: Passage) -> str:
    doc = passage.document
    source = ", ".join(str(x) for x in (doc.source_name, doc.year) if x)
    status = str(doc.status)
    if doc.status is DocStatus.superseded and doc.superseded_by:
        status += f" (superseded by {doc.superseded_by})"
    return format_passage(
        passage.rank,
        doc_type=str(doc.doc_type),
        status=status,
        source=source,
        title=doc.title,
        section=passage.chunk.heading,
        text=passage.chunk.text,
    )


# -- what was left out -------------------------------------------------------------------------


@dataclass(frozen=True)
class Drops:
    """How many sentences of the reply were not shown, by reason."""

    total: int = 0
    uncited: int = 0
    invalid: int = 0
    unsupported: int = 0
    excess: int = 0

    @property
    def dropped(self) -> int:
        return self.uncited + self.invalid + self.unsupported + self.excess

    def notes(self, invalid_markers: Sequence[int], limit: int) -> list[str]:
        out: list[str] = []
        reasons = [
            DROPPED_UNCITED.format(count=self.uncited) if self.uncited else "",
            DROPPED_INVALID.format(count=self.invalid) if self.invalid else "",
            DROPPED_UNSUPPORTED.format(count=self.unsupported) if self.unsupported else "",
            DROPPED_EXCESS.format(count=self.excess, limit=limit) if self.excess else "",
        ]
        if self.dropped:
            out.append(
                DROPPED_NOTE.format(
                    dropped=self.dropped,
                    total=self.total,
                    reasons="; ".join(r for r in reasons if r),
                )
            )
        if invalid_markers:
            out.append(
                INVALID_MARKERS_NOTE.format(
                    count=len(invalid_markers),
                    numbers=", ".join(str(n) for n in invalid_markers[:10]),
                )
            )
        return out


# -- the answerer -----------------------------------------------------------------------------


class LLMAssistant:
    """Answers through an OpenAI-compatible model; shows only cited, verified sentences.

    Same contract as ``Assistant.ask``. One instance serves many questions.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        index: Index | None = None,
        embedder: Embedder | None = None,
        lexicon: object | None = None,
        verifier: Verifier | None = None,
        chat_model: ChatModel | None = None,
        max_passages: int | None = None,
        rec_passages: int = 6,
        max_tokens: int | None = None,
        max_sentences: int = 30,
    ) -> None:
        self.settings = settings
        if verifier is None:  # model-written text is checked by settings.llm.verify_judge
            verifier = Verifier.default(
                embedder, settings.answer.verify_threshold, settings.llm.verify_judge, settings
            )
        self.base = Assistant(
            settings, index=index, embedder=embedder, lexicon=lexicon, verifier=verifier
        )
        self.chat_model = chat_model or chat_model_from_settings(settings.llm)
        self.max_passages = max_passages or settings.llm.max_passages
        self.rec_passages = rec_passages
        self.max_tokens = max_tokens or settings.llm.max_tokens
        self.max_sentences = max_sentences
        self.fallbacks = 0  # answers the offline composer wrote because the model could not
        self._fell_back = False

    @property
    def index(self) -> Index:
        return self.base.index

    @property
    def verifier(self) -> Verifier:
        return self.base.verifier

    def ask(self, question: str, session: Session | None = None) -> Answer:
        """The shared steps, with the model writing the answer (step 4)."""
        self._fell_back = False
        answer = self.base.ask(question, session, compose=self.compose)
        if not self._fell_back:  # else the offline answerer's name stays: it wrote the answer
            answer.system = SYSTEM
        return answer

    # -- step 4, by a model -----------------------------------------------------------------
    def compose(self, u: Understanding, evidence: Evidence, sources: Sources) -> Draft:
        """Numbered passages to the model; its cited sentences back, each judged against the
        passages it cites before it may be shown. When the model cannot be used (down, too slow,
        an HTTP error, a garbled reply) or gives nothing that can be shown, the offline composer
        answers from the same evidence, under one notice naming the cause and the endpoint."""
        recommendations = sources.retriever.retrieve(
            u.standalone,
            k=self.rec_passages,
            filters=RetrievalFilter(recommendations_only=True),
            lexical_query=u.lexical_query,
        )
        passages = number_passages(evidence.passages, recommendations, self.max_passages)
        timings: dict[str, float] = {}
        t1 = time.perf_counter()
        messages = answer_messages(u.clean.text, u.standalone, [passage_block(p) for p in passages])
        try:
            reply = self.chat_model.complete(messages, max_tokens=self.max_tokens)
        except LLMError as exc:
            timings["generate_ms"] = _ms(t1)
            return self._offline(u, evidence, sources, str(exc), timings)
        timings["generate_ms"] = _ms(t1)

        parsed = parse_reply(reply, len(passages))
        if parsed.not_addressed:
            return self._offline(u, evidence, sources, FALLBACK_NOT_ADDRESSED, timings)
        candidates = parsed.cited[: self.max_sentences]
        kept = self._verified(candidates, passages)
        drops = Drops(
            total=len(parsed.sentences),
            uncited=parsed.uncited,
            invalid=parsed.invalid_only,
            unsupported=len(candidates) - len(kept),
            excess=len(parsed.cited) - len(candidates),
        )
        if not kept:
            reason = UNVERIFIED_REASON.format(total=drops.total) if drops.total else EMPTY_REASON
            return self._offline(u, evidence, sources, reason, timings)
        evidence.passages = passages
        notes = [NormalizationNote(span="", message=LLM_NOTE.format(model=self._model_name))]
        for message in drops.notes(parsed.invalid_markers, self.max_sentences):
            notes.append(NormalizationNote(span="", message=message))
        sections, book = _layout(kept)
        return Draft(sections, book, notes, timings=timings)

    def _offline(
        self,
        u: Understanding,
        evidence: Evidence,
        sources: Sources,
        cause: str,
        timings: dict[str, float],
    ) -> Draft:
        """The offline answer from the same evidence, with the one notice saying why."""
        draft = compose_offline(u, evidence, sources)
        notice = FALLBACK_NOTE.format(
            model=self._model_name, endpoint=self.settings.llm.base_url, cause=_sentence(cause)
        )
        draft.notes.insert(0, NormalizationNote(span="", message=notice))
        draft.timings = {**timings, **draft.timings}
        self.fallbacks += 1
        self._fell_back = True
        return draft

    def _verified(
        self, drafts: Sequence[DraftSentence], passages: Sequence[Passage]
    ) -> list[tuple[Sentence, list[Chunk]]]:
        """Judge each draft against the passages it cites; keep the supported, in order."""
        if not drafts:
            return []
        scratch = CitationBook()
        pairs: list[tuple[Sentence, list[Chunk]]] = []
        for draft in drafts:
            chunks = [passages[n - 1].chunk for n in draft.numbers]
            pairs.append((Sentence(text=draft.text, citations=scratch.cite(chunks)), chunks))
        section = Section(key="draft", title="Draft", sentences=[s for s, _ in pairs])
        self.verifier.verify_sections([section], self.index)
        return [(s, chunks) for s, chunks in pairs if s.verified]

    @property
    def _model_name(self) -> str:
        return getattr(self.chat_model, "name", None) or self.settings.llm.model


# -- layout -----------------------------------------------------------------------------------


def _layout(
    kept: list[tuple[Sentence, list[Chunk]]],
) -> tuple[list[Section], CitationBook]:
    """Summary, From the Guidelines (strongest first), From the Research; references numbered
    per source document in the order a reader meets them."""
    summary, *rest = kept
    guidelines = [item for item in rest if _cites_guideline(item[1])]
    research = [item for item in rest if not _cites_guideline(item[1])]
    guidelines.sort(key=lambda item: -_strongest(item[1]))  # stable: the model's order on ties
    book = CitationBook()
    sections: list[Section] = []
    layout = [
        ("summary", "Summary", SentenceKind.summary, [summary]),
        ("guidelines", "From the Guidelines", SentenceKind.recommendation, guidelines),
        ("research", "From the Research", SentenceKind.research, research),
    ]
    for key, title, kind, items in layout:
        if not items:
            continue
        section = Section(key=key, title=title)
        for sentence, chunks in items:
            section.sentences.append(
                sentence.model_copy(
                    update={
                        "kind": kind,
                        "citations": _recite(book, chunks, sentence.citations),
                        **_as_quote(sentence.text, chunks),
                    }
                )
            )
        sections.append(section)
    return sections, book


def _recite(book: CitationBook, chunks: list[Chunk], verified: list[Citation]) -> list[Citation]:
    scores = {c.chunk_id: c.support_score for c in verified}
    citations = book.cite(chunks)
    for citation in citations:
        citation.support_score = scores.get(citation.chunk_id)
    return citations


def _as_quote(text: str, chunks: list[Chunk]) -> dict[str, str | None]:
    """The sentence's text and caveat: a sentence that copies a cited passage's wording is
    shown in quotation marks, as that document's words, with its title."""
    caveat = _caveat(chunks)
    words = _words(text)
    for chunk in chunks:
        if words and _copied_share(words, _words(chunk.text)) >= QUOTE_SHARE:
            source = f"quoted from \u201c{chunk.document.title}\u201d"
            return {
                "text": f"\u201c{text}\u201d",
                "caveat": f"{source}; {caveat}" if caveat else source,
            }
    return {"text": text, "caveat": caveat}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _copied_share(words: list[str], source: list[str]) -> float:
    """Share of the sentence's words inside runs of 4+ words that the source has in order."""
    matcher = SequenceMatcher(None, words, source, autojunk=False)
    copied = sum(b.size for b in matcher.get_matching_blocks() if b.size >= 4)
    return copied / len(words)


def _cites_guideline(chunks: list[Chunk]) -> bool:
    return any(c.document.doc_type is DocType.guideline for c in chunks)


def _strongest(chunks: list[Chunk]) -> int:
    return max(
        (strength_rank(c.recommendation.strength) for c in chunks if c.recommendation), default=0
    )


def _caveat(chunks: list[Chunk]) -> str | None:
    """What the reader must know about the sources (unconfirmed grading, superseded)."""
    parts: list[str] = []
    for chunk in chunks:
        caveat = grade_caveat(chunk.recommendation) if chunk.recommendation else None
        if caveat and caveat not in parts:
            parts.append(caveat)
    if chunks and all(c.document.status is DocStatus.superseded for c in chunks):
        doc = chunks[0].document
        parts.append(
            "from a superseded source"
            + (f" (superseded by {doc.superseded_by})" if doc.superseded_by else "")
        )
    return "; ".join(parts) or None


def _sentence(text: str) -> str:
    return text.strip().rstrip(".")


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
