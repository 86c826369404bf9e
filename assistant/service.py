"""cliniq as a component: one object the HTTP server, the MCP server and LangChain all call.

It holds one ``Assistant`` (and the LLM answerer, built on first use from the same parts) and
lets questions take turns: the embedder, the index and the corpus profile are not meant for
concurrent use. Callers on an event loop run these methods in a worker thread; a second process
(``CLINIQ_SERVE__WORKERS``) is how more cores answer at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from assistant.conversation import Session
from assistant.engine import Assistant
from assistant.render import reference_line
from assistant.types import Answer, Reference
from assistant.understand import QuestionError, understand
from ingest.errors import CliniqError
from ingest.settings import Settings
from ingest.types import Chunk, DocumentRef, Passage, Recommendation

#: The answerers a caller can name (the OpenAI ``model`` field).
MODELS: dict[str, str] = {
    "cliniq": "offline, extractive: every sentence quoted or composed from a cited passage",
    "cliniq-llm": "a model at CLINIQ_LLM__BASE_URL writes the answer; only cited sentences "
    "its passages support are shown",
}


class UnknownModelError(CliniqError):
    """A model name that is not one of ``MODELS``."""


class PassageNotFoundError(CliniqError):
    """No passage with this id in the index."""


class QuestionTooLongError(QuestionError):
    """Longer than ``CLINIQ_ANSWER__MAX_QUESTION_CHARS``."""


class InvalidArgumentError(CliniqError):
    """A search argument out of its range; ``param`` names it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class PassageView(BaseModel):
    """One passage as the integrations show it: text, where it is, how it is graded."""

    id: str = Field(description="The passage (chunk) id; GET /v1/passages/{id} returns it.")
    text: str
    document: DocumentRef
    page: int | None = Field(default=None, description="Page in the source, when known.")
    section: str = Field(default="", description="Section path, ' > '-joined.")
    recommendation: Recommendation | None = Field(
        default=None, description="Direction, strength and certainty as the source grades it."
    )
    citation: str = Field(description="The reference as an answer's reference list prints it.")
    rank: int | None = None
    score: float | None = Field(default=None, description="Fused retrieval score (ranking).")
    dense_score: float | None = Field(default=None, description="Cosine similarity.")
    lexical_score: float | None = Field(default=None, description="BM25 score.")

    @classmethod
    def of(cls, chunk: Chunk, passage: Passage | None = None) -> PassageView:
        scores = {}
        if passage is not None:
            scores = {
                "rank": passage.rank,
                "score": round(passage.score, 6),
                "dense_score": passage.dense_score,
                "lexical_score": passage.lexical_score,
            }
        pages = [chunk.page] if chunk.page is not None else []
        ref = Reference(number=1, document=chunk.document, citation=chunk.document.citation)
        return cls(
            id=chunk.id,
            text=chunk.text,
            document=chunk.document,
            page=chunk.page,
            section=chunk.heading,
            recommendation=chunk.recommendation,
            citation=reference_line(ref, pages),
            **scores,
        )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    index: str = Field(description="Where the index is.")
    documents: int
    chunks: int
    vector_backend: str
    embedding_model: str
    embedding_backend: str
    models: list[str]


class Cliniq:
    """One process's answerers, behind one lock. Build once; share everywhere."""

    def __init__(self, settings: Settings, assistant: Assistant | None = None) -> None:
        self.settings = settings
        self.assistant = assistant or Assistant(settings)
        self._lock = threading.Lock()
        self._llm: object | None = None
        index = self.assistant.index
        self._health = Health(
            index=str(index.dir),
            documents=0,
            chunks=0,
            vector_backend=index.vectors.location,
            embedding_model=index.docstore.get_meta("embedding_model") or "",
            embedding_backend=index.recorded_backend() or self.assistant.embedder.backend,
            models=list(MODELS),
        )
        self.health()

    # -- answers ----------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[str] = (), *, model: str = "cliniq") -> Answer:
        """Answer ``question``; ``history`` (earlier questions, oldest first) is the
        conversation a follow-up is read against."""
        self.check_model(model)
        self.check_question(question)
        with self._lock:
            return self._answer(question, self._replay(history, question), model)

    def ask_in(self, question: str, session: Session, *, model: str = "cliniq") -> Answer:
        """Answer ``question`` within a conversation the caller keeps (the chat page's)."""
        self.check_model(model)
        with self._lock:
            return self._answer(question, session, model)

    def _answer(self, question: str, session: Session, model: str) -> Answer:
        answerer = self._llm_assistant() if model == "cliniq-llm" else self.assistant
        return answerer.ask(question, session=session)  # type: ignore[attr-defined]

    def check_model(self, model: str) -> None:
        if model not in MODELS:
            raise UnknownModelError(
                f"unknown model {model!r}; use one of: {', '.join(MODELS)} (GET /v1/models)"
            )

    def check_question(self, question: str) -> None:
        """Raise what a caller must fix before any work is done: empty, or too long."""
        text = (question or "").strip()
        if not text:
            raise QuestionError(
                "the question is empty; ask a clinical question, e.g. "
                '"What is the first-line treatment for <condition> in adults?"'
            )
        limit = self.settings.answer.max_question_chars
        if len(text) > limit:
            raise QuestionTooLongError(
                f"the question is {len(text):,} characters long; the limit is {limit:,} "
                "(shorten it, or raise CLINIQ_ANSWER__MAX_QUESTION_CHARS)"
            )

    def _replay(self, history: Sequence[str], question: str = "") -> Session:
        """A conversation rebuilt from earlier questions: each is read (not answered) so the
        topic a follow-up refers to carries over, exactly as in `cliniq chat`. The last one is
        answered when the question points at its source ("that guideline"), which only its
        answer names."""
        session = Session()
        keep = self.settings.serve.max_history
        earlier_questions = list(history)[-keep:] if keep else []
        for n, earlier in enumerate(earlier_questions, start=1):
            try:
                if n == len(earlier_questions) and session.points_at_source(question):
                    self.assistant.ask(earlier, session=session)  # records the turn
                    continue
                u = understand(earlier, session, self.assistant.sources)
            except QuestionError:
                continue
            session.record(earlier, u.standalone, None)
        return session

    def _llm_assistant(self) -> object:
        """Built on first use, from the parts already loaded."""
        if self._llm is None:
            from assistant.generate import LLMAssistant

            base = self.assistant
            self._llm = LLMAssistant(
                self.settings,
                index=base.index,
                embedder=base.embedder,
                lexicon=base.lexicon,
            )
        return self._llm

    # -- sources ----------------------------------------------------------------------------
    def search(
        self, query: str, k: int = 5, mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    ) -> list[PassageView]:
        """Ranked passages with their scores (no answer composed)."""
        if not (query or "").strip():
            raise InvalidArgumentError("the query is empty; give some words to search for", "query")
        if mode not in {"bm25", "dense", "hybrid"}:
            raise InvalidArgumentError(f"mode must be bm25, dense or hybrid, not {mode!r}", "mode")
        limit = self.settings.serve.max_search_k
        if not 1 <= k <= limit:
            raise InvalidArgumentError(
                f"k must be between 1 and {limit}, not {k} (CLINIQ_SERVE__MAX_SEARCH_K)", "k"
            )
        with self._lock:
            passages = self.assistant.retriever.retrieve(query, k=k, mode=mode)
        return [PassageView.of(p.chunk, p) for p in passages]

    def passage(self, passage_id: str) -> PassageView:
        with self._lock:
            found = self.assistant.index.get([passage_id])
        if not found:
            raise PassageNotFoundError(
                f"no passage {passage_id!r} in the index; passage ids come from /v1/search "
                "results or an answer's citations (chunk_id)"
            )
        return PassageView.of(found[0])

    def health(self) -> Health:
        """Index figures (two SQL counts); re-read when no question is being answered, else
        the last ones, so a health check never waits behind an answer."""
        if self._lock.acquire(blocking=False):
            try:
                counts = self.assistant.index.docstore.counts()
            finally:
                self._lock.release()
            self._health = self._health.model_copy(
                update={
                    "documents": counts.get("documents_committed", 0),
                    "chunks": counts.get("chunks", 0),
                }
            )
        return self._health


_shared: dict[str, Cliniq] = {}
_shared_lock = threading.Lock()


def shared(settings: Settings | None = None) -> Cliniq:
    """The process's ``Cliniq`` for these settings (default: the environment's ``CLINIQ_*``),
    built on first use: the model loads once however many retrievers and runnables ask."""
    settings = settings or Settings()
    key = settings.model_dump_json()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Cliniq(settings)
        return _shared[key]
