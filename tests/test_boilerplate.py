"""Page furniture recognised by its shape on any site, never by one site's phrases."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import shared_dataset

from ingest.loaders import load_file, load_file_result
from ingest.loaders.boilerplate import (
    interface_sentence,
    link_dense,
    repeated_paragraphs,
    strip_interface,
)
from ingest.loaders.medquad import clean_answer
from ingest.settings import IngestSettings

BIG = IngestSettings(max_file_bytes=100_000_000)


@pytest.mark.parametrize(
    "sentence",
    [
        "To enlarge the video, click the brackets in the lower right-hand corner.",
        "Please click on the link to access this resource.",
        "Click here to view a diagram of the spine.",
        "Tap the play button to start the animation.",
        "This website uses cookies to improve your experience.",
        "Share this page with your friends.",
        "© 2024 Example Health Network. All rights reserved.",
        "Use of these images requires permission from the trademark holder.",
    ],
)
def test_interface_sentences(sentence: str) -> None:
    assert interface_sentence(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Limit cookies, cakes and pies, which are high in saturated fat.",
        "Press firmly on the wound for ten minutes to stop the bleeding.",
        "Do not share needles or syringes with other people.",
        "Your doctor may screen you for diabetes every three years.",
        "Children should play outside for at least an hour each day.",
        "Watch for signs of infection such as fever or redness at the site.",
    ],
)
def test_content_sentences_are_kept(sentence: str) -> None:
    assert not interface_sentence(sentence)


def test_link_dense_lines() -> None:
    assert link_dense("- http://www.clinicaltrials.gov/ https://www.researchmatch.org/")
    assert link_dense("Read more at www.example.org/health/topics/dash-eating-plan.htm")
    assert not link_dense("Aspirin 75 mg daily is advised (see www.example.org) for most people.")


def test_only_the_interface_sentences_of_a_paragraph_go() -> None:
    paragraph = (
        "Gout causes sudden attacks of pain in the joints. To enlarge the video, click the "
        "brackets in the lower right-hand corner. It often starts in the big toe."
    )
    assert strip_interface(paragraph) == (
        "Gout causes sudden attacks of pain in the joints. It often starts in the big toe."
    )
    assert strip_interface("Please click on the link to access this resource.") == ""
    assert strip_interface("- Fever") == "- Fever"


def test_repeated_furniture_needs_half_of_a_sources_pages() -> None:
    pages = []
    for i in range(10):
        title = f"Condition {chr(65 + i)}"
        paragraphs = [
            f"{title} affects {i + 2} in 100,000 people and starts in childhood.",
            f"These resources address the diagnosis or management of {title}:",
            "- Palliative Care",
        ]
        if i < 3:  # shared by a few pages: content, not furniture
            paragraphs.append("This condition is inherited in an autosomal recessive pattern.")
        pages.append((title, paragraphs))
    masks = repeated_paragraphs(pages)
    assert masks[0] == [False, True, True, False]
    assert masks[5] == [False, True, True]
    assert repeated_paragraphs(pages[:4]) == [[False] * len(p) for _, p in pages[:4]]


def _medquad_records() -> list[dict]:
    path = shared_dataset("medquad", "medquad_answered_collections_1-9.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_interface_text_of_several_nih_sites_is_removed(tmp_path: Path) -> None:
    """Video and animation players, links, sharing and rights notices on five NIH/CDC sites."""
    records = _medquad_records()
    marked = {
        "7_SeniorHealth_QA": "click the brackets",  # video player
        "2_GARD_QA": "please click on the link to access this resource",  # a link
        "5_NIDDK_QA": "share this content freely",  # sharing notice
        "8_NHLBI_QA_XML": 'click the "start" button',  # animation player
        "9_CDC_QA": "trademarked/copyrighted images",  # rights notice
    }
    chosen = []
    for collection, phrase in marked.items():
        hits = [
            r for r in records if r["collection"] == collection and phrase in r["answer"].lower()
        ]
        assert hits, collection
        chosen += hits
    path = tmp_path / "pages.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in chosen), encoding="utf-8")
    docs = load_file_result(path, BIG).documents
    text = "\n".join(d.text.lower() for d in docs)
    for phrase in marked.values():
        assert phrase not in text, phrase
    before = sum(len(clean_answer(r["answer"])) for r in chosen)
    assert sum(len(d.text) for d in docs) > 0.8 * before  # the content stays


def test_repeated_page_furniture_of_one_site_is_removed() -> None:
    """Genetics Home Reference prints the same 'resources' list on every page."""
    records = _medquad_records()
    ghr_docs = {r["doc_id"] for r in records if r["collection"] == "3_GHR_QA"}
    result = load_file_result(
        shared_dataset("medquad", "medquad_answered_collections_1-9.jsonl"), BIG
    )
    ghr = [d for d in result.documents if d.id.startswith("medquad-3-ghr-qa-")]
    assert len(ghr) == len(ghr_docs) > 1000
    lists = Counter("- Palliative Care" in d.text for d in ghr)
    assert lists[True] == 0
    # The lead-in names the condition: the same line once the page's own title is taken out.
    # Pages whose lead-in spells the name differently from their title keep it.
    leadins = sum("These resources address the diagnosis or management of" in d.text for d in ghr)
    assert leadins < 0.1 * len(ghr)
    inherited = sum("autosomal recessive pattern" in d.text for d in ghr)
    assert inherited > 300  # shared by a third of the pages: content, kept


def test_covid_article_headers_are_not_quoted() -> None:
    """A third kind of source: research articles as plain text (see test_article_header)."""
    path = sorted(shared_dataset("covid_qa", "articles").glob("*.txt"))[0]
    doc = load_file(path)[0]
    assert "SHA:" not in doc.text and "Authors:" not in doc.text and doc.doi


@pytest.mark.parametrize(
    ("line", "is_author_list"),
    [
        ("Jonas F Ludvigsson,1,2 Julio C Bai,3", True),
        ("Conte,h Misty Humphries,i Lee Kirksey,j Katharine C.", True),  # letters, not numbers
        ("We visited Lyon Paris, a city, and Rome Milan, b town.", False),
        ("In New York, a study of Jane Doe, and others", False),
    ],
)
def test_author_lists_with_affiliation_numbers_or_letters(line: str, is_author_list: bool) -> None:
    from ingest.loaders._common import is_boilerplate_line

    assert is_boilerplate_line(line) is is_author_list


@pytest.mark.parametrize(
    ("sentence", "is_furniture"),
    [
        ("AJ has received speaker's fees from two manufacturers.", True),
        ("The authors declare that they have no competing interests.", True),
        ("This content is not covered by the terms of the Creative Commons licence.", True),
        ("For permission to reuse, please contact the rights holder.", True),
        ("All authors read and approved the final manuscript.", True),
        ("The study was conceived by RC and OK, who drafted the manuscript.", True),
        ("JB took part in the revision of the manuscript and approved the final version.", True),
        ("All authors conceived the study, carried out the analysis, wrote the draft.", True),
        ("The final version of the score was approved by the panel in 2019.", False),
        ("We designed the trial to detect a 10% difference.", False),
        ("Patients who have received support from a nurse do better.", False),
        ("Women who received grants of free care kept their appointments.", False),
    ],
)
def test_disclosures_and_licence_notices_are_not_content(sentence: str, is_furniture: bool) -> None:
    assert interface_sentence(sentence) is is_furniture
