"""Every kind of bad file is one LoaderError with a message that says what to do, never a
traceback, and the ingest of the other files goes on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.errors import LoaderError
from ingest.loaders import load_file
from ingest.settings import IngestSettings

FRONT = {
    "id": "iron-review",
    "title": "Iron review",
    "organization": "Test Society",
    "year": "2024",
    "doc_type": "guideline",
    "status": "current",
    "url": "https://example.org/iron",
}


def markdown(**changes: str | None) -> str:
    """Front matter lines (a None value drops the key), then a short body."""
    fields = {**FRONT, **changes}
    lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
    return "---\n" + "\n".join(lines) + "\n---\n\nBody text.\n"


def load_error(path: Path, settings: IngestSettings | None = None) -> LoaderError:
    with pytest.raises(LoaderError) as info:
        load_file(path, settings)
    error = info.value
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: ")
    assert "Traceback" not in str(error) and "\n" not in error.reason
    return error


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_the_valid_baseline_loads(tmp_path: Path) -> None:
    [doc] = load_file(write(tmp_path, "ok.md", markdown()))
    assert doc.id == "iron-review" and doc.year == 2024


@pytest.mark.parametrize("content", ["", "   \n\t\n  "])
def test_empty_or_whitespace_file(tmp_path: Path, content: str) -> None:
    for suffix in (".md", ".txt", ".jsonl"):
        error = load_error(write(tmp_path, f"empty{suffix}", content))
        assert re.search(r"empty|only whitespace", error.reason)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"text\x00\x01\x02 binary", r"looks binary \(NUL byte at offset 4\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is a PNG image"),
        (b"PK\x03\x04rest-of-zip", r"ZIP archive \(or \.docx"),
        (b"%PDF-1.7\n%binary", r"is a PDF.*rename it to \.pdf"),
    ],
)
def test_binary_file_with_a_text_suffix(tmp_path: Path, content: bytes, expected: str) -> None:
    error = load_error(write(tmp_path, "notes.md", content))
    assert re.search(expected, error.reason), error.reason


def test_non_utf8_text_gives_offset_and_iconv_command(tmp_path: Path) -> None:
    content = "Café au lait spots – in NF1.\n".encode("cp1252")
    error = load_error(write(tmp_path, "latin.txt", content))
    assert "not valid UTF-8" in error.reason
    assert "offset 3" in error.reason and "line 1" in error.reason
    assert "iconv -f WINDOWS-1252 -t UTF-8 'latin.txt'" in error.reason
    latin1 = write(tmp_path, "plain.md", "na\xefve\n".encode("latin-1"))
    assert "iconv -f ISO-8859-1 -t UTF-8" in load_error(latin1).reason


def test_utf16_text_is_named(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "wide.txt", "Hello".encode("utf-16")))
    assert "UTF-16" in error.reason and "iconv -f UTF-16 -t UTF-8" in error.reason


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    [doc] = load_file(write(tmp_path, "bom.md", "\ufeff" + markdown()))
    assert doc.id == "iron-review"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"stauts": "current"}, r"unknown key 'stauts' \(line 9\) \(did you mean 'status'\?\)"),
        ({"doc_type": "guidline"}, r"doc_type: 'guidline' \(line 6\) is not one of .*'guideline'"),
        (
            {"status": "retired"},
            r"status: 'retired' \(line 7\) is not one of current \| superseded",
        ),
        ({"title": None, "year": None}, r"missing required field\(s\): title, year"),
        ({"organization": None}, "at least one of `organization` or `journal`"),
        ({"url": None}, "at least one of `doi`, `pmid` or `url`"),
        ({"id": "Iron_Review"}, r"id 'Iron_Review' \(line 2\) must be lowercase"),
        ({"year": "twenty"}, r"year \(line 5\) must be a 4-digit year"),
        ({"publication_date": "26/09/2024"}, r"publication_date \(line 9\) must be an ISO date"),
        ({"status": "superseded"}, "superseded_by is missing"),
        ({"superseded_by": "new-doc"}, "superseded_by is set but status is 'current'"),
        ({"tags": "[a, {b: c}]"}, r"tags \(line 9\) must be a list of plain values"),
        ({"title": "[a, b]"}, r"title \(line 3\) must be a single value"),
        ({"title": '"unclosed'}, r"not valid YAML, line \d+"),
        ({"title": "a: b: c"}, r"not valid YAML, line 3: mapping values are not allowed"),
        ({"year": "2024\nyear: 2025"}, r"not valid YAML, line 6: duplicate key 'year'"),
    ],
)
def test_bad_front_matter_names_the_field(
    tmp_path: Path, changes: dict[str, str | None], expected: str
) -> None:
    error = load_error(write(tmp_path, "doc.md", markdown(**changes)))
    assert re.search(expected, error.reason), error.reason


def test_front_matter_that_is_not_a_mapping(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "list.md", "---\n- a\n- b\n---\nBody\n"))
    assert "must be a YAML mapping" in error.reason


def test_unclosed_front_matter(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "open.md", "---\nid: x\ntitle: y\n\nBody text.\n"))
    assert "never closed" in error.reason


def test_front_matter_without_body(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "nobody.md", markdown().replace("Body text.\n", "")))
    assert "no body text" in error.reason


def test_broken_pdf(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog"))
    assert re.search(r"broken or unreadable PDF|PDF has no pages", error.reason), error.reason
    error = load_error(write(tmp_path, "fake.pdf", "just some text, not a PDF"))
    assert "no %PDF- header" in error.reason


def test_truncated_real_pdf(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    good = tmp_path / "good.pdf"
    pdf = canvas.Canvas(str(good))
    pdf.drawString(72, 720, "Text that will be cut off.")
    pdf.save()
    data = good.read_bytes()
    error = load_error(write(tmp_path, "cut.pdf", data[: len(data) // 3]))
    assert "PDF" in error.reason


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(100, 100, 200, 300, fill=1)  # a page with a picture and no text
    pdf.showPage()
    pdf.save()
    error = load_error(path)
    assert "no text layer" in error.reason and "ocrmypdf" in error.reason


def test_too_large_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "big.txt", "x" * 5000)

    def no_reading(self: Path) -> bytes:
        raise AssertionError("the file was read before its size was checked")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    error = load_error(path, IngestSettings(max_file_bytes=1000))
    assert "5.0 KB (5,000 bytes)" in error.reason and "1.0 KB (1,000 bytes)" in error.reason
    assert "CLINIQ_INGEST__MAX_FILE_BYTES=5000" in error.reason


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in load_error(tmp_path / "gone.md").reason


def test_directory_with_a_supported_suffix(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    assert "not a regular file" in load_error(tmp_path / "folder.md").reason


def test_html_with_only_boilerplate(tmp_path: Path) -> None:
    page = "<html><body><nav>Menu</nav><script>x()</script><footer>(c)</footer></body></html>"
    error = load_error(write(tmp_path, "empty.html", page))
    assert "no text left" in error.reason


def test_html_with_an_unknown_charset(tmp_path: Path) -> None:
    page = b'<html><head><meta charset="klingon-8"></head><body><p>x</p></body></html>'
    assert "unknown charset 'klingon-8'" in load_error(write(tmp_path, "k.html", page)).reason
