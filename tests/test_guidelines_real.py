# ruff: noqa: E501  (the tables of expected grades read better one statement a line)
"""The seven shared guidelines, as published: recommendations, grades, title, organization, year.

Each test ingests one real file from ../shared/guidelines/ (never copied into the repository)
and checks what cliniq found against what a reader finds in the document: at least 90% of its
graded recommendations, at least 95% of those with the grade printed beside them (strength and
certainty in the source's own words), the title (never cut at a colon), the organization and the
year. The expected lists were read from poppler's `pdftotext` output, independent of the pypdf
text cliniq ingests. These are development figures: the extraction was written against these
files. Skips with a message when ../shared/ is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.chunking import chunk_document
from ingest.loaders import load_file_result
from ingest.types import Chunk, DocType, Recommendation

GUIDELINES = Path(__file__).resolve().parents[1].parent / "shared" / "guidelines"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not GUIDELINES.is_dir(),
        reason=f"{GUIDELINES} is absent: the shared real guidelines are needed for these tests",
    ),
]

# Graded statements as read in each document (key: a few of the statement's own words, lowercased;
# grade as printed). Read from poppler's pdftotext output, which is independent of the pypdf
# text cliniq ingests, and checked by eye against the documents.
EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "who-advanced-hiv-2025": [
        (
            "everyone presenting with advanced hiv disease",
            "Strong recommendation",
            "moderate-certainty evidence",
        ),
        (
            "disease among people living with hiv",
            "Strong recommendation",
            "moderate-certainty evidence",
        ),
        (
            "used to identify advanced hiv disease",
            "Conditional recommendation",
            "very-low-certainty evidence",
        ),
        (
            "outpatient care and reduce avoidable readmissions",
            "Conditional recommendation",
            "low-certainty evidence",
        ),
        (
            "recommended as the preferred diagnostic approach",
            "Strong recommendation",
            "moderate-certainty evidence for adults and adolescents and low-certainty evidence for children",
        ),
        (
            "assay is the preferred diagnostic approach",
            "Strong recommendation",
            "moderate-certainty evidence for adults and adolescents and low-certainty evidence for children",
        ),
        (
            "examination is the preferred diagnostic approach",
            "Strong recommendation",
            "moderate-certainty evidence for adults and adolescents and low-certainty evidence for children",
        ),
        (
            "assays are the preferred diagnostic approaches",
            "Strong recommendation",
            "moderate-certainty evidence for adults and adolescents and low-certainty evidence for children",
        ),
        (
            "further investigation and treatment is appropriate",
            "Strong recommendation",
            "moderate-certainty evidence for adults and adolescents and low-certainty evidence for children",
        ),
        ("cd4 cell count 100 cells mm3", "Strong recommendation", "moderate-certainty evidence"),
        (
            "count threshold of 200 cells mm3",
            "Conditional recommendation",
            "moderate-certainty evidence",
        ),
        ("cd4 cell count 100 cells mm3", "Strong recommendation", "moderate-certainty evidence"),
        (
            "count threshold of 200 cells mm3",
            "Conditional recommendation",
            "moderate-certainty evidence",
        ),
        (
            "for treating people with cryptococcal meningitis",
            "Strong recommendation",
            "moderate-certainty evidence for adults and low-certainty evidence for children",
        ),
        (
            "a maximum of 800 mg daily",
            "Strong recommendation",
            "moderate-certainty evidence for adults and low-certainty evidence for children and adolescents",
        ),
        ("divided into four doses per day", "Strong recommendation", "moderate-certainty evidence"),
        ("a maximum of 800 mg daily", "Strong recommendation", "moderatecertainty evidence"),
        ("a maximum of 800 mg daily", "Strong recommendation", "moderate-certainty evidence"),
        (
            "who have hiv associated cryptococcal meningitis",
            "Strong recommendation",
            "high-certainty evidence for adults and adolescents and moderate-certainty evidence for children",
        ),
        (
            "eight weeks following the induction phase",
            "Strong recommendation",
            "low-certainty evidence",
        ),
        ("suppression of viral loads on art", "Strong recommendation", "high-certainty evidence"),
        (
            "from the initiation of antifungal treatment",
            "Strong recommendation",
            "low-certainty evidence for adults and very-low-certainty evidence for children and adolescents",
        ),
        (
            "diagnosed by detecting circulating histoplasma antigens",
            "Conditional recommendation",
            "low-certainty evidence",
        ),
        (
            "kg is recommended for two weeks",
            "Conditional recommendation",
            "very-low-certainty evidence",
        ),
        (
            "200 mg twice daily is recommended",
            "Conditional recommendation",
            "very-lowcertainty evidence",
        ),
        (
            "daily for 12 months is recommended",
            "Conditional recommendation",
            "very-low-certainty evidence",
        ),
        (
            "and the immune status has improved",
            "Conditional recommendation",
            "very-low-certainty evidence",
        ),
        (
            "involvement is not suspected or proven",
            "Conditional recommendation",
            "very-lowcertainty evidence",
        ),
        (
            "therapy according to who treatment guidelines",
            "Conditional recommendation",
            "very-low-certainty evidence",
        ),
        ("with hiv with kaposi s sarcoma", "Conditional recommendation", "low-certainty evidence"),
        (
            "sarcoma immediate art initiation is recommended",
            "Strong recommendation",
            "low-certainty evidence",
        ),
        (
            "combination with systemic chemotherapy is recommended",
            "Strong recommendation",
            "low-certainty evidence",
        ),
    ],
    "who-ipc-core-components-2016": [
        (
            "combating amr through ipc good practices",
            "Strong recommendation",
            "very low quality of evidence",
        ),
        (
            "be undertaken to achieve successful implementation",
            "Strong recommendation",
            "very low quality of evidence",
        ),
        ("the risk of hai and amr", "Strong recommendation", "very low quality of evidence"),
        (
            "and stakeholders and through national networks",
            "Strong recommendation",
            "very low quality of evidence",
        ),
        (
            "established to reduce hai and amr",
            "Strong recommendation",
            "very low quality of evidence",
        ),
        ("practices and reduce hai and amr", "Strong recommendation", "low quality of evidence"),
        ("a nationwide or sub national level", "Strong recommendation", "low quality of evidence"),
        (
            "all audited persons and relevant staff",
            "Strong recommendation",
            "low quality of evidence",
        ),
        (
            "performance indicator at the national level",
            "Strong recommendation",
            "moderate quality of evidence",
        ),
        (
            "adequately assigned according to patient workload",
            "Strong recommendation",
            "very low quality of evidence",
        ),
        ("available at the point of care", "Strong recommendation", "very low quality of evidence"),
    ],
    "who-malaria-2025": [
        (
            "pyrethroid only long lasting insecticidal nets",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "pyrethroid pbo itns instead of pyrethroid",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "pyrethroid chlorfenapyr itns should be deployed",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "pyrethroid chlorfenapyr itns can be deployed",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "pyrethroid pyriproxyfen itns can be deployed",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "pyrethroid pyriproxyfen itns are not recommended",
            "Conditional recommendation against",
            "Moderate certainty evidence",
        ),
        (
            "insecticide treated nets itns should be",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "irs should be deployed for the",
            "Strong recommendation for",
            "Very low certainty evidence",
        ),
        (
            "irs can be deployed for the",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "the co deployment of itns and",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "insecticides can be regularly applied to",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "the deployment of topical repellents in",
            "Conditional recommendation against",
            "Low certainty evidence",
        ),
        (
            "deployment of insecticide treated clothing is",
            "Conditional recommendation against",
            "Low certainty evidence",
        ),
        (
            "spatial emanators can be deployed for",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "space spraying is not recommended for",
            "Conditional recommendation against",
            "Very low certainty evidence",
        ),
        (
            "screening of residential houses can be",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "in malaria endemic areas pregnant women",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "in areas of moderate to high",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "in areas of seasonal malaria transmission",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "school aged children living in malaria",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "children admitted to hospital with severe",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "antimalarial medicine can be given as",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "during emergencies or periods of health",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        ("in areas with very low to", "Conditional recommendation for", "Low certainty evidence"),
        (
            "in areas with moderate to high",
            "Conditional recommendation against",
            "Very low certainty evidence",
        ),
        (
            "in areas with p vivax transmission",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "mass treatment with an 8 aminoquinoline",
            "Conditional recommendation against",
            "Very low certainty evidence",
        ),
        (
            "who recommends the use of malaria",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "children and adults with uncomplicated p",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "artesunate pyronaridine aspy is recommended as",
            "Strong recommendation for",
            "Low certainty evidence",
        ),
        (
            "act regimens should provide 3 days",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "children weighing 25kg treated with dihydroartemisinin",
            "Strong recommendation for",
            None,
        ),
        (
            "in low transmission areas a single",
            "Strong recommendation for",
            "Low certainty evidence",
        ),
        (
            "pregnant women with uncomplicated p falciparum",
            "Strong recommendation for",
            "Low certainty evidence",
        ),
        ("infants weighing 5 kg with uncomplicated", "Strong recommendation for", None),
        (
            "travellers with uncomplicated p falciparum malaria",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "in areas with chloroquine susceptible infections",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        (
            "qualitative near patient tests for g6pd",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "semi quantitative near patient tests with",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "tafenoquine is recommended as an alternative",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "to prevent relapse children and adult",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "in people with g6pd deficiency primaquine",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "in women who are pregnant or",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "adults and children with severe malaria",
            "Strong recommendation for",
            "High certainty evidence",
        ),
        ("children weighing 20 kg should receive", "Strong recommendation for", None),
        (
            "if artesunate is not available artemether",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "where complete treatment of severe malaria",
            "Strong recommendation for",
            "Moderate certainty evidence",
        ),
        (
            "mass testing and treatment mtat to",
            "Conditional recommendation against",
            "Moderate certainty evidence",
        ),
        (
            "in areas with very low to",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "testing and treatment of people with",
            "Conditional recommendation against",
            "Very low certainty evidence",
        ),
        (
            "routine malaria testing and treatment of",
            "Conditional recommendation against",
            "Very low certainty evidence",
        ),
        (
            "malaria testing and treatment of organized",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "in areas approaching elimination or post",
            "Conditional recommendation for",
            "Low certainty evidence",
        ),
        (
            "in areas approaching elimination or post",
            "Conditional recommendation for",
            "Very low certainty evidence",
        ),
        (
            "in areas approaching elimination or post",
            "Conditional recommendation for",
            "Moderate certainty evidence",
        ),
    ],
    "bsg-coeliac-2014": [
        ("of adult patients also positive serology", "Grade B", None),
        ("adherence to a gluten free diet", "Grade B", None),
        ("cd duodenal biopsy should be considered", "Grade C", None),
        ("dq8 can never confirm the diagnosis", "Grade B", None),
        ("for cd before changing their diet", "Grade B", None),
        ("cd for example first degree relatives", "Grade B", None),
        ("of adult patients also positive serology", "Grade B", None),
        ("and cannot be replaced by serology", "Grade B", None),
        ("obtained including a duodenal bulb biopsy", "Grade C", None),
        ("a duodenal biopsy should be considered", "Grade C", None),
        ("patients at increased risk of lymphoma", "Grade B", None),
        ("suggest an increased risk of complications", "Grade C", None),
        ("does not respond to a gfd", "Grade C", None),
        ("should be reviewed by a dietitian", "Grade C", None),
        ("evaluated more thoroughly than asymptomatic patients", "Grade C", None),
        ("patients should have vaccination for pneumococcus", "Grade C", None),
        ("over the age of 55 years", "Grade D", None),
        ("at least 1000 mg per day", "Grade D", None),
        ("interest or expertise in this field", "Grade D", None),
        ("have annual haematological and biochemical profiles", "Grade D", None),
        ("management strategy for prevention of osteoporosis", "Grade D", None),
        ("for health and care excellence guidelines", "Grade B", None),
        ("with cd should undergo cd testing", "Grade C", None),
        ("than 10 mg gluten per day", "Grade B", None),
        ("biopsy gluten challenge should be performed", "Grade C", None),
        ("commence gluten free oats at diagnosis", "Grade D", None),
        ("of lymphoma among patients with cd", "Grade C", None),
        ("should have a follow up biopsy", "Grade B", None),
        ("that mimic cd must be excluded", "Grade C", None),
        ("gastrointestinal bleeding or unexplained weight loss", "Grade D", None),
        ("tertiary centre to optimise their management", "Grade D", None),
        ("recommended for use outside clinical trials", "Grade D", None),
    ],
}
EXPECTED["cdc-opioids-2022"] = [
    # The source's own number -> recommendation category and evidence type (Box 3).
    (str(n), f"recommendation category: {cat}", f"evidence type: {ev}")
    for n, cat, ev in [
        (1, "B", 3), (2, "A", 2), (3, "A", 4), (4, "A", 3), (5, "B", 4), (6, "A", 4),
        (7, "A", 4), (8, "A", 4), (9, "B", 4), (10, "B", 4), (11, "B", 3), (12, "A", 1),
    ]
]  # fmt: skip
EXPECTED["uspstf-ckd-screening-2012"] = [
    # The abstract's "Recommendation: ..." and the statement's own paragraph are one
    # recommendation; the abstract abbreviates the condition.
    (
        "balance of benefits and harms of routine screening for",
        "I statement",
        "insufficient evidence",
    ),
]

METADATA = {
    "cdc-opioids-2022": (
        "CDC Clinical Practice Guideline for Prescribing Opioids for Pain — United States, 2022",
        "Centers for Disease Control and Prevention",
        2022,
    ),
    "who-advanced-hiv-2025": (
        "WHO guidelines on the management of advanced HIV disease",
        "World Health Organization",
        2025,
    ),
    "who-malaria-2025": (
        "WHO guidelines for malaria, 13 August 2025",
        "World Health Organization",
        2025,
    ),
    "who-ipc-core-components-2016": (
        "Guidelines on Core Components of Infection Prevention and Control Programmes at the "
        "National and Acute Health Care Facility Level",
        "World Health Organization",
        2016,
    ),
    "bsg-coeliac-2014": (
        "Diagnosis and management of adult coeliac disease: guidelines from the British Society "
        "of Gastroenterology",
        "British Society of Gastroenterology",
        2014,
    ),
    "uspstf-ckd-screening-2012": (
        "Screening for Chronic Kidney Disease: USPSTF Recommendation Statement",
        "U.S. Preventive Services Task Force",
        2012,
    ),
}


def _squash(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower().replace("ﬁ", "fi"))


def _score(
    expected: list[tuple[str, str, str | None]], recs: list[tuple[Chunk, Recommendation]]
) -> tuple[int, int, list[str]]:
    """(found, graded right, what was missed or misgraded), matching each expected statement to
    one recommendation chunk: by the source's number when the key is a number, else by words."""
    used: set[int] = set()
    found = right = 0
    problems: list[str] = []
    for key, strength, certainty in expected:
        match = None
        for i, (_, rec) in enumerate(recs):
            if i in used:
                continue
            hit = rec.id == key if key.isdigit() else _squash(key) in _squash(rec.statement)
            if hit:
                match = i
                break
        if match is None:
            problems.append(f"not found: {key!r}")
            continue
        used.add(match)
        found += 1
        rec = recs[match][1]
        cert_ok = (
            _squash(rec.certainty) == _squash(certainty)
            if certainty
            else rec.certainty in (None, "not stated")
        )
        if _squash(rec.strength) == _squash(strength) and cert_ok:
            right += 1
        else:
            problems.append(f"grade of {key!r}: {rec.strength!r}/{rec.certainty!r}")
    return found, right, problems


def _ingest(stem: str, suffix: str = ".pdf") -> tuple[object, list[Chunk]]:
    result = load_file_result(GUIDELINES / f"{stem}{suffix}")
    assert len(result.documents) >= 1
    doc = result.documents[0]
    return doc, chunk_document(doc)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_recommendations_grades_and_metadata(stem: str) -> None:
    if stem == "who-malaria-2025":
        pytest.skip("the 478-page malaria export has its own slow test below")
    _check(stem)


@pytest.mark.slow
def test_who_malaria_478_pages() -> None:
    _check("who-malaria-2025")


def _check(stem: str) -> None:
    doc, chunks = _ingest(stem)
    recs = [(c, c.recommendation) for c in chunks if c.recommendation is not None]
    expected = EXPECTED[stem]
    found, right, problems = _score(expected, recs)
    assert found >= 0.9 * len(expected), f"{stem}: found {found}/{len(expected)}: {problems}"
    assert right >= 0.95 * found, f"{stem}: grades right {right}/{found}: {problems}"
    title, organization, year = METADATA[stem]
    assert doc.title == title
    assert doc.organization == organization
    assert doc.year == year
    assert doc.doc_type is DocType.guideline
    assert all(c.page is not None for c in chunks), "every chunk keeps its page"


def test_journal_boilerplate_is_never_chunk_content() -> None:
    _, chunks = _ingest("bsg-coeliac-2014")
    text = "\n".join(c.text for c in chunks)
    for furniture in (
        "Updated information and services",
        "Downloaded from",
        "doi:10.1136",
        "Jonas F Ludvigsson,1,2",
        "To request permissions",
    ):
        assert furniture not in text
    assert "ﬁ" not in text and "con- sidered" not in text


def test_uspstf_json_export() -> None:
    result = load_file_result(GUIDELINES / "uspstf-epss-api.json")
    docs = result.documents
    recs = [c.recommendation for d in docs for c in chunk_document(d) if c.recommendation]
    assert len(recs) >= 0.9 * 137
    grades = {g: sum(r.strength == f"Grade {g}" for r in recs) for g in "ABCD"}
    grades["I"] = sum(r.strength == "I statement" for r in recs)
    assert grades == {"A": 15, "B": 37, "C": 9, "D": 22, "I": 54}
    assert all(d.organization == "U.S. Preventive Services Task Force" for d in docs)
    assert all("<" not in r.statement for r in recs), "HTML fragments are turned into text"
