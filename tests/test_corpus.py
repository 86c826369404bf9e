"""The bundled corpus is data with a schema: every file must load, validate and cross-reference."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from conftest import CORPUS_DIR, REPO_ROOT

from ingest.chunking import chunk_document
from ingest.loaders import iter_files, load_file_result
from ingest.tokens import default_token_counter
from ingest.types import (
    Chunk,
    Direction,
    DocStatus,
    DocType,
    Document,
    GradeConfidence,
    RecommendationKind,
)

REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "rls-guideline-facts.md"
AASM_2025 = "aasm-2025-rls-plmd"


@cache
def corpus() -> tuple[tuple[Document, tuple[Chunk, ...]], ...]:
    out = []
    for path in iter_files([CORPUS_DIR]):
        result = load_file_result(path)
        assert not result.problems, f"{path}: {result.problems}"
        for doc in result.documents:
            out.append((doc, tuple(chunk_document(doc))))
    return tuple(out)


def documents() -> dict[str, Document]:
    return {doc.id: doc for doc, _ in corpus()}


def blocks(doc_id: str | None = None) -> list[Chunk]:
    return [
        c
        for doc, chunks in corpus()
        if doc_id is None or doc.id == doc_id
        for c in chunks
        if c.recommendation is not None
    ]


def test_every_corpus_file_loads_and_only_documents_are_walked():
    files = list(iter_files([CORPUS_DIR]))
    assert files, "corpus/ is empty"
    assert all(f.suffix == ".md" for f in files)
    assert not any(f.name == "README.md" or "lexicon" in f.parts for f in files)
    assert len(corpus()) == len(files)


def test_required_fields_and_bibliography():
    for doc, _ in corpus():
        where = doc.source_path
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", doc.id), f"{where}: id {doc.id!r}"
        assert doc.year and 1990 <= doc.year <= 2026, f"{where}: year"
        assert doc.organization or doc.journal, f"{where}: organization or journal"
        assert doc.doi or doc.pmid or doc.url, f"{where}: DOI, PMID or URL"
        assert doc.authors or doc.organization, f"{where}: authors"
        if doc.doi:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", doc.doi), f"{where}: DOI {doc.doi!r}"
        if doc.pmid:
            assert re.fullmatch(r"\d{6,9}", doc.pmid), f"{where}: PMID {doc.pmid!r}"
        expected_dir = "guidelines" if doc.doc_type is DocType.guideline else "research"
        assert Path(doc.source_path).parent.name == expected_dir, f"{where}: doc_type vs folder"


def test_ids_unique_and_superseded_by_resolves():
    ids = [doc.id for doc, _ in corpus()]
    assert len(ids) == len(set(ids)), "duplicate document ids"
    docs = documents()
    for doc in docs.values():
        if doc.status is DocStatus.superseded:
            assert doc.superseded_by in docs, f"{doc.id}: superseded_by {doc.superseded_by!r}"
            newer = docs[doc.superseded_by]
            assert newer.status is DocStatus.current and (newer.year or 0) > (doc.year or 0)
        else:
            assert doc.superseded_by is None


def test_recommendation_blocks_are_complete_and_fit_one_chunk():
    counter = default_token_counter()
    assert blocks(), "no recommendation blocks in the corpus"
    for chunk in blocks():
        rec = chunk.recommendation
        where = f"{chunk.document.id} / {rec.intervention}"
        assert rec.statement.strip() and rec.population.strip() and rec.intervention.strip()
        assert rec.strength.strip(), where
        if rec.kind is RecommendationKind.recommendation:
            assert rec.certainty, f"{where}: certainty missing (write 'not graded')"
        if rec.grade_confidence is not GradeConfidence.confirmed:
            assert rec.remarks, f"{where}: say in remarks why the grade is not confirmed"
        assert counter.count(chunk.text) + 2 <= 256, f"{where}: block longer than one chunk"
    for _, chunks in corpus():
        assert all(counter.count(c.text) + 2 <= 256 for c in chunks)


def test_guidelines_sections_follow_the_source():
    for doc, chunks in corpus():
        assert all(c.section_path for c in chunks), f"{doc.id}: text outside any section"


# -- the AASM 2025 recommendation set against the reference facts marked P --------------------


def _reference_rows() -> list[dict[str, str]]:
    if not REFERENCE.exists():
        pytest.skip(f"reference file not found: {REFERENCE}")
    rows = []
    for line in REFERENCE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0].isdigit():
            rows.append(
                {
                    "n": cells[0],
                    "topic": cells[1],
                    "statement": cells[2],
                    "direction": cells[3],
                    "strength": cells[4],
                    "certainty": cells[5],
                    "status": cells[6],
                }
            )
    assert rows, "could not parse the reference table"
    return rows


def _drug_of(statement: str) -> str:
    m = re.search(
        r"(?:recommends|suggests)(?: against)?(?: the standard use of)? (.+?)"
        r"(?: over | in adults| in children|\.|$)",
        statement,
        re.I,
    )
    assert m, f"cannot find the intervention in: {statement}"
    return m.group(1).strip().lower()


def _aasm_block(drug: str, population: str = "adults with rls") -> Chunk:
    found = [
        c
        for c in blocks(AASM_2025)
        if drug in c.recommendation.intervention.lower()
        and c.recommendation.population.lower() == population
    ]
    assert len(found) == 1, f"expected one AASM 2025 block for {drug!r}, found {len(found)}"
    return found[0]


def test_aasm_2025_matches_primary_facts():
    checked = 0
    for row in _reference_rows():
        if row["status"] != "P" or not row["topic"].startswith("AASM: adult RLS"):
            continue
        rec = _aasm_block(_drug_of(row["statement"])).recommendation
        assert str(rec.direction) == row["direction"]
        assert rec.strength.lower() == row["strength"].lower()
        assert (rec.certainty or "").lower() == row["certainty"].lower()
        assert rec.grade_confidence is GradeConfidence.confirmed
        checked += 1
    assert checked >= 2, "the reference should pin at least two adult recommendations"


def test_aasm_2025_key_shift_dopaminergics_conditional_against():
    row = next(r for r in _reference_rows() if r["topic"] == "AASM: key shift")
    assert row["status"] == "P"
    for drug in ("pramipexole", "ropinirole", "rotigotine", "levodopa"):
        assert drug in row["statement"].lower()
        rec = _aasm_block(drug).recommendation
        assert rec.direction is Direction.against
        assert rec.strength == "conditional"
        assert "standard use" in rec.statement.lower()


def test_aasm_2025_iron_testing_and_thresholds_from_primary_text():
    gps = [
        c
        for c in blocks(AASM_2025)
        if c.recommendation.kind is RecommendationKind.good_practice
        and "ferritin" in c.text.lower()
    ]
    assert len(gps) == 1
    text = gps[0].text.lower()
    assert "transferrin saturation" in text and "morning" in text
    body = documents()[AASM_2025].text
    assert re.search(r"75\s*ng/mL", body) and re.search(r"20\s*%", body)


def test_confirmed_aasm_2025_grades_are_backed_by_primary_facts():
    """`confirmed` must mean something: only grades the reference saw in primary text."""
    primary_drugs = {
        _drug_of(r["statement"])
        for r in _reference_rows()
        if r["status"] == "P" and r["topic"].startswith("AASM: adult RLS")
    }
    for chunk in blocks(AASM_2025):
        rec = chunk.recommendation
        if rec.grade_confidence is not GradeConfidence.confirmed:
            continue
        if rec.kind is RecommendationKind.good_practice:
            continue
        assert any(d in rec.intervention.lower() for d in primary_drugs), (
            f"{rec.intervention}: marked confirmed but no primary fact supports its grade"
        )


def test_strong_adult_recommendations_are_the_expected_four():
    strong_for = {
        c.recommendation.intervention.lower()
        for c in blocks(AASM_2025)
        if c.recommendation.population.lower() == "adults with rls"
        and c.recommendation.strength == "strong"
        and c.recommendation.direction is Direction.for_
    }
    assert strong_for == {
        "iv ferric carboxymaltose",
        "gabapentin enacarbil",
        "gabapentin",
        "pregabalin",
    }


def test_special_populations_present_in_aasm_2025():
    pops = {c.recommendation.population.lower() for c in blocks(AASM_2025)}
    assert any("esrd" in p for p in pops)
    assert any("children" in p for p in pops)
    esrd = {
        c.recommendation.intervention.lower()
        for c in blocks(AASM_2025)
        if "esrd" in c.recommendation.population.lower()
    }
    assert {"gabapentin", "vitamin c"} <= esrd and any("iron sucrose" in i for i in esrd)


def test_superseded_2012_guideline_recommends_dopamine_agonists():
    """The disagreement the assistant must flag is present in the data, not hidden."""
    old = [c.recommendation for c in blocks("aasm-2012-rls-plmd")]
    assert documents()["aasm-2012-rls-plmd"].status is DocStatus.superseded
    pramipexole = [r for r in old if r.intervention.lower() == "pramipexole"]
    assert pramipexole and pramipexole[0].direction is Direction.for_
