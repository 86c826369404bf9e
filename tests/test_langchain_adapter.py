"""cliniq in LangChain chains, with langchain-core: the retriever's Documents and the runnable's
structured answer, built from the environment as an app would build them."""

from __future__ import annotations

import pytest
from conftest import CORPUS_DIR
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel

from assistant.langchain_adapter import CliniqAnswerer, CliniqRetriever
from assistant.render import to_markdown
from assistant.types import Answer

QUESTION = "What is the first-line treatment for restless legs syndrome?"


@pytest.fixture
def from_env(served_index, monkeypatch):
    """The CLINIQ_* settings an app would export; the retriever reads nothing else."""
    monkeypatch.setenv("CLINIQ_STORE__INDEX_DIR", str(served_index))
    monkeypatch.setenv("CLINIQ_LEXICON_DIR", str(CORPUS_DIR / "lexicon"))


def citations(docs: list[Document]) -> list[str]:
    return [f"{d.metadata['citation']} ({d.metadata['section']})" for d in docs]


def test_retriever_documents_carry_page_section_grade_and_citation(from_env):
    retriever = CliniqRetriever(k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("allopurinol urate target")
    assert len(docs) == 3
    top = docs[0]
    assert top.metadata["page"] == 2 and "p. 2" in top.metadata["citation"]
    assert top.metadata["title"].startswith("Urate lowering") and top.metadata["rank"] == 1
    assert "Allopurinol" in top.page_content and top.id == top.metadata["id"]

    graded = [d for d in CliniqRetriever(k=8).invoke("gabapentin enacarbil") if d.metadata["grade"]]
    assert graded, "no recommendation among the passages"
    grade = graded[0].metadata["grade"]
    assert grade["direction"] in {"for", "against"} and grade["strength"]
    assert graded[0].metadata["section"]


def test_a_chain_answers_with_the_structured_answer_and_its_sources(from_env):
    chain = RunnableParallel(
        answer=CliniqAnswerer(),
        sources=CliniqRetriever(k=3) | RunnableLambda(citations),
    )
    out = chain.invoke(QUESTION)
    answer = out["answer"]
    assert isinstance(answer, Answer) and not answer.abstained
    assert all(s.citations for s in answer.all_sentences() if s.kind.value == "recommendation")
    assert len(out["sources"]) == 3 and all(out["sources"])
    markdown = (CliniqAnswerer() | RunnableLambda(to_markdown)).invoke(
        {"question": "And during pregnancy?", "history": [QUESTION]}
    )
    assert "[1]" in markdown and "## References" in markdown
    follow = CliniqAnswerer().invoke({"question": "And during pregnancy?", "history": [QUESTION]})
    assert follow.follow_up and any(
        r.document.id == "rls-pregnancy-2015" for r in follow.references
    )


def test_retriever_and_answerer_share_one_loaded_service(from_env):
    retriever, answerer = CliniqRetriever(), CliniqAnswerer()
    assert retriever.service is answerer.service
