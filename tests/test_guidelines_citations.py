"""Citations that open the page: references say "p. 14", [n] links to its passage, and the
passage viewer marks the cited sentence inside the passage."""

from __future__ import annotations

from assistant.render import pages_label, reference_line, to_markdown, to_text
from assistant.types import Answer, Citation, Reference, Section, Sentence, SentenceKind
from ingest.types import Chunk, DocType, DocumentRef, Passage
from ui.view import (
    answer_blocks,
    citation_links,
    cited_passages_html,
    cited_sentence_spans,
    passage_id,
    passage_where,
)

DOC = DocumentRef(
    id="who-hiv",
    title="WHO guidelines on the management of advanced HIV disease",
    organization="World Health Organization",
    year=2025,
    doc_type=DocType.guideline,
)
CHUNK = Chunk(
    document=DOC,
    position=3,
    page=14,
    section_path=["Prevention and screening"],
    text=(
        "Cryptococcal disease is common. Screening for cryptococcal antigen followed by "
        "pre-emptive antifungal therapy is recommended before initiating ART. "
        "This may be considered at a higher threshold."
    ),
)
CLAIM = (
    "Screening for cryptococcal antigen followed by pre-emptive antifungal therapy is recommended."
)


def _answer() -> Answer:
    citation = Citation(number=1, chunk_id=CHUNK.id, document_id=DOC.id)
    sentence = Sentence(text=CLAIM, citations=[citation], kind=SentenceKind.recommendation)
    return Answer(
        question="q",
        standalone_query="q",
        sections=[Section(key="guidelines", title="From the Guidelines", sentences=[sentence])],
        references=[Reference(number=1, document=DOC, chunk_ids=[CHUNK.id])],
        passages=[Passage(chunk=CHUNK, rank=1, score=0.5)],
    )


def test_references_name_the_organization_and_the_page() -> None:
    answer = _answer()
    assert answer.pages_cited(answer.references[0]) == [14]
    line = reference_line(answer.references[0], [14])
    assert line == (
        "WHO guidelines on the management of advanced HIV disease. World Health Organization. "
        "2025. p. 14."
    )
    assert "p. 14." in to_markdown(answer) and "p. 14." in to_text(answer)
    assert pages_label([9, 14]) == "pp. 9, 14" and pages_label([]) == ""


def test_citation_numbers_link_to_their_passage() -> None:
    cites = [
        Citation(number=3, chunk_id="c" * 32, document_id="d3"),
        Citation(number=1, chunk_id="a" * 32, document_id="d1"),
        Citation(number=3, chunk_id="b" * 32, document_id="d3"),
    ]
    assert citation_links(cites, "a0") == (f"\\[[1](#a0-p{'a' * 12}), [3](#a0-p{'c' * 12})\\]")
    assert citation_links(cites[:1], None) == "[3]"
    blocks = answer_blocks(_answer(), "a4")
    guidelines = next(b for b in blocks if b.kind == "guidelines").markdown
    assert f"[1](#{passage_id('a4', CHUNK.id)})" in guidelines
    references = next(b for b in blocks if b.kind == "references").markdown
    assert "p. 14." in references


def test_viewer_marks_the_cited_sentence_inside_its_passage() -> None:
    spans = cited_sentence_spans(CHUNK.text, [CLAIM])
    assert [s.startswith("<mark>") for s in spans] == [False, True, False]
    viewer = cited_passages_html(_answer(), "a0")
    assert f'id="{passage_id("a0", CHUNK.id)}"' in viewer
    assert "<mark>Screening for cryptococcal antigen" in viewer
    assert "p. 14" in viewer and "World Health Organization" in viewer
    assert passage_where(CHUNK) == (
        "WHO guidelines on the management of advanced HIV disease, World Health Organization, "
        "2025 · p. 14 · Prevention and screening"
    )


def test_viewer_escapes_passage_text() -> None:
    spans = cited_sentence_spans("Doses <5 mg & more. Next.", ["Doses <5 mg & more."])
    assert spans[0] == "<mark>Doses &lt;5 mg &amp; more.</mark>"


def test_a_recommendation_without_a_page_is_cited_by_its_id() -> None:
    from ingest.types import Direction, Recommendation

    rec = Recommendation(
        id="1.6.2",
        statement=CLAIM,
        direction=Direction.for_,
        strength="Grade A",
        population="adults",
        intervention="screening",
    )
    chunk = CHUNK.model_copy(update={"page": None, "recommendation": rec})
    answer = _answer().model_copy(update={"passages": [Passage(chunk=chunk, rank=1, score=0.5)]})
    ref = answer.references[0]
    assert answer.pages_cited(ref) == [] and answer.recs_cited(ref) == ["1.6.2"]
    assert to_markdown(answer).rstrip().endswith("2025. rec. 1.6.2.")
