"""Guidelines published as HTML: main content only, headings kept, graded statements found
in prose and in tables whose strength is a separate column; metadata from the head."""

from __future__ import annotations

from pathlib import Path

from ingest.chunking import chunk_document
from ingest.loaders import load_file
from ingest.types import Direction, DocType

PAGE = """<!doctype html><html><head>
<title>Site | Guideline</title>
<meta name="citation_title" content="Management of iron deficiency: a clinical practice guideline">
<meta name="citation_publisher" content="Example Society of Haematology">
<meta name="citation_publication_date" content="2023/05/01">
</head><body>
<nav>Home | Guidelines | Contact</nav>
<main>
<h1>Management of iron deficiency: a clinical practice guideline</h1>
<h2>What is the first-line treatment?</h2>
<p>Clinicians should offer oral iron to adults with iron deficiency anaemia.
(Strong recommendation, moderate-certainty evidence)</p>
<p>Updated information and services can be found at: https://example.org/x</p>
<table>
<tr><th>Recommendation</th><th>Strength</th><th>Certainty of evidence</th></tr>
<tr><td>Intravenous iron may be used when oral iron is not tolerated.</td>
    <td>Conditional</td><td>Low</td></tr>
<tr><td>Do not use parenteral iron dextran.</td><td>Strong</td><td>Very low</td></tr>
<tr><td>Check ferritin at follow-up.</td><td>Not graded</td><td></td></tr>
</table>
</main>
<footer>Copyright 2023</footer>
</body></html>"""


def test_html_guideline_graded_prose_table_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "iron.html"
    path.write_text(PAGE)
    [doc] = load_file(path)
    assert doc.title == "Management of iron deficiency: a clinical practice guideline"
    assert doc.organization == "Example Society of Haematology"
    assert doc.year == 2023 and doc.doc_type is DocType.guideline
    assert "Home | Guidelines" not in doc.text and "Updated information" not in doc.text
    chunks = chunk_document(doc)
    recs = [c.recommendation for c in chunks if c.recommendation]
    assert [(r.strength, r.certainty, r.direction) for r in recs] == [
        ("Strong recommendation", "moderate-certainty evidence", Direction.for_),
        ("Conditional recommendation", "Low", Direction.for_),
        ("Strong recommendation", "Very low", Direction.against),
    ]
    # The question-form heading is a section, never cited text; the ungraded row stays text.
    assert all("What is the first-line" not in c.text for c in chunks)
    assert any(c.section_path == ["What is the first-line treatment?"] for c in chunks)
    assert any("Check ferritin at follow-up." in c.text and not c.recommendation for c in chunks)


def test_sidecar_yaml_overrides_what_the_file_says(tmp_path: Path) -> None:
    path = tmp_path / "iron.html"
    path.write_text(PAGE)
    (tmp_path / "iron.html.meta.yaml").write_text(
        "organization: Example Haematology Society (sidecar)\nyear: 2024\n"
    )
    [doc] = load_file(path)
    assert doc.organization == "Example Haematology Society (sidecar)" and doc.year == 2024
    assert doc.title.startswith("Management of iron deficiency: a clinical")


# Built for this test (no openly licensed guideline page could be saved): public-domain USPSTF
# statement text laid out the way guideline sites publish it: <section>s, <h2>/<h3>, numbered
# <p> and <ol> items, grades in <span>s and in a table's grade column.
USPSTF_PAGE = """<!doctype html><html><head>
<title>Hypertension in Adults: Screening | Recommendation Statement</title>
<meta name="citation_title" content="Hypertension in Adults: Screening">
<meta name="DC.publisher" content="U.S. Preventive Services Task Force">
<meta name="citation_publication_date" content="2021/04/27">
</head><body><main>
<section id="recommendations"><h2>Recommendations</h2>
<h3>1.6 Screening for hypertension</h3>
<p>1.6.1 The USPSTF recommends screening for hypertension in adults 18 years or older with
office blood pressure measurement. <span class="grade">(A recommendation)</span></p>
<p>1.6.2 The USPSTF recommends obtaining blood pressure measurements outside of the clinical
setting for diagnostic confirmation before starting treatment.
<span class="grade">(A recommendation)</span></p>
<h3>Other screening</h3>
<ol start="3"><li>The USPSTF concludes that the current evidence is insufficient to assess
the balance of benefits and harms of screening for chronic kidney disease in asymptomatic
adults. <span>(I statement)</span></li></ol>
</section>
<section><h2>Summary table</h2><table>
<tr><th>Population</th><th>Recommendation</th><th>Grade</th></tr>
<tr><td>Adults</td><td>The USPSTF recommends screening for high blood pressure in adults.</td>
<td>A</td></tr></table></section>
</main></body></html>"""


def test_built_html_page_numbered_recommendations_ids_sections_and_grades(
    tmp_path: Path,
) -> None:
    path = tmp_path / "uspstf-hypertension.html"
    path.write_text(USPSTF_PAGE)
    [doc] = load_file(path)
    assert doc.title == "Hypertension in Adults: Screening"
    assert doc.organization == "U.S. Preventive Services Task Force" and doc.year == 2021
    assert doc.doc_type is DocType.guideline
    chunks = [c for c in chunk_document(doc) if c.recommendation]
    got = [(c.recommendation.id, c.recommendation.strength) for c in chunks]
    assert got == [("1.6.1", "Grade A"), ("1.6.2", "Grade A"), ("3", "I statement"),
                   (None, "Grade A")]  # fmt: skip
    assert chunks[0].section_path[-1] == "1.6 Screening for hypertension"
    assert chunks[2].section_path[-1] == "Other screening"
    assert chunks[0].recommendation.statement.startswith("The USPSTF recommends screening")


# Built: a guideline page with no citation_* tags, only Dublin Core, Open Graph and breadcrumbs.
SITE_PAGE = """<!doctype html><html><head>
<title>Screening for lipid disorders in children | Recommendations | Example Health Agency</title>
<meta property="og:site_name" content="Example Health Agency">
<meta name="DC.date" content="2016-08-09">
</head><body>
<nav aria-label="Breadcrumb"><ol><li><a href="/">Home</a></li>
<li><a href="/g">Example Health Agency</a></li><li>Lipid disorders in children</li></ol></nav>
<main><h1>Screening for lipid disorders in children</h1>
<p>The Agency concludes that the current evidence is insufficient to assess the balance of
benefits and harms of screening for lipid disorders in children and adolescents 20 years or
younger. <span>(I statement)</span></p></main></body></html>"""


def test_html_metadata_from_title_meta_tags_and_breadcrumbs(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(SITE_PAGE)
    [doc] = load_file(path)
    assert doc.title == "Screening for lipid disorders in children"
    assert doc.organization == "Example Health Agency" and doc.year == 2016
    assert doc.doc_type is DocType.guideline
