"""Plain-text research articles: a header of `Key: value` lines is metadata, never content."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from conftest import shared_dataset

from ingest.chunking import chunk_document
from ingest.loaders import load_file
from ingest.loaders.header import split_header
from ingest.settings import Settings

ARTICLE = """Title: Timing of anticoagulation after ischaemic stroke: a cohort study

Authors: Rivera, Ana; Okafor, Chidi; Lindqvist, Per
Date: 2021-06-14
DOI: https://doi.org/10.1000/xyz.2021.123
License: cc-by-nc
URL: https://example.org/articles/123
SHA: 0123456789abcdef0123456789abcdef01234567

Abstract: We followed patients with atrial fibrillation after an ischaemic stroke and compared \
early with late starts of anticoagulation, measuring recurrence and bleeding over ninety days.

Text: Early anticoagulation was not associated with more intracranial bleeding in this cohort \
of patients followed for ninety days after their stroke.

Recurrent stroke was less frequent with early starts.
"""


def _load(tmp_path: Path, text: str, name: str = "article.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    docs = load_file(path)
    assert len(docs) == 1
    return docs[0]


def test_header_fields_become_metadata(tmp_path: Path) -> None:
    doc = _load(tmp_path, ARTICLE)
    assert doc.title == "Timing of anticoagulation after ischaemic stroke: a cohort study"
    assert doc.authors == ["Rivera, Ana", "Okafor, Chidi", "Lindqvist, Per"]
    assert doc.year == 2021 and doc.publication_date == date(2021, 6, 14)
    assert doc.doi == "10.1000/xyz.2021.123"
    assert doc.license == "cc-by-nc"
    assert doc.url == "https://example.org/articles/123"


def test_header_is_not_content_but_the_abstract_is(tmp_path: Path) -> None:
    doc = _load(tmp_path, ARTICLE)
    for furniture in ("Title:", "SHA", "0123456789abcdef", "License", "cc-by-nc", "Authors"):
        assert furniture not in doc.text
    assert doc.text.startswith("## Abstract\n\nWe followed patients")
    assert "## Text\n\nEarly anticoagulation" in doc.text
    assert "Recurrent stroke was less frequent" in doc.text
    chunks = chunk_document(doc, Settings().chunking)
    assert chunks and not any("SHA" in c.text or "License" in c.text for c in chunks)


def test_title_line_and_bare_url_open_a_header(tmp_path: Path) -> None:
    text = (
        "A study of things\n\nhttps://example.org/a\n\nSHA: abc\n\n"
        "Authors: Doe, J\nDate: 2019\n\nBody text here.\n"
    )
    doc = _load(tmp_path, text)
    assert doc.title == "A study of things" and doc.url == "https://example.org/a"
    assert doc.year == 2019 and doc.text == "Body text here."


def test_one_key_line_is_not_a_header(tmp_path: Path) -> None:
    """A note that happens to open with 'Note: ...' keeps its first line as title and text."""
    text = "Note: bring the forms\n\nThe clinic opens at nine on weekdays.\n"
    assert split_header(text) is None
    doc = _load(tmp_path, text)
    assert doc.title == "Note: bring the forms" and doc.text.startswith("Note: bring the forms")


def test_long_author_list_stays_a_field() -> None:
    names = "; ".join(f"Surname{i}, Given{i} M." for i in range(30))
    header = split_header(f"Authors: {names}\nDate: 2020-01-01\n\nBody.\n")
    assert header is not None and len(header.authors()) == 30 and header.body == "Body."


def test_covid_qa_articles_read_as_users_have_them() -> None:
    """The 58 CORD-19 articles of COVID-QA: every header read, none of it left in the text."""
    folder = shared_dataset("covid_qa", "articles")
    paths = sorted(folder.glob("*.txt"))
    assert len(paths) == 58
    for path in paths:
        doc = load_file(path)[0]
        head = path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        assert doc.title == head[:300].strip() or doc.title.endswith("…"), path.name
        assert doc.year and 1990 <= doc.year <= 2021, path.name
        assert doc.doi and doc.doi.startswith("10."), path.name
        assert doc.license == "cc-by" and doc.authors and doc.url, path.name
        assert "SHA:" not in doc.text and "License: cc-by" not in doc.text, path.name
        assert not doc.text.startswith(("https://", head)), path.name
