"""Tables whose cells carry their category by colour, read from the page's drawing.

The PDFs here are built with reportlab in three layouts (legend to the right with square
swatches and RGB fills; legend below, CMYK fills, dark heading cells and numbered column
headings explained by a key; a bar chart with a legend, which is not a table). The real
files (a schedule with glyph swatches and two tables, and a drug-interaction table from
another publisher) are read in the integration test at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingest.loaders import load_file_result

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "guidelines"

GREEN, BLUE, RED, GREY = (0.2, 0.7, 0.2), (0.3, 0.5, 0.9), (0.85, 0.1, 0.1), (0.8, 0.8, 0.8)


def _blocks(path: Path) -> list[dict]:
    (doc,) = load_file_result(path).documents
    return [yaml.safe_load(b) for b in re.findall(r"```recommendation\n(.*?)```", doc.text, re.S)]


def _side_legend_pdf(path: Path) -> Path:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=landscape(A4))
    pdf.setTitle("Schedule of the invented products")
    pdf.setFont("Helvetica", 10)
    pdf.drawString(60, 760, "Schedule of the invented products")
    for x, words in ((60, "Product"), (220, "Under 40"), (320, "40 to 64"), (415, "65 and over")):
        pdf.drawString(x, 700, words)
    cells = [  # (x0, y0, x1, y1, colour, words)
        (200, 660, 500, 690, GREEN, "One dose"),
        (200, 630, 300, 660, GREEN, "Two doses"),
        (300, 630, 500, 660, BLUE, "Discuss first"),
        (200, 600, 300, 630, RED, "Avoid"),
        (300, 600, 500, 630, GREY, ""),
    ]
    for x0, y0, x1, y1, colour, words in cells:
        pdf.setFillColorRGB(*colour)
        pdf.rect(x0, y0, x1 - x0, y1 - y0, stroke=0, fill=1)
        pdf.setFillColorRGB(0, 0, 0)
        if words:
            pdf.drawString(x0 + 10, y0 + 11, words)
    pdf.drawString(60, 671, "Alpha shot")
    pdf.drawString(60, 648, "Beta course")
    pdf.drawString(60, 636, "(two doses)")
    pdf.drawString(60, 611, "Gamma drops")
    legend = [
        (GREEN, ["Recommended for all adults"]),
        (BLUE, ["Recommended after a shared", "decision with the patient"]),
        (RED, ["Not recommended"]),
        (GREY, ["No recommendation"]),
    ]
    y = 680
    for colour, lines in legend:
        pdf.setFillColorRGB(*colour)
        pdf.rect(560, y - 2, 10, 10, stroke=0, fill=1)
        pdf.setFillColorRGB(0, 0, 0)
        for k, line in enumerate(lines):
            pdf.drawString(578, y - 12 * k, line)
        y -= 40
    pdf.showPage()
    pdf.save()
    return path


def _below_legend_pdf(path: Path) -> Path:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=landscape(A4))
    pdf.setTitle("Use of the invented agents by group")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(40, 780, "Use of the invented agents by group")
    pdf.setFillColorCMYK(0.35, 0, 0, 0.95)  # dark heading cells with white numbers
    for x0 in (40, 160, 260, 360):
        pdf.rect(x0, 700, 100 if x0 > 40 else 120, 30, stroke=0, fill=1)
    pdf.setFillColorCMYK(0, 0, 0, 0)
    pdf.drawString(45, 712, "Agent")
    for x, number in ((205, "1"), (305, "2"), (405, "3")):
        pdf.drawString(x, 712, number)
    rows = [
        ("Agent north", [(160, 460, (0, 0.16, 1, 0), "Daily")]),
        ("Agent south", [(160, 260, (0.16, 1, 0.87, 0.06), ""), (260, 460, (0, 0.16, 1, 0), "")]),
        ("Agent east", [(160, 360, (0.27, 0.43, 0, 0), "Weekly"), (360, 460, (0, 0.16, 1, 0), "")]),
    ]
    y = 670
    for label, cells in rows:
        pdf.setFillColorCMYK(0, 0, 0, 1)
        pdf.drawString(45, y + 10, label)
        for x0, x1, cmyk, words in cells:
            pdf.setFillColorCMYK(*cmyk)
            pdf.rect(x0, y, x1 - x0, 28, stroke=0, fill=1)
            if words:
                pdf.setFillColorCMYK(0, 0, 0, 1)
                pdf.drawString(x0 + 20, y + 10, words)
        y -= 30
    pdf.setFillColorCMYK(0, 0, 0, 1)
    for k, name in enumerate(("Adults", "Pregnant women", "Older adults"), start=1):
        pdf.drawString(40, 540 - 12 * k, f"{k} {name}")
    for x, cmyk, lines in (
        (260, (0, 0.16, 1, 0), ["Use routinely"]),
        (400, (0.27, 0.43, 0, 0), ["Use when a risk", "factor is present"]),
        (540, (0.16, 1, 0.87, 0.06), ["Do not use"]),
    ):
        pdf.setFillColorCMYK(*cmyk)
        pdf.rect(x, 520, 12, 12, stroke=0, fill=1)
        pdf.setFillColorCMYK(0, 0, 0, 1)
        for k, line in enumerate(lines):
            pdf.drawString(x + 18, 528 - 11 * k, line)
    pdf.showPage()
    pdf.save()
    return path


def test_a_side_legend_with_square_swatches_grades_each_row_and_colour(tmp_path: Path) -> None:
    blocks = _blocks(_side_legend_pdf(tmp_path / "side.pdf"))
    got = {(b["intervention"], b["strength"]): b for b in blocks}
    assert set(got) == {
        ("Alpha shot", "Recommended for all adults"),
        ("Beta course (two doses)", "Recommended for all adults"),
        ("Beta course (two doses)", "Recommended after a shared decision with the patient"),
        ("Gamma drops", "Not recommended"),
    }  # the grey "No recommendation" cell is no recommendation
    alpha = got[("Alpha shot", "Recommended for all adults")]
    assert alpha["statement"] == "Alpha shot: One dose (Under 40; 40 to 64; 65 and over)."
    assert alpha["population"] == "Under 40; 40 to 64; 65 and over"
    beta = "Beta course (two doses)"
    shared = got[(beta, "Recommended after a shared decision with the patient")]
    assert shared["population"] == "40 to 64; 65 and over"
    assert got[("Gamma drops", "Not recommended")]["direction"] == "against"
    assert alpha["direction"] == "for"


def test_a_legend_below_with_cmyk_fills_and_numbered_headings(tmp_path: Path) -> None:
    blocks = _blocks(_below_legend_pdf(tmp_path / "below.pdf"))
    got = {(b["intervention"], b["strength"]): b["population"] for b in blocks}
    assert got == {
        ("Agent north", "Use routinely"): "1 (Adults); 2 (Pregnant women); 3 (Older adults)",
        ("Agent south", "Do not use"): "1 (Adults)",
        ("Agent south", "Use routinely"): "2 (Pregnant women); 3 (Older adults)",
        ("Agent east", "Use when a risk factor is present"): "1 (Adults); 2 (Pregnant women)",
        ("Agent east", "Use routinely"): "3 (Older adults)",
    }
    against = [b for b in blocks if b["strength"] == "Do not use"]
    assert [b["direction"] for b in against] == ["against"]


def test_a_bar_chart_with_a_legend_is_not_a_table(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = tmp_path / "chart.pdf"
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setFont("Helvetica", 9)
    pdf.drawString(40, 700, "Share of people")
    for k, height in enumerate((80, 120, 60, 140)):
        colour = GREEN if k % 2 else BLUE
        pdf.setFillColorRGB(*colour)
        pdf.rect(150 + 40 * k, 560, 30, height, stroke=0, fill=1)
    for y, colour, words in ((520, GREEN, "Survey one"), (505, BLUE, "Survey two")):
        pdf.setFillColorRGB(*colour)
        pdf.rect(150, y, 8, 8, stroke=0, fill=1)
        pdf.setFillColorRGB(0, 0, 0)
        pdf.drawString(162, y + 1, words)
    pdf.showPage()
    pdf.save()
    assert _blocks(path) == []


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent: real guidelines needed")
def test_real_colour_coded_tables_of_two_publishers() -> None:
    """A schedule whose legend marks are symbol glyphs drawn in colour (two tables), and a
    drug-interaction table with square swatches and a numbered key, from another publisher."""
    schedule = _blocks(SHARED / "pool" / "cdc-acip-adult-schedule-2023.pdf")
    assert len(schedule) == 48  # counted on the rendered pages: 22 in Table 1, 26 in Table 2
    live = [b for b in schedule if b["intervention"] == "Influenza live, attenuated (LAIV4)"]
    assert [b["population"] for b in live] == ["19–26 years; 27–49 years"]
    hpv = {
        b["strength"].split(" based on ")[-1]: b for b in schedule if "(HPV)" in b["intervention"]
    }
    assert hpv["shared clinical decision-making"]["population"] == "27–49 years"
    mmr_against = [
        b for b in schedule if b["intervention"] == "MMR" and b["direction"] == "against"
    ]
    assert len(mmr_against) == 1 and mmr_against[0]["population"].startswith("Pregnancy;")
    assert "Contraindicated or not recommended" in mmr_against[0]["strength"]

    table = _blocks(SHARED / "who-advanced-hiv-2025.pdf")
    interactions = [b for b in table if b["intervention"] == "Rifampicin"]
    avoid = [b for b in interactions if b["strength"].startswith("These drugs should not")]
    assert len(avoid) == 1 and avoid[0]["direction"] == "against"
    assert "(Darunavir + ritonavir)" in avoid[0]["population"]
    assert "(Dolutegravir)" not in avoid[0]["population"]
    # The table's other categories state findings, which advise nothing.
    findings = [b for b in table if b["strength"].startswith(("No ", "Potential "))]
    assert findings == []


def test_only_a_category_that_advises_for_or_against_is_a_recommendation() -> None:
    from ingest.loaders.legend_tables import _directs

    assert _directs("Recommended vaccination for adults who meet the age requirement")
    assert _directs("Precaution: vaccination might be indicated if benefit outweighs risk")
    assert _directs("Use when a risk factor is present") and _directs("Do not use")
    assert _directs("These drugs should not be co-administered")
    assert not _directs("No clinically significant interaction expected")
    assert not _directs("Potential interaction likely to be of weak intensity")


def test_a_drawing_that_cannot_be_followed_costs_the_table_not_the_text(tmp_path: Path) -> None:
    from ingest.loaders.legend_tables import DrawingCollector

    collector = DrawingCollector()
    identity = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    collector.operand(b"re", ["not a number", None, 1, 2], identity, identity)  # must not raise
    assert collector.unreadable and collector.recommendations(1) == []
    collector.text("Words", identity, identity, None, 10)  # ignored once unreadable
    assert collector.drawing.runs == []
    blocks = _blocks(_side_legend_pdf(tmp_path / "side.pdf"))  # a readable one still reads
    assert len(blocks) == 4


def test_only_pages_that_fill_rectangles_in_colours_are_read_with_the_drawing(
    tmp_path: Path,
) -> None:
    from pypdf import PdfReader
    from reportlab.pdfgen import canvas

    from ingest.loaders.legend_tables import may_hold_colour_table

    grey = tmp_path / "grey.pdf"
    pdf = canvas.Canvas(str(grey))
    for k in range(6):  # boxes in grey only: a layout, not a colour key
        pdf.setFillColorRGB(0.8, 0.8, 0.8)
        pdf.rect(50, 700 - 40 * k, 200, 30, stroke=0, fill=1)
    pdf.setFillColorRGB(0, 0, 0)
    pdf.drawString(60, 720, "Plain text on boxes")
    pdf.showPage()
    pdf.save()
    (table,) = PdfReader(_side_legend_pdf(tmp_path / "side.pdf")).pages
    (boxes,) = PdfReader(grey).pages
    assert may_hold_colour_table(table) and not may_hold_colour_table(boxes)
