"""Loaders on real data (MedQuAD XML and JSONL, PubMedQA) and on generated files."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from datetime import date
from pathlib import Path

import pytest
from conftest import make_pdf, shared_dataset, write_doc

from ingest.chunking import chunk_document
from ingest.errors import LoaderError, UnsupportedFileType
from ingest.loaders import SUPPORTED_SUFFIXES, iter_files, load_file, load_file_result
from ingest.settings import IngestSettings
from ingest.types import DocStatus, DocType

RLS_XML = ("medquad", "raw_restless_legs_xml")
BIG = IngestSettings(max_file_bytes=100_000_000)


# -- Markdown --------------------------------------------------------------------------------------

FULL_FRONT = """---
id: aasm-2025-rls-plmd
title: "Treatment of restless legs syndrome: a guideline"
organization: American Academy of Sleep Medicine
journal: Journal of Clinical Sleep Medicine
authors: [Winkelman JW, Berkowski JA]
year: 2025
publication_date: 2024-09-26
citation: "J Clin Sleep Med. 2025;21(1):137-152"
doi: 10.5664/jcsm.11390
pmid: 39324694
url: https://doi.org/10.5664/jcsm.11390
doc_type: guideline
status: current
superseded_by: null
strength_scale: GRADE
populations: [adults, children]
tags: [restless legs syndrome, iron]
---

# Treatment of restless legs syndrome: a guideline

## Recommendations

Iron is first.
"""


def test_markdown_front_matter_maps_onto_document(tmp_path: Path) -> None:
    path = tmp_path / "guideline.md"
    path.write_text(FULL_FRONT)
    [doc] = load_file(path)
    assert doc.id == "aasm-2025-rls-plmd"
    assert doc.title == "Treatment of restless legs syndrome: a guideline"
    assert doc.organization == "American Academy of Sleep Medicine"
    assert doc.journal == "Journal of Clinical Sleep Medicine"
    assert doc.authors == ["Winkelman JW", "Berkowski JA"]
    assert doc.year == 2025 and doc.publication_date == date(2024, 9, 26)
    assert doc.citation == "J Clin Sleep Med. 2025;21(1):137-152"
    assert doc.doi == "10.5664/jcsm.11390" and doc.pmid == "39324694"  # YAML int -> str
    assert doc.url == "https://doi.org/10.5664/jcsm.11390"
    assert doc.doc_type is DocType.guideline and doc.status is DocStatus.current
    assert doc.superseded_by is None and doc.strength_scale == "GRADE"
    assert doc.populations == ["adults", "children"]
    assert doc.tags == ["restless legs syndrome", "iron"]
    assert doc.source_path == str(path)
    assert doc.text.startswith("# Treatment of") and doc.text.endswith("Iron is first.")
    assert "---" not in doc.text


def test_conftest_write_doc_output_loads(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "test-doc-1", "## Section\n\nBody.", tags=["x"])
    [doc] = load_file(path)
    assert (doc.id, doc.organization, doc.year) == ("test-doc-1", "Test Society", 2024)
    assert doc.tags == ["x"] and doc.text == "## Section\n\nBody."


def test_superseded_document_names_its_successor(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "old-1", "Old advice.", status="superseded", superseded_by="new-1")
    [doc] = load_file(path)
    assert doc.status is DocStatus.superseded and doc.superseded_by == "new-1"


def test_plain_markdown_without_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("Intro line.\n\n# Iron and sleep\n\nBody text.\n")
    [doc] = load_file(path)
    assert doc.title == "Iron and sleep"
    assert doc.doc_type is DocType.research
    assert re.fullmatch(r"notes-[0-9a-f]{8}", doc.id)
    no_heading = tmp_path / "sleep_hygiene-tips.markdown"
    no_heading.write_text("```\n# not a heading\n```\nJust text.\n")
    assert load_file(no_heading)[0].title == "sleep hygiene tips"


def test_ids_without_front_matter_are_stable_and_distinct(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "notes.txt", tmp_path / "b" / "notes.txt"
    for path in (a, b):
        path.parent.mkdir()
        path.write_text("Same words.\n")
    id_a, id_b = load_file(a)[0].id, load_file(b)[0].id
    assert id_a != id_b and id_a.startswith("notes-") and id_b.startswith("notes-")
    assert load_file(a)[0].id == id_a
    assert load_file(tmp_path / "a" / ".." / "a" / "notes.txt")[0].id == id_a  # resolved path


# -- text and HTML ---------------------------------------------------------------------------------


def test_text_file_title_is_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "memo.txt"
    path.write_text("\n\n  Iron deficiency in restless legs  \nBody one.\n\n\n\nBody two.\n")
    [doc] = load_file(path)
    assert doc.title == "Iron deficiency in restless legs"
    assert doc.text == "Iron deficiency in restless legs\nBody one.\n\nBody two."
    long = tmp_path / "long.txt"
    long.write_text("word " * 100 + "\nrest")
    title = load_file(long)[0].title
    assert len(title) <= 120 and title.endswith("…") and not title.endswith(" …")


HTML = """<!doctype html>
<html><head><title>Iron for RLS | Example Health</title>
<meta name="citation_doi" content="10.1000/xyz123">
<meta name="citation_publication_date" content="2021/03/04">
<link rel="canonical" href="https://example.org/iron-rls">
<style>.x { color: red }</style><script>var tracking = "SCRIPT TEXT";</script></head>
<body>
<header><a href="/">HEADER LINK</a><h1>Site name</h1></header>
<nav><ul><li>NAV ITEM</li></ul></nav>
<main><article>
<h1>Iron for restless legs</h1>
<p>Check ferritin first.   Iron helps when stores are low.</p>
<h2>Doses</h2>
<ul><li>Oral iron: 65 mg elemental.</li><li>IV iron when oral fails.</li></ul>
<div role="navigation">ROLE NAV</div>
<table><tr><td>Ferritin</td><td>&lt;75 ng/mL</td></tr></table>
<form><input value="FORM FIELD"><button>SUBMIT</button></form>
</article></main>
<aside>ASIDE TEXT</aside>
<footer>FOOTER TEXT</footer>
<script>more()</script>
</body></html>
"""


def test_html_strips_boilerplate_and_keeps_headings(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML)
    [doc] = load_file(path)
    assert doc.title == "Iron for RLS | Example Health"
    assert doc.doi == "10.1000/xyz123" and doc.year == 2021
    assert doc.url == "https://example.org/iron-rls"
    for junk in ("SCRIPT", "HEADER LINK", "Site name", "NAV ITEM", "ROLE NAV", "FORM", "SUBMIT",
                 "ASIDE", "FOOTER", "color: red", "more()"):  # fmt: skip
        assert junk not in doc.text, junk
    lines = doc.text.split("\n\n")
    assert lines[:3] == [
        "# Iron for restless legs",
        "Check ferritin first. Iron helps when stores are low.",
        "## Doses",
    ]
    assert "- Oral iron: 65 mg elemental." in lines and "- IV iron when oral fails." in lines
    assert "Ferritin <75 ng/mL" in doc.text
    chunks = chunk_document(doc)
    assert chunks[-1].section_path == ["Doses"]  # the lone h1 is the title, not a section


def test_html_title_falls_back_to_h1_and_declared_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "latin.htm"
    html = (
        '<html><head><meta charset="iso-8859-1"></head>'
        "<body><h1>Caf\xe9 au lait</h1><p>Sp\xf6t.</p>"
    )
    path.write_bytes(html.encode("latin-1"))
    [doc] = load_file(path)
    assert doc.title == "Café au lait" and "Spöt." in doc.text


# -- PDF -------------------------------------------------------------------------------------------


def test_pdf_pages_become_page_markers(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "review.pdf",
        [["Iron and restless legs", "Ferritin guides therapy."], ["Page two says more."]],
        title="A review of iron",
    )
    [doc] = load_file(path)
    assert doc.title == "A review of iron"
    assert re.search(r"<!-- page: 1 -->\n\n## Iron and restless legs\n\nFerritin guides", doc.text)
    assert "<!-- page: 2 -->\n\nPage two says more." in doc.text
    chunks = chunk_document(doc)
    # The short line without closing punctuation is a heading: a section, never chunk text.
    assert [(c.page, c.section_path, c.text) for c in chunks] == [
        (1, ["Iron and restless legs"], "Ferritin guides therapy."),
        (2, ["Iron and restless legs"], "Page two says more."),
    ]


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "x.pdf", [[], ["Second page heading", "text"]])
    [doc] = load_file(path)
    assert doc.title == "Second page heading"
    assert "<!-- page: 1 -->" not in doc.text and "<!-- page: 2 -->" in doc.text


def test_a_cover_set_in_capitals_gives_title_body_and_year(tmp_path: Path) -> None:
    cover = [
        "CLINICAL GUIDELINES", "ON THE", "TREATMENT OF", "INVENTED DISORDER IN ADULTS",
        "The Evidence Report", "SEPTEMBER 1998",
        "Prepared on behalf of the Alpine Society and the Northern Society for Invented Care",
    ]  # fmt: skip
    path = make_pdf(tmp_path / "cover.pdf", [cover, ["Some text on page two."]])
    [doc] = load_file(path)
    assert doc.title == "CLINICAL GUIDELINES ON THE TREATMENT OF INVENTED DISORDER IN ADULTS"
    assert doc.year == 1998  # the cover's date, not the file's creation date


def test_an_organization_after_a_conjunction_is_named_without_it() -> None:
    from ingest.loaders.metadata import _tidy_org

    assert _tidy_org("and the Society for Vascular Surgery") == "Society for Vascular Surgery"
    assert _tidy_org("The Alpine Society") == "Alpine Society"
    from ingest.loaders.metadata import ORG_RE

    cover = (
        "NATIONAL INSTITUTES\nOF HEALTH\nNorthern Heart, Lung, and Sleep Institute in cooperation"
    )
    match = ORG_RE.search(cover)
    assert match and _tidy_org(match.group(0)) == "Northern Heart, Lung, and Sleep Institute"


@pytest.mark.parametrize(
    ("text", "body"),
    [
        # A word "Guidelines" inside the body's own name stays.
        (
            "Scottish Intercollegiate Guidelines Network",
            "Scottish Intercollegiate Guidelines Network",
        ),
        ("Alpine Society Guidelines", "Alpine Society"),
        # The cover title's capitals before it and the next body's name after it are not it.
        (
            "AND TREATMENT OF LOW BACK PAIN\nDepartment of Veterans Affairs\nDepartment of Defense",
            "Department of Veterans Affairs",
        ),
    ],
)
def test_an_organization_is_named_whole_and_alone(text: str, body: str) -> None:
    from ingest.loaders.metadata import ORG_RE, _tidy_org

    match = ORG_RE.search(text)
    assert match and _tidy_org(match.group(0)) == body


def test_the_body_a_journal_guideline_is_issued_on_behalf_of_is_its_organization(
    tmp_path,
) -> None:
    # A national research council is named more often (authors' affiliations, funding); the
    # article says on whose behalf it is written.
    first = [
        "Recommendations from the international guideline on invented ovary disorder",
        "A. Author1, B. Author2, on behalf of the International Invented Disorder Network",
        "1 Northern Medical Research Council Centre, Melbourne",
        "2 Northern Medical Research Council Centre for Excellence, Sydney",
        "Funded by the Northern Medical Research Council.",
        "(c) The Author(s) 2023. Published by a University Press on behalf of Alpine Society of",
        "Reproduction.",
    ]  # fmt: skip
    path = make_pdf(tmp_path / "journal.pdf", [first, ["Some text on page two."]])
    [doc] = load_file(path)
    assert doc.organization == "International Invented Disorder Network"


# -- MedQuAD ---------------------------------------------------------------------------------------


def test_medquad_xml_real_file() -> None:
    path = shared_dataset(*RLS_XML, "6_NINDS_QA_0000246.xml")
    [doc] = load_file(path)
    assert doc.id == "medquad-6-ninds-qa-0000246"
    assert doc.title == "Restless Legs Syndrome"
    assert doc.url == "http://www.ninds.nih.gov/disorders/restless_legs/restless_legs.htm"
    assert doc.doc_type is DocType.patient_info
    assert doc.organization == "National Institute of Neurological Disorders and Stroke"
    assert doc.text.startswith("## What is (are) Restless Legs Syndrome?\n\nRestless legs")
    assert doc.text.count("\n## ") + 1 == 4  # four answered pairs
    assert "  " not in doc.text


def test_medquad_xml_without_answers_is_an_error() -> None:
    path = shared_dataset(*RLS_XML, "10_MPlus_ADAM_QA_0003385.xml")
    with pytest.raises(LoaderError, match="no answered questions"):
        load_file(path)


def test_medquad_xml_skips_empty_answers(tmp_path: Path) -> None:
    path = tmp_path / "0000042.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document id="0000042" source="NINDS" url="https://example.org/x">'
        "<Focus>Sleep</Focus><QAPairs>"
        '<QAPair pid="1"><Question qid="1">What is it ?</Question><Answer></Answer></QAPair>'
        '<QAPair pid="2"><Question qid="2">How to treat it ?</Question>'
        "<Answer>Rest.    Then  more   rest.</Answer></QAPair>"
        "</QAPairs></Document>"
    )
    [doc] = load_file(path)
    assert doc.text == "## How to treat it?\n\nRest. Then more rest."
    assert doc.id == "medquad-ninds-0000042"  # no collection in the name: the source


def test_medquad_xml_and_jsonl_give_the_same_documents() -> None:
    xml_ids = set()
    for path in sorted(shared_dataset(*RLS_XML).glob("*.xml")):
        with contextlib.suppress(LoaderError):  # the A.D.A.M. file has no answers
            xml_ids.update(d.id for d in load_file(path))
    result = load_file_result(shared_dataset("medquad", "medquad_restless_legs.jsonl"))
    assert {d.id for d in result.documents} == xml_ids and len(xml_ids) == 5
    assert [p.line for p in result.problems] == [1]  # the A.D.A.M. page, all answers removed
    assert "no answered questions" in result.problems[0].reason


def test_medquad_full_jsonl_loads_quickly() -> None:
    path = shared_dataset("medquad", "medquad_answered_collections_1-9.jsonl")
    start = time.perf_counter()
    result = load_file_result(path, BIG)
    elapsed = time.perf_counter() - start
    docs = {d.id: d for d in result.documents}
    assert len(docs) == len(result.documents) == 5476  # 5,477 pages, one without answers
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert [str(p).split(": ", 1)[1] for p in result.problems] == [
        "document 2_GARD_QA/0002079 has no answered questions; skipped"
    ]
    # 16,407 answered pairs; three National Cancer Institute "research" answers are only the
    # clinical-trial paragraphs that site prints on most of its pages: furniture, nothing left.
    assert sum(d.text.count("\n## ") + 1 for d in docs.values()) == 16404
    assert "medquad-9-cdc-qa-0000397" in docs  # doc_id missing: taken from the qid
    assert all(d.doc_type is DocType.patient_info and d.url for d in docs.values())


def test_jsonl_bad_lines_are_reported_and_the_rest_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = shared_dataset("medquad", "medquad_restless_legs.jsonl").read_text().splitlines()
    lines = [*source[:12], "{not json", '["a list"]', '{"question": "q?"}', *source[12:]]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = load_file_result(path)
    assert len(result.documents) == 5
    reasons = {p.line: p.reason for p in result.problems}
    assert reasons[13].startswith("not valid JSON")
    assert reasons[14] == "not a JSON object"
    assert reasons[15].startswith("record lacks answer")
    with caplog.at_level(logging.WARNING, logger="ingest.loaders"):
        assert len(load_file(path)) == 5
    assert f"{path}:13: not valid JSON" in caplog.text


def test_jsonl_with_nothing_loadable_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text("{oops\n{also bad\n")
    with pytest.raises(LoaderError, match="expected MedQuAD JSONL"):
        load_file(path)


# -- PubMedQA --------------------------------------------------------------------------------------


def test_pubmedqa_real_file() -> None:
    result = load_file_result(shared_dataset("pubmedqa", "ori_pqal.json"))
    assert len(result.documents) == 1000 and not result.problems
    doc = result.documents[0]
    assert doc.id == "pubmed-21645374" and doc.pmid == "21645374"
    assert doc.title.startswith("Do mitochondria play a role in remodelling lace plant leaves")
    assert doc.year == 2011 and doc.doc_type is DocType.research
    assert doc.url == "https://pubmed.ncbi.nlm.nih.gov/21645374/"
    assert doc.text.startswith("## BACKGROUND\n\nProgrammed cell death (PCD)")
    assert "\n\n## RESULTS\n\n" in doc.text
    assert re.search(r"\n\n## Conclusion\n\nResults depicted mitochondrial dynamics", doc.text)
    assert "Mitochondria" in doc.tags
    chunks = chunk_document(doc)
    assert chunks[-1].section_path == ["Conclusion"]


def test_pubmedqa_bad_item_is_a_problem_not_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "pqa.json"
    good = {"QUESTION": "Does iron help?", "CONTEXTS": ["Yes it does."], "LABELS": ["RESULTS"],
            "LONG_ANSWER": "Iron helps.", "YEAR": "2019"}  # fmt: skip
    path.write_text(json.dumps({"123": good, "456": {"QUESTION": "", "CONTEXTS": []}}))
    result = load_file_result(path)
    assert [d.id for d in result.documents] == ["pubmed-123"]
    assert "PMID 456: QUESTION is empty" in str(result.problems[0])


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("other.json", '{"a": 1}', "expected PubMedQA JSON"),
        ("list.json", "[1, 2]", "expected PubMedQA JSON"),
        ("bad.json", '{"a": ', r"not valid JSON \(.* at line 1"),
        ("other.jsonl", '{"name": "x"}\n', "expected MedQuAD JSONL.*line 1 has keys: name"),
        ("other.xml", "<root><child/></root>", "expected a MedQuAD XML file"),
        ("broken.xml", "<Document><QAPairs>", "not well-formed XML at line 1"),
    ],
)
def test_wrong_shapes_say_what_was_expected(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LoaderError, match=expected):
        load_file(path)


def test_unsupported_type_lists_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "table.docx"
    path.write_text("x")
    with pytest.raises(UnsupportedFileType) as info:
        load_file(path)
    assert "'.docx'" in info.value.reason
    assert all(suffix in info.value.reason for suffix in SUPPORTED_SUFFIXES)
    assert {".md", ".txt", ".html", ".htm", ".pdf", ".xml", ".jsonl", ".json"} <= SUPPORTED_SUFFIXES


# -- iter_files ------------------------------------------------------------------------------------


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_iter_files_walks_sorted_and_skips_hidden(tmp_path: Path) -> None:
    _touch(tmp_path, "b.md", "a.md", "sub/c.md", ".hidden.md", ".git/config", "sub/.x/d.md")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert got == ["a.md", "b.md", "sub/c.md"]


def test_cliniqignore_patterns_apply_to_their_subtree(tmp_path: Path) -> None:
    _touch(tmp_path, "README.md", "guidelines/README.md", "guidelines/g.md",
           "lexicon/terms.yaml", "notes/lexicon", "data/INDEX.tsv", "data/d.md",
           "drafts/old.md", "other/drafts/old.md", "deep/keep.md", "deep/skip.txt")  # fmt: skip
    (tmp_path / ".cliniqignore").write_text(
        "# comment\n\nREADME.md\nlexicon/\n*.tsv\n/drafts/old.md\n"
    )
    (tmp_path / "deep" / ".cliniqignore").write_text("*.txt\n")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert got == [
        "data/d.md",
        "deep/keep.md",
        "guidelines/g.md",
        "notes/lexicon",  # `lexicon/` matches folders only
        "other/drafts/old.md",  # the anchored pattern matches at the root only
    ]
    # A nested ignore file does not reach outside its own folder.
    _touch(tmp_path, "top.txt")
    assert tmp_path / "top.txt" in list(iter_files([tmp_path]))


def test_iter_files_yields_given_files_once(tmp_path: Path) -> None:
    _touch(tmp_path, "a.md", "b.pdf")
    given = [tmp_path / "b.pdf", tmp_path, tmp_path / "missing.md"]
    got = list(iter_files(given))
    assert got == [tmp_path / "b.pdf", tmp_path / "a.md", tmp_path / "missing.md"]


def test_iter_files_is_fast_on_thousands_of_files(tmp_path: Path) -> None:
    for d in range(30):
        folder = tmp_path / f"dir{d:02d}"
        folder.mkdir()
        for i in range(100):
            (folder / f"f{i:03d}.txt").write_text("x")
    (tmp_path / ".cliniqignore").write_text("f00*.txt\n")
    start = time.perf_counter()
    files = list(iter_files([tmp_path]))
    elapsed = time.perf_counter() - start
    assert len(files) == 3000 - 30 * 10
    assert files == sorted(files)
    assert elapsed < 2.0, f"{elapsed:.2f} s for 3,000 files"


def test_pdf_reading_is_bounded_in_pages_and_time(tmp_path: Path, monkeypatch) -> None:
    """A huge or pathological PDF cannot hold an ingest: pages past MAX_PAGES, and pages
    after MAX_SECONDS of extraction, are skipped with a reason; what was read is kept."""
    import ingest.loaders.pdf as pdf_loader

    words = ["Ferritin guides iron.", "Dialysis changes doses.", "Sleep is assessed.", "End."]
    path = make_pdf(tmp_path / "long.pdf", [[w] for w in words])
    monkeypatch.setattr(pdf_loader, "MAX_PAGES", 3)
    result = load_file_result(path)
    assert "<!-- page: 3 -->" in result.documents[0].text
    assert "<!-- page: 4 -->" not in result.documents[0].text
    assert any("first 3 of 4 pages" in p.reason for p in result.problems)
    monkeypatch.setattr(pdf_loader, "MAX_SECONDS", 0.0)
    result = load_file_result(path)
    assert "<!-- page: 1 -->" in result.documents[0].text
    assert "<!-- page: 2 -->" not in result.documents[0].text
    assert any("pages 2-3 skipped: text extraction over 0 s" in p.reason for p in result.problems)
