"""cliniq inside a LangChain app: a retriever of cited passages and a runnable that answers.

``CliniqRetriever()`` and ``CliniqAnswerer()`` with no arguments read the same ``CLINIQ_*``
settings as the CLI and share one loaded ``Cliniq`` service per process (assistant.service).
The retriever's Documents carry what a citation needs (page, section, grade, reference); the
runnable returns the structured ``Answer`` (render it with ``assistant.render.to_markdown``).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field, PrivateAttr

from assistant.service import Cliniq, PassageView, shared
from assistant.types import Answer
from ingest.settings import Settings


def passage_document(view: PassageView) -> Document:
    """A passage as a LangChain Document: the text, and flat metadata a vector store or a
    prompt template can use."""
    doc = view.document
    rec = view.recommendation
    metadata: dict[str, Any] = {
        "id": view.id,
        "document_id": doc.id,
        "title": doc.title,
        "source": doc.source_name,
        "year": doc.year,
        "doc_type": str(doc.doc_type),
        "status": str(doc.status),
        "page": view.page,
        "section": view.section,
        "citation": view.citation,
        "url": doc.url,
        "doi": doc.doi,
        "score": view.score,
        "rank": view.rank,
        "grade": None,
    }
    if rec is not None:
        metadata["grade"] = {
            "direction": str(rec.direction),
            "strength": rec.strength,
            "certainty": rec.certainty,
            "scale": doc.strength_scale,
            "confirmed": str(rec.grade_confidence),
        }
    return Document(page_content=view.text, metadata=metadata, id=view.id)


class CliniqRetriever(BaseRetriever):
    """The index's passages for a query (cliniq's hybrid BM25 + dense retrieval)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(default=5, ge=1, le=100, description="Passages per query.")
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    settings: Settings | None = Field(
        default=None, description="Default: the environment's CLINIQ_* settings."
    )
    _service: Cliniq | None = PrivateAttr(default=None)

    @classmethod
    def from_service(cls, service: Cliniq, **kwargs: Any) -> CliniqRetriever:
        """Over an already loaded service (the server's, a test's)."""
        retriever = cls(settings=service.settings, **kwargs)
        retriever._service = service
        return retriever

    @property
    def service(self) -> Cliniq:
        if self._service is None:
            self._service = shared(self.settings)
        return self._service

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [passage_document(v) for v in self.service.search(query, self.k, self.mode)]


class CliniqAnswerer(Runnable[str | dict[str, Any], Answer]):
    """Answers a question with cliniq's verified, cited answer.

    Input: the question, or ``{"question": ..., "history": [earlier questions]}``.
    Output: the structured ``Answer`` (sections, sentences with citations, references,
    abstention, notes).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: str = "cliniq",
        service: Cliniq | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self._service = service

    @property
    def service(self) -> Cliniq:
        if self._service is None:
            self._service = shared(self.settings)
        return self._service

    @property
    def InputType(self) -> type:
        return str

    @property
    def OutputType(self) -> type[Answer]:
        return Answer

    def invoke(
        self, input: str | dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Answer:
        return self._call_with_config(self._answer, input, config)

    def _answer(self, input: str | dict[str, Any]) -> Answer:
        if isinstance(input, dict):
            question = str(input.get("question", ""))
            history = [str(h) for h in input.get("history", [])]
        else:
            question, history = str(input), []
        return self.service.ask(question, history, model=self.model)
