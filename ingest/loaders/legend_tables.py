"""Tables whose cells are coloured by category, with a legend saying what each colour means.

Some guidelines carry no printed grade in their tables: a schedule's cell is filled in the
colour of a legend entry ("Recommended for ...", "Precaution", "Contraindicated"), and the text
layer holds only the cell's words. This module reads the page's drawing as well as its text:
filled rectangles with their colour, and text runs with their position and colour. A legend
entry is a small coloured mark (a filled square, or a symbol glyph drawn in colour) with its
words beside it. Cells are the page's other fills in a legend colour; each is read with its
row's label (the text left of the coloured cells), the column headings above it and its own
words, and becomes one recommendation per row and category, graded with the legend's words.
Nothing here depends on a publisher's layout, only on the drawing; the only words it reads
are the generic ones that make a category no recommendation ("Not applicable") or one
against ("contraindicated", "should not"), and those that make a category one that advises
at all (a directive word: a drug-interaction table's "No clinically significant interaction
expected" states a finding).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from ingest.grading import Grade
from ingest.loaders.guideline import DIRECTIVE_RE, Extracted

_NOT_A_CATEGORY_RE = re.compile(r"^\s*(?:no\s+recommendation|not\s+applicable|n/?a\b)", re.I)
_AGAINST_RE = re.compile(
    r"\b(?:contraindicated|not\s+(?:be\s+)?recommended|should\s+not|do\s+not|must\s+not)\b", re.I
)


def _directs(words: str) -> bool:
    """A category that advises for or against ("Recommended for ...", "Use routinely", "These
    drugs should not be co-administered"), not a finding ("No clinically significant
    interaction expected"), which is no recommendation."""
    return bool(DIRECTIVE_RE.search(words) or _AGAINST_RE.search(words))


_MARK_MAX = 24.0  # points: a legend swatch is at most this wide and tall
_MARK_GAP = 40.0  # points from a swatch to its words
_MIN_CELLS = 4
#: the operators that set the fill colour, save or restore it, or build and paint rectangles
_OPERATORS = ("q", "Q", "g", "rg", "k", "sc", "scn", "re", "f", "F", "f*", "B", "B*", "b", "b*",
              "n", "S", "s")  # fmt: skip
_WATCHED = frozenset(_OPERATORS) | frozenset(op.encode() for op in _OPERATORS)


Colour = tuple[float, float, float]


@dataclass
class Run:
    x: float
    y: float  # baseline
    size: float  # font size on the page
    text: str
    colour: Colour
    raw: str = ""  # as extracted, with the spaces that say where words break

    @property
    def width(self) -> float:  # estimated: half an em a character
        return 0.5 * self.size * len(self.text)

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass
class Fill:
    x0: float
    y0: float
    x1: float
    y1: float
    colour: Colour

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class PageDrawing:
    """What one page draws: text runs and filled rectangles, in page coordinates."""

    runs: list[Run] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)


def _rgb(values: list[float]) -> Colour | None:
    if len(values) == 1:
        return (values[0],) * 3  # type: ignore[return-value]
    if len(values) == 3:
        return (values[0], values[1], values[2])
    if len(values) == 4:
        c, m, y, k = values
        return ((1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k))
    return None


def _apply(cm: list[float], x: float, y: float) -> tuple[float, float]:
    return cm[0] * x + cm[2] * y + cm[4], cm[1] * x + cm[3] * y + cm[5]


class DrawingCollector:
    """pypdf visitors (``extract_text(visitor_operand_before=..., visitor_text=...)``) that
    record the page's fills and text runs while its text is extracted, in the same pass.

    The drawing is an extra: an operator it cannot follow stops the recording (the page then
    has no colour-coded table), never the page's text."""

    def __init__(self) -> None:
        self.drawing = PageDrawing()
        self.unreadable = False
        self._fill: Colour = (0.0, 0.0, 0.0)
        self._saved: list[Colour] = []
        self._path: list[tuple[float, float, float, float]] = []

    def operand(
        self, operator: object, operands: list[object], cm: list[float], tm: object
    ) -> None:
        if operator in _WATCHED and not self.unreadable:  # most operators draw text: skipped
            try:
                self._operand(operator, operands, cm)
            except Exception:  # malformed operands: give up on the drawing, keep the text
                self.unreadable = True

    def text(self, text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if not self.unreadable:
            try:
                self._text(text, cm, tm, size)
            except Exception:
                self.unreadable = True

    def recommendations(self, page: int) -> list[Extracted]:
        """The page's colour-coded table entries; [] when there are none or the drawing could
        not be followed."""
        if self.unreadable:
            return []
        try:
            return legend_recommendations(self.drawing, page)
        except Exception:  # an odd geometry loses the table's grades, not the document
            return []

    def _operand(self, operator: object, operands: list[object], cm: list[float]) -> None:
        op = operator.decode() if isinstance(operator, bytes) else str(operator)
        if op == "q":
            self._saved.append(self._fill)
        elif op == "Q":
            self._fill = self._saved.pop() if self._saved else self._fill
        elif op in ("g", "rg", "k", "sc", "scn"):
            numbers = [float(v) for v in operands if isinstance(v, (int, float))]
            if len(numbers) == len(operands) and (colour := _rgb(numbers)) is not None:
                self._fill = tuple(round(c, 3) for c in colour)  # type: ignore[assignment]
        elif op == "re" and len(operands) == 4:
            x, y, w, h = (float(v) for v in operands)  # type: ignore[arg-type]
            (ax, ay), (bx, by) = _apply(cm, x, y), _apply(cm, x + w, y + h)
            self._path.append((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
        elif op in ("f", "F", "f*", "B", "B*", "b", "b*"):
            self.drawing.fills.extend(Fill(*box, self._fill) for box in self._path)
            self._path = []
        elif op in ("n", "S", "s"):
            self._path = []

    def _text(self, text: str, cm: list[float], tm: list[float], size: float) -> None:
        if not text.strip():
            return
        a, b, c, d, e, f = tm
        m = (
            a * cm[0] + b * cm[2], a * cm[1] + b * cm[3],
            c * cm[0] + d * cm[2], c * cm[1] + d * cm[3],
            e * cm[0] + f * cm[2] + cm[4], e * cm[1] + f * cm[3] + cm[5],
        )  # fmt: skip
        scale = math.hypot(m[2], m[3]) or 1.0
        size_on_page = float(size or 1.0) * scale
        self.drawing.runs.append(Run(m[4], m[5], size_on_page, text.strip(), self._fill, text))


_RECTANGLE_RE = re.compile(rb"\sre\s")
_NUMBER = rb"(-?\d*\.?\d+)\s+"
_COLOUR_RE = re.compile(  # three or four numbers, then the operator that sets a fill colour
    rb"(?<![\w.])" + _NUMBER * 3 + rb"(?:" + _NUMBER + rb")?(?:rg|k|scn?)\b"
)


def may_hold_colour_table(page: object) -> bool:
    """A page whose own content stream draws rectangles and sets two colours or more (not
    white, black or grey). Only such a page is read with the drawing visitors: with them,
    pypdf also parses every form the page draws (figures), a third more time on a
    figure-heavy guideline."""
    try:
        data = page.get_contents().get_data()  # type: ignore[attr-defined]
    except Exception:  # no content, or content pypdf cannot decode: nothing to look for
        return False
    if len(_RECTANGLE_RE.findall(data)) < _MIN_CELLS:
        return False
    colours = set()
    for match in _COLOUR_RE.finditer(data):
        values = [float(v) for v in match.groups() if v is not None]
        colour = _rgb(values)
        if colour is not None and not _plain(colour) and max(colour) - min(colour) > 0.05:
            colours.add(tuple(round(c, 2) for c in colour))
    return len(colours) >= 2


# -- reading a drawing -------------------------------------------------------------------------


def _plain(colour: Colour) -> bool:
    """White, black or grey-black: page and text colours, never a category."""
    return min(colour) > 0.95 or max(colour) < 0.15


def _is_mark_glyph(text: str) -> bool:
    return len(text) == 1 and (0xE000 <= ord(text) <= 0xF8FF or 0x25A0 <= ord(text) <= 0x25FF)


def _line_text(line: list[Run]) -> str:
    """One printed line from its runs, left to right: a run continuing a word (a drop capital
    set apart, "P" + "recaution") is joined to it without a space."""
    text = ""
    prev: Run | None = None
    for run in sorted(line, key=lambda r: r.x):
        if prev is not None and run.text in text:  # the same words drawn twice
            continue
        if prev is not None:
            spaced = prev.raw.endswith(" ") or run.raw.startswith(" ")
            gap = run.x - (prev.x + prev.width)
            text += " " if spaced or gap > 0.25 * run.size else ""
        text += run.text
        prev = run
    return text


def _lines(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped into printed lines (same baseline within 2 points), top line first."""
    lines: list[list[Run]] = []
    for run in sorted(runs, key=lambda r: -r.y):
        if lines and abs(lines[-1][0].y - run.y) <= 2:
            lines[-1].append(run)
        else:
            lines.append([run])
    return [sorted(line, key=lambda r: r.x) for line in lines]


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _without_markers(runs: list[Run]) -> list[Run]:
    """Superscript digits stay with the word they follow ("mm" + "3" -> "mm³"); footnote
    letters, set smaller than the text, are left out."""
    if not runs:
        return runs
    sizes = sorted(r.size for r in runs)
    body = sizes[len(sizes) // 2]

    def marker(r: Run) -> bool:
        return len(r.text) <= 2 and r.size < 0.85 * body

    kept = [replace(r) for r in runs if not marker(r)]
    for r in runs:
        if marker(r) and r.text.isdigit():
            raised = [k for k in kept if 0 <= r.y - k.y <= 0.6 * body]
            host = min(
                (k for k in raised if abs(k.x + k.width - r.x) < body),
                key=lambda k: abs(k.x + k.width - r.x),
                default=None,
            )
            if host is not None:
                host.text += r.text.translate(_SUPERSCRIPT)
    return kept


def _join_words(parts: list[str]) -> str:
    text = " ".join(parts)
    text = re.sub(r"(\w)- (\w)", r"\1-\2", text)  # "Immuno- compromised" -> "Immuno-compromised"
    return " ".join(text.split())


def _first_segment(line: list[Run]) -> list[Run]:
    """A line's runs up to the first wide gap: the words of one column, not the next one's."""
    for i in range(1, len(line)):
        if line[i].x - (line[i - 1].x + line[i - 1].width) > 2 * line[i].size:
            return line[:i]
    return line


def _stack(lines: list[list[Run]], start: int) -> list[list[Run]]:
    """The lines set one under another from lines[start] down, while each gap stays within
    a line height."""
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if out[-1][0].y - line[0].y > 1.45 * line[0].size:
            break
        out.append(line)
    return out


def _words_beside(runs: list[Run], mark: tuple[float, float, float], right_limit: float) -> str:
    """The legend words printed just right of a mark (its left and right edges, its middle):
    the lines of the column they start, from the line level with the mark's top down. A line
    may start over the mark when its run opens with spaces (the words themselves begin to
    its right)."""
    mark_left, x, y = mark
    near = [
        r for r in runs
        if x < r.x <= x + _MARK_GAP and abs(r.y - y) <= 2 * r.size and not _is_mark_glyph(r.text)
    ]  # fmt: skip
    if not near:
        return ""
    left = min(near, key=lambda r: (abs(r.y - y), r.x)).x
    words = [r for r in runs if mark_left - 2 <= r.x < right_limit and not _is_mark_glyph(r.text)]
    column = [
        _first_segment(line) for line in _lines(words)
        if mark_left - 2 <= line[0].x <= left + 5
        and (abs(line[0].x - left) <= 5 or line[0].raw[:1].isspace())
    ]  # fmt: skip
    first = next((i for i, line in enumerate(column) if line[0].y <= y + line[0].size), None)
    if first is None:
        return ""
    return _join_words([_line_text(line) for line in _stack(column, first)])


def legend(drawing: PageDrawing) -> dict[Colour, str]:
    """Colour -> the words the page's legend gives it. Marks are symbol glyphs drawn in a
    colour, or small filled squares, each with words just right of it."""
    marks: list[tuple[float, float, float, Colour]] = []  # left and right edge, middle, colour
    for r in drawing.runs:
        if _is_mark_glyph(r.text) and not _plain(r.colour):
            marks.append((r.x, r.x + 0.6 * r.size, r.y + 0.3 * r.size, r.colour))
    for f in drawing.fills:
        if 3 <= f.width <= _MARK_MAX and 3 <= f.height <= _MARK_MAX and not _plain(f.colour):
            marks.append((f.x0, f.x1, (f.y0 + f.y1) / 2, f.colour))
    found: dict[Colour, str] = {}
    for left, x, y, colour in marks:
        to_the_right = [m[0] for m in marks if m[0] > x + 10 and abs(m[2] - y) < 30]
        words = _words_beside(drawing.runs, (left, x, y), min(to_the_right, default=math.inf))
        if words and colour not in found:
            found[colour] = words.rstrip(" .")
    return found if len(found) >= 2 else {}


@dataclass
class _Row:
    label: str
    top: float
    bottom: float

    @property
    def centre(self) -> float:
        return (self.top + self.bottom) / 2


def _rows(stub: list[Run]) -> list[_Row]:
    """Row labels: the lines set flush at the stub column's left edge, stacked into one label
    while the gap between lines stays within a line height."""
    margin = min(r.x for r in stub)
    lines = [line for line in _lines(stub) if line[0].x - margin <= 3]
    rows: list[_Row] = []
    at = 0
    while at < len(lines):
        stack = _stack(lines, at)
        size = stack[0][0].size
        label = _join_words([_line_text(line) for line in stack])
        rows.append(_Row(label, stack[0][0].y + size, stack[-1][0].y - 0.3 * size))
        at += len(stack)
    return rows


def _columns(
    drawing: PageDrawing, cells: list[Fill], left: float, top: float
) -> list[tuple[float, float, str]]:
    """Column headings over the coloured cells: (x0, x1, words). Where the heading band has
    drawn cells, their edges are the column edges and a heading's words are the runs centred
    in its column (or a heading spanning it); otherwise each heading is a group of runs that
    overlap across, its column reaching half-way to the next."""
    heading_fills = [f for f in drawing.fills if f.y0 >= top - 2 and f.x1 > left + 2]
    band_top = max((f.y1 for f in heading_fills), default=top + 40)
    runs = [r for r in drawing.runs if top < r.y < band_top and r.x >= left - 2]
    key = _numbered_key([r for r in drawing.runs if not top - 2 <= r.y <= band_top])
    groups: list[tuple[float, float, list[Run]]] = []
    if heading_fills:
        edges = sorted({round(v) for f in heading_fills for v in (f.x0, f.x1) if v >= left - 2})
        for x0, x1 in itertools.pairwise(edges):
            mid = (x0 + x1) / 2
            inside = [
                r for r in runs
                if x0 <= r.centre < x1 or (r.x <= mid <= r.x + r.width and r.width > x1 - x0)
            ]  # fmt: skip
            groups.append((float(x0), float(x1), inside))
    else:
        clusters: list[list[Run]] = []
        for run in sorted(runs, key=lambda r: r.x):
            if clusters and run.x <= max(r.x + r.width for r in clusters[-1]) + 2:
                clusters[-1].append(run)
            else:
                clusters.append([run])
        spans = [(min(r.x for r in c), max(r.x + r.width for r in c)) for c in clusters]
        right = max(f.x1 for f in cells)
        for i, cluster in enumerate(clusters):
            x0 = left if i == 0 else (spans[i - 1][1] + spans[i][0]) / 2
            x1 = right if i == len(clusters) - 1 else (spans[i][1] + spans[i + 1][0]) / 2
            groups.append((x0, x1, cluster))
    columns = []
    for x0, x1, inside in groups:
        if x1 - x0 >= 4 and (words := _join_words([_line_text(ln) for ln in _lines(inside)])):
            columns.append((x0, x1, _named(words, key)))
    return columns


_KEY_ENTRY_RE = re.compile(r"^(\d{1,2})\s*([A-Za-z].{2,80})$")


def _numbered_key(runs: list[Run]) -> dict[str, str]:
    """A page's key of numbered names ("1 Atazanavir + ritonavir"), for column headings that
    print only the number. A number the page gives two names is left unread."""
    names: dict[str, list[str]] = defaultdict(list)
    for line in _lines(runs):
        if match := _KEY_ENTRY_RE.match(_line_text(_first_segment(line))):
            names[match[1]].append(match[2].strip())
    return {n: found[0] for n, found in names.items() if len(found) == 1}


def _named(heading: str, key: dict[str, str]) -> str:
    """A heading ending in a key number gets the key's name: "Protease inhibitors 2" ->
    "Protease inhibitors 2 (Darunavir + ritonavir)"."""
    number = heading.rsplit(" ", 1)[-1]
    return f"{heading} ({key[number]})" if number in key else heading


def _cell_words(runs: list[Run], cells: list[Fill]) -> str:
    """The words printed in the cells, cell by cell left to right; a text repeated is said once."""
    said: list[str] = []
    for cell in sorted(cells, key=lambda f: f.x0):
        inside = [r for r in runs if cell.x0 <= r.centre <= cell.x1 and cell.y0 <= r.y <= cell.y1]
        words = _join_words([_line_text(line) for line in _lines(inside)])
        if words and words not in said:
            said.append(words)
    return "; ".join(said)


def legend_recommendations(drawing: PageDrawing, page: int) -> list[Extracted]:
    """One recommendation per table row and legend category on this page; [] when the page
    has no colour legend with coloured cells."""
    key = {c: words for c, words in legend(drawing).items() if not _NOT_A_CATEGORY_RE.match(words)}
    cells = [
        f for f in drawing.fills
        if f.colour in key and (f.width > _MARK_MAX or f.height > _MARK_MAX)
    ]  # fmt: skip
    if len(cells) < _MIN_CELLS:
        return []
    drawing = PageDrawing(_without_markers(drawing.runs), drawing.fills)
    left = min(f.x0 for f in cells)
    top = max(f.y1 for f in cells)
    bottom = min(f.y0 for f in cells)
    stub = [r for r in drawing.runs if r.x < left - 1 and bottom <= r.y <= top]
    if not stub:
        return []
    rows = _rows(stub)
    columns = _columns(drawing, cells, left, top)
    grouped: dict[tuple[int, Colour], list[Fill]] = defaultdict(list)
    for cell in cells:
        mid = (cell.y0 + cell.y1) / 2
        near = [i for i, row in enumerate(rows) if row.bottom - 20 <= mid <= row.top + 20]
        if near:
            grouped[(min(near, key=lambda i: abs(rows[i].centre - mid)), cell.colour)].append(cell)
    if len({row_at for row_at, _ in grouped}) < 2:  # a chart's bars, not a table's rows
        return []
    out: list[Extracted] = []
    for (row_at, colour), its in sorted(
        grouped.items(), key=lambda g: (-rows[g[0][0]].centre, min(f.x0 for f in g[1]))
    ):
        label = key[colour]
        if not _directs(label):
            continue  # its cells still shape the table's rows and columns
        spans = [
            name for x0, x1, name in columns
            if sum(max(0.0, min(x1, f.x1) - max(x0, f.x0)) for f in its) >= 0.2 * (x1 - x0)
        ]  # fmt: skip
        row = rows[row_at].label
        words = _cell_words(drawing.runs, its)
        statement = f"{row}: {words}" if words else row
        if spans:
            statement += f" ({'; '.join(spans)})"
        direction = "against" if _AGAINST_RE.search(label) else "for"
        grade = Grade(label, None, "category legend", direction=direction)
        item = Extracted(0, 0, page, statement.rstrip(".") + ".", grade, heading=row)
        item.population = "; ".join(spans) or None
        item.pages = [page]
        out.append(item)
    return out
