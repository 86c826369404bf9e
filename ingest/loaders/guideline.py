"""Guidelines as published: page text -> clean Markdown with graded recommendation blocks.

PDF and HTML loaders hand their text here as pages of lines. What comes back is the
Markdown-shaped body the chunker reads: `<!-- page: N -->` markers, `##` headings, `- ` list
items, and one ```recommendation block (the same YAML a corpus author writes) for each
statement whose grade is printed beside it, so the chunker makes the same `Recommendation`
chunk from a publisher's PDF as from a hand-written block.

A grade may be printed after its statement ("... (Strong recommendation, moderate-certainty
evidence)", "(recommendation category: A; evidence type: 3)", "(Grade B)"), on the next line,
or before it (MAGICapp exports: "Strong recommendation for , High certainty evidence" then the
statement). A statement is kept as printed; its grade is never inferred from anything but the
printed grade.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace

import yaml

from ingest.grading import Grade, Registry, registry
from ingest.loaders._common import (
    clean_line,
    drop_duplicate_phrases,
    drop_front_matter,
    is_boilerplate_line,
    is_service_page,
    join_hyphenated,
    vocabulary_of,
)

_PAGE_NUMBER_RE = re.compile(
    r"^(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s+of\s+\d{1,4})?$|^-\s*\d{1,4}\s*-$", re.I
)
_DIGITS_RE = re.compile(r"\d+")
# A sentence's end, maybe with a footnote mark after it ("... treatment planning.d", "pain.12").
_SENTENCE_END_RE = re.compile(r"[.!?;:,]['\"”’)\]]*$|(?<=[a-z)])[.!?]['\"”’)\]]*(?:[a-z]|\d{1,3})$")
_LIST_ITEM_RE = re.compile(
    r"^(?:- |\(?(?P<num>\d{1,2}|[a-z])[.)]\s+|(?P<deep>\d{1,2}(?:\.\d{1,3}){1,3})\.?\s+(?=[A-Z]))"
)
_STOP_AFTER_RE = re.compile(
    r"^(?:remarks?\b|practical info|evidence to decision|rationale\b|justification\b"
    r"|implementation considerations|research needs|key (?:info|messages)|benefits and harms"
    r"|certainty of the evidence|values and preferences|note\s*:|source\s*:)",
    re.IGNORECASE,
)
_TITLE_LINE_RE = re.compile(r"\((?:19|20)\d{2}\)$|^(?:updated|new)$|^new,?\s+(?:19|20)\d{2}$", re.I)
_REC_LABEL_RE = re.compile(r"^Recommendations?\s+(\d{1,3}(?:\.\d{1,3})*[a-z]?)\s*:?$", re.I)
_SECTION_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)+\.?\s+\S")
_YEAR_ONLY_RE = re.compile(r"^(?:new,?\s+)?(?:19|20)\d{2}$", re.I)
# A footnote's letter after a word or a full stop ("planning.d", "supports. l", "(...).aa").
_FOOTNOTE_MARK_RE = re.compile(
    r"(?<=[.)])[a-e](?=\s|$)|(?<=[a-z]{4}ing)[a-e](?= )|(?<=[a-z)][.)])\s?[a-z]{1,2}$"
)
_NUMBERED_RE = re.compile(r"^\d{1,2}(?:\.\d{1,3}){1,3}\s+[A-Z(\[]")  # "0.9 e 1.3" is a range
_DEEP_NUMBER_RE = re.compile(r"^(?P<num>\d{1,2}\.\d{1,2}\.\d{1,3})\s+(?=[A-Z])")
_ANY_NUMBER_RE = re.compile(r"^\d{1,2}\.\d{1,2}(?:\.\d{1,3})?\s")
_MAX_STATEMENT_SENTENCES = 6
_MAX_STATEMENT_CHARS = 1500


@dataclass
class Line:
    page: int
    text: str


@dataclass
class Extracted:
    """A statement found with its printed grade: the lines it replaces and the block's fields."""

    start: int  # index of the first line it covers
    end: int  # index after the last line it covers
    page: int
    statement: str
    grade: Grade
    number: str | None = None
    heading: str | None = None
    tail: str = ""  # text printed after the grade on its last line (kept as prose)
    pages: list[int] = field(default_factory=list)  # every page that prints it
    population: str | None = None  # where the layout names it (a table's column headings)


@dataclass
class GuidelineText:
    markdown: str
    recommendations: list[Extracted] = field(default_factory=list)
    scales: Counter[str] = field(default_factory=Counter)


# -- page furniture ----------------------------------------------------------------------------


def _furniture_key(line: str) -> str:
    return _DIGITS_RE.sub("#", line.lower()).strip()


def clean_pages(pages: list[tuple[int, list[str]]]) -> list[Line]:
    """Pages of raw lines -> content lines: ligatures and whitespace fixed, running headers,
    footers, page numbers, journal boilerplate and service pages removed, hyphenated line ends
    joined, consecutive duplicate lines dropped."""
    cleaned: list[tuple[int, list[str]]] = []
    for number, lines in pages:
        text_lines = [clean_line(line) for line in lines]
        text_lines = [line for line in text_lines if line]
        if len(cleaned) < 2:
            text_lines = drop_front_matter(text_lines)
        if not text_lines or is_service_page("\n".join(text_lines)):
            continue
        cleaned.append((number, text_lines))
    counts: Counter[str] = Counter()
    edge_counts: Counter[str] = Counter()
    for _, lines in cleaned:
        keys = {_furniture_key(line) for line in lines}
        counts.update(keys)
        edge_counts.update({_furniture_key(line) for line in lines[:4] + lines[-4:]})
    total = len(cleaned)
    edge_floor = max(3, int(0.3 * total))
    any_floor = max(4, int(0.6 * total))

    def furniture(line: str, at_edge: bool) -> bool:
        key = _furniture_key(line)
        if _PAGE_NUMBER_RE.match(line):
            return True
        if len(line) > 160:
            return False
        if at_edge and edge_counts[key] >= edge_floor and total >= 3:
            return True
        return counts[key] >= any_floor and total >= 4 and len(line.split()) > 2

    all_text = "\n".join(line for _, lines in cleaned for line in lines)
    vocabulary = vocabulary_of(all_text)
    spacer = _Spacer(all_text)
    out: list[Line] = []
    for number, lines in cleaned:
        kept: list[str] = []
        for i, line in enumerate(lines):
            at_edge = i < 4 or i >= len(lines) - 4
            if furniture(line, at_edge) or is_boilerplate_line(line):
                continue
            if kept and line == kept[-1]:
                continue
            kept.append(spacer.fix(drop_duplicate_phrases(line)))
        out.extend(Line(number, line) for line in join_hyphenated(kept, vocabulary))
    last_page = max((number for number, _ in pages), default=0)
    return drop_contents(drop_reference_lists(out), last_page)


class _Spacer:
    """Words a text layer ran together ('Somewomenatincreasedrisk') split again, using only
    the document's own vocabulary and word counts (the likeliest division into words it prints
    elsewhere; a run printed joined more often than spaced is a word of its own). Used only in
    a document whose text layer runs words together, where a rare long word may be split too."""

    _RUN_RE = re.compile(r"[A-Za-z]{12,}")
    _WORD_COST = 4.0  # nats a word: fewer, longer words are the likelier split

    def __init__(self, text: str) -> None:
        words = re.findall(r"[a-z]+", text.lower())
        self.counts = Counter(words)
        self.total = max(1, len(words))
        self.longest = 20
        self.lowered = " ".join(words)
        self.cache: dict[str, str] = {}
        # Only a text layer that runs words together: tokens of 20+ letters are more than
        # 0.2% of its tokens (0.48% in such a file; at most 0.11% in 13 spaced guidelines).
        tokens = text.split()
        runs = sum(1 for t in tokens if re.search(r"[A-Za-z]{20,}", t))
        self.active = runs > 0.002 * max(1, len(tokens))

    def fix(self, line: str) -> str:
        if not self.active or not self._RUN_RE.search(line):
            return line
        return self._RUN_RE.sub(self._split, line)

    @staticmethod
    def _parts(low: str, cuts: list[int]) -> list[str]:
        return [low[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]

    def _split(self, match: re.Match[str]) -> str:
        return self.split_word(match.group(0))

    def split_word(self, run: str) -> str:
        low = run.lower()
        if low in self.cache:
            return self.cache[low] if run.islower() else self._apply(run, self.cache[low])
        n = len(low)
        best: list[tuple[float, int] | None] = [None] * (n + 1)  # (cost, start of last word)
        best[0] = (0.0, 0)
        for end in range(1, n + 1):
            for start in range(max(0, end - self.longest), end):
                prev = best[start]
                word = low[start:end]
                count = self.counts[word]
                if prev is None or count < (1 if len(word) >= 5 else 2 if len(word) > 2 else 20):
                    continue  # a rare short 'word' is a fragment ('tr', 'ed')
                if (len(word) == 1 and word != "a") or (start == 0 and end == n):
                    continue  # the run itself is what is being split
                cost = prev[0] + math.log(self.total / count) + self._WORD_COST
                if best[end] is None or cost < best[end][0]:  # type: ignore[index]
                    best[end] = (cost, start)
        if best[n] is None:
            return run
        cuts: list[int] = []
        end = n
        while end > 0:
            cuts.append(end)
            end = best[end][1]  # type: ignore[index]
        cuts.reverse()
        parts = self._parts(low, cuts)
        if len(parts) < 2 or (len(parts) == 2 and min(self.counts[p] for p in parts) < 5):
            self.cache[low] = low  # two parts only when both are common words
            return run
        if self.counts[low] > 1 and self.lowered.count(" ".join(parts)) < self.counts[low]:
            self.cache[low] = low  # printed joined more often than spaced: a word of its own
            return run
        # A piece may itself be a run printed joined elsewhere ('ovariancancer'): split it too.
        self.cache[low] = " ".join(self.split_word(p) if len(p) >= 8 else p for p in parts)
        return self._apply(run, self.cache[low])

    @staticmethod
    def _apply(run: str, spaced: str) -> str:
        """The run with spaces where `spaced` has them, in the run's own letter case."""
        out, i = [], 0
        for ch in spaced:
            if ch == " ":
                out.append(" ")
            else:
                out.append(run[i])
                i += 1
        return "".join(out)


_REFERENCES_HEADING_RE = re.compile(r"^(?:references?|bibliography|literature cited)$", re.I)
_CITATION_LINE_RE = re.compile(
    r"\bet al\b|\b(?:19|20)\d{2}\s*;\s*\d|\bdoi\s*:|doi\.org/|\bpmid\b|https?://"
    r"|^\(?\d{1,3}[.)]?\s+[A-Z][\w'’-]*,?\s+[A-Z]{1,3}\b|\b(?:19|20)\d{2}\)?\.\s*$",
    re.IGNORECASE,
)
_WINDOW = 4  # lines either side
_MIN_CITATIONS = 3  # citation-like lines in a window that make it a reference list
_MIN_RUN = 12  # lines: a shorter dense stretch is prose that cites studies, kept


def drop_reference_lists(lines: list[Line]) -> list[Line]:
    """Reference lists are other works, never this document's content. A line belongs to one
    when at least three of the nine lines around it look like citations ('et al', a year and
    volume, a DOI, a PMID, a URL), over a run of twelve lines or more; 'References' headings
    go with them."""
    cited = [bool(_CITATION_LINE_RE.search(line.text)) for line in lines]
    dense = [
        sum(cited[max(0, i - _WINDOW) : i + _WINDOW + 1]) >= _MIN_CITATIONS
        for i in range(len(lines))
    ]
    drop = [False] * len(lines)
    i = 0
    while i < len(lines):
        if not dense[i]:
            i += 1
            continue
        j = i
        while j < len(lines) and dense[j]:
            j += 1
        if j - i >= _MIN_RUN:
            # From the first citation to the last, the line after it included (its wrap).
            first = next(k for k in range(i, j) if cited[k])
            last = max(k for k in range(i, j) if cited[k])
            for k in range(first, min(last + 2, j)):
                drop[k] = True
        i = j
    for i, line in enumerate(lines):
        if _REFERENCES_HEADING_RE.match(line.text) and any(drop[i + 1 : i + 4]):
            drop[i] = True
    return [line for line, dropped in zip(lines, drop, strict=True) if not dropped]


# A line of a table of contents: an entry's words (after its section number, if any), then
# (after spaces or leader dots) the page it starts on.
_CONTENTS_LINE_RE = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?\s+)?\D.*[A-Za-z)][\s.…]+(\d{1,3})$"
)
_CONTENTS_HEADING_RE = re.compile(r"^(?:table of )?contents$", re.I)
_MIN_ENTRIES = 5  # entries in a row (a wrapped entry's lines between) that make a contents list


def drop_contents(lines: list[Line], pages: int) -> list[Line]:
    """A table of contents lists this document's sections by page, never says what they say.
    It is five or more entries in a row (at most two wrapped lines between two of them) whose
    pages never go back, never pass the document's last page, and move on at least every
    other entry (a scoring table's 1, 1, 1, 1, 3 does not); its "Contents" heading goes with
    it."""
    drop = [False] * len(lines)
    entries = [
        (i, int(m.group(1)))
        for i, line in enumerate(lines)
        if len(line.text.split()) >= 2 and (m := _CONTENTS_LINE_RE.match(line.text))
    ]
    run: list[tuple[int, int]] = []

    def close() -> None:
        distinct = len({page for _, page in run})
        if len(run) >= _MIN_ENTRIES and distinct >= max(3, len(run) // 2):
            for k in range(run[0][0], run[-1][0] + 1):
                drop[k] = True
            first = run[0][0]
            if first > 0 and _CONTENTS_HEADING_RE.match(lines[first - 1].text):
                drop[first - 1] = True

    for i, page in entries:
        if run and (i - run[-1][0] > 3 or page < run[-1][1] or page > pages + 10):
            close()
            run = []
        if page <= pages + 10:
            run.append((i, page))
    close()
    return [line for line, dropped in zip(lines, drop, strict=True) if not dropped]


# -- recommendations ---------------------------------------------------------------------------


def _heading_like(line: str, next_text: str) -> bool:
    """A short line without closing punctuation before a line that starts a sentence: a
    heading, a table label or a year column ('New, 2025'), never part of a statement."""
    if not line or _LIST_ITEM_RE.match(line) or not (line[:1].isupper() or line[:1].isdigit()):
        return False
    if _SENTENCE_END_RE.search(line) and not line.endswith("?"):
        return False
    if len(line) > 100:
        return False
    # A number that starts a line starts something new only where a space follows it ("2.1
    # Scope", "2025 update"); "0.70; and ..." goes on with the sentence above.
    return not next_text or next_text[:1].isupper() or bool(_NUMBER_OPENS_RE.match(next_text))


_NUMBER_OPENS_RE = re.compile(r"\d[\d.]*\)?\s")


def _caps_heading(text: str) -> bool:
    """'1. RECOMMENDATION ON LABORATORY TESTING': a heading set in capitals."""
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 8 and len(text.split()) >= 2 and all(ch.isupper() for ch in letters)


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s+[A-Z(]|$)", text))


_LEADING_YEAR_RE = re.compile(r"^(?:(?:New|Updated),?\s+)?(?:19|20)\d{2}\s+(?=[A-Z])")


def _statement_text(lines: list[str], reg: Registry, grade: Grade) -> tuple[str, str | None, Grade]:
    """A statement's words and number, from its lines: after its list number, or after its own
    label ("RECOMMENDATION 3: ...", `Registry.opened`), whose kind the grade then takes where the
    grade's system does not say one (an "Evidence statement: ..." closed by "Category A")."""
    text = _LEADING_YEAR_RE.sub("", " ".join(" ".join(lines).split()))
    number = None
    if match := _LIST_ITEM_RE.match(text):
        number = match.group("num") or match.group("deep")
        text = text[match.end() :]
    if opened := reg.opened(text):
        kind, number, text = opened[0], opened[1] or number, opened[2]
        if grade.kind == "recommendation" and kind != grade.kind:
            grade = replace(grade, kind=kind)
    text = _FOOTNOTE_MARK_RE.sub("", text).strip()
    return text, number, grade


def _find_after(
    lines: list[Line], reg: Registry, line_grades: dict[int, Grade], after_lines: set[int]
) -> list[Extracted]:
    """Grades that close their statement: printed after it, on its last line or the next one
    (`after_lines`: whole-line grades the document's layout puts after their statement)."""
    joined = ""
    starts: list[int] = []
    for line in lines:
        starts.append(len(joined))
        joined += line.text + "\n"

    def line_at(offset: int) -> int:
        return max(0, bisect.bisect_right(starts, offset) - 1)

    matches: list[tuple[int, int, Grade]] = [
        (starts[i], starts[i] + len(lines[i].text), line_grades[i]) for i in sorted(after_lines)
    ]
    taken: list[tuple[int, int]] = [(a, b) for a, b, _ in matches]
    for label in reg.after_labels():
        for match in label.pattern.finditer(joined):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            if grade := label.grade(match):
                matches.append((match.start(), match.end(), grade))
                taken.append((match.start(), match.end()))
    matches.sort(key=lambda m: m[0])

    found: list[Extracted] = []
    previous_end = 0  # line index after the previous statement
    for m_start, m_end, grade in matches:
        first = line_at(m_start)
        last = line_at(max(m_start, m_end - 1))
        head = joined[starts[first] : m_start].rstrip("\n")
        tail = joined[m_end : starts[last] + len(lines[last].text)].strip()
        collected: list[str] = [head] if head.strip() else []
        start = first
        j = first - 1
        if collected and reg.opens(lines[first].text):
            j = -1  # its first line opens it: "RECOMMENDATION 3: ..."
        # A statement that shares a line with an earlier grade starts after that grade.
        if found and found[-1].end - 1 == first:
            previous_end = first
        while j >= previous_end:
            text = lines[j].text
            following = (collected[0] if collected else "").lstrip()
            if j in line_grades or text.startswith(("#", "```")):
                break
            if _heading_like(text, following) or _STOP_AFTER_RE.match(text):
                break
            if _caps_heading(text) or _LABEL_RE.match(text):
                break
            candidate = [text, *collected]
            joined_text = " ".join(candidate)
            if (
                _sentences(joined_text) > _MAX_STATEMENT_SENTENCES
                or len(joined_text) > _MAX_STATEMENT_CHARS
            ):
                break
            collected = candidate
            start = j
            if reg.opens(text):
                break
            if _LIST_ITEM_RE.match(text) or _NUMBERED_RE.match(text):
                above = lines[j - 1].text if j - 1 >= previous_end else ""
                if not (above.endswith(":") or _LIST_ITEM_RE.match(above)):
                    break
                if _numbered_under(text, above):
                    break  # "1.3 Clinical hyperandrogenism" over "1.3.1 ...": its section's title
                if above.endswith(":") and _labels_a_group(lines, j - 1, previous_end):
                    break  # "Recommendations for patients with ...:" heads many statements
            if lines[j].page != lines[first].page and _SENTENCE_END_RE.search(text):
                break
            j -= 1
        if not collected:
            continue
        statement, number, grade = _statement_text(collected, reg, grade)
        statement = _from_sentence_start(statement)
        if len(statement) < 25 or not re.search(r"[a-z]{3}", statement):
            continue
        if number is None and start > 0 and (label := _REC_LABEL_RE.match(lines[start - 1].text)):
            number = label.group(1)
        heading = _nearest_heading(lines, start)
        found.append(
            Extracted(start, last + 1, lines[start].page, statement, grade, number, heading, tail)
        )
        previous_end = last + 1
    return found


_NEXT_SENTENCE_RE = re.compile(r"[.;?!]\s+(?=[A-Z])")


def _from_sentence_start(statement: str) -> str:
    """A statement begins where a sentence does: one collected from the middle of running
    prose ("low-density lipoprotein (LDL)-cholesterol. Weight loss reduces ...") starts at its
    next sentence."""
    if not statement[:1].islower():
        return statement
    match = _NEXT_SENTENCE_RE.search(statement)
    return statement[match.end() :] if match else statement


def _labels_a_group(lines: list[Line], end: int, floor: int) -> bool:
    """The lead-in ending at lines[end] (with a colon) names a group of recommendations
    ("Recommendations for patients with severe disease:"), not the start of one statement."""
    k = end
    while k - 1 >= floor and k > end - 2 and not _SENTENCE_END_RE.search(lines[k - 1].text):
        k -= 1
    return bool(re.match(r"recommendations?\b", lines[k].text, re.I))


_CAPTION_RE = re.compile(r"^(?:table|figure|fig\.|box)\s+\d", re.I)  # never a statement
_LEADING_NUMBER_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?\s")


def _numbered_under(line: str, above: str) -> bool:
    """`line` is numbered one level under `above` ("1.3.1 ..." under "1.3 ...")."""
    mine, theirs = _LEADING_NUMBER_RE.match(line), _LEADING_NUMBER_RE.match(above)
    return bool(mine and theirs) and mine.group(1).startswith(theirs.group(1) + ".")  # type: ignore[union-attr]


def _find_before(
    lines: list[Line], reg: Registry, line_grades: dict[int, Grade], before: set[int]
) -> list[Extracted]:
    """Grades printed on their own line before the statement (and good practice statements)."""
    found: list[Extracted] = []
    i = 0
    while i < len(lines):
        if i not in before:
            i += 1
            continue
        j = i + 1
        heading = None
        while j < len(lines) and (
            _TITLE_LINE_RE.search(lines[j].text)
            or lines[j].text.lower() in {"updated", "new"}
            or _SECTION_NUMBER_RE.match(lines[j].text)
        ):
            if _TITLE_LINE_RE.search(lines[j].text) and not _YEAR_ONLY_RE.match(lines[j].text):
                heading = heading or lines[j].text
            j += 1
        body: list[str] = []
        k = j
        while k < len(lines):
            line = lines[k].text
            if k in line_grades:
                break
            if _STOP_AFTER_RE.match(line) or _SECTION_NUMBER_RE.match(line):
                break
            if line.startswith(("#", "```")):
                break
            if "certainty of the evidence" in line.lower():
                break
            ended = bool(body) and bool(_SENTENCE_END_RE.search(body[-1]))
            if ended and line.startswith("- ") and not body[-1].rstrip().endswith((":", ";")):
                break
            if ended and _heading_like(line, lines[k + 1].text if k + 1 < len(lines) else ""):
                break
            candidate = " ".join([*body, line])
            if body and (
                _sentences(candidate) > _MAX_STATEMENT_SENTENCES
                or len(candidate) > _MAX_STATEMENT_CHARS
            ):
                break
            body.append(line)
            k += 1
            if _SENTENCE_END_RE.search(line) and k < len(lines):
                nxt = lines[k].text
                if _STOP_AFTER_RE.match(nxt) or k in line_grades:
                    break
        statement, number, grade = _statement_text(body, reg, line_grades[i])
        if len(statement) >= 25 and not _CAPTION_RE.match(statement):
            found.append(Extracted(i, k, lines[i].page, statement, grade, number, heading or None))
            i = k
        else:
            i += 1
    return found


def _line_layout(lines: list[Line], line_grades: dict[int, Grade]) -> tuple[set[int], set[int]]:
    """Whole-line grades before or after their statement, as the document lays them out.

    A grade line closes its statement when the line above ends a sentence and the stretch
    since the previous grade line is one statement (no 'Remarks', 'Evidence to decision' or the
    like in it); the document's majority decides for all its strength lines. Good practice and
    consensus labels head their statement, unless the strength lines close theirs and the same
    majority over the labels' own lines says they close theirs too."""
    graded = sorted(line_grades)
    strength_lines = [i for i in graded if line_grades[i].kind == "recommendation"]
    headers = [i for i in graded if line_grades[i].kind != "recommendation"]

    def votes(kind_lines: list[int]) -> int:
        total = 0
        for i in kind_lines:
            before = bisect.bisect_left(graded, i)
            previous = graded[before - 1] if before else -1
            above = lines[i - 1].text if i > 0 else ""
            stretch = [line.text for line in lines[previous + 1 : i]]
            closes = (
                bool(stretch)
                and bool(_SENTENCE_END_RE.search(above))
                and not any(_STOP_AFTER_RE.match(t) for t in stretch)
                and (i - 1) not in line_grades
            )
            total += 1 if closes else -1
        return total

    if votes(strength_lines) > 0:
        if votes(headers) > 0:
            return set(), set(strength_lines) | set(headers)
        return set(headers), set(strength_lines)
    return set(headers) | set(strength_lines), set()


# "Use" directs only where it opens a sentence or clause ("Use X for Y"); elsewhere it is mostly
# the noun ("Concurrent use of tests in children", a section's title).
DIRECTIVE_RE = re.compile(
    r"\b(?:should|must|shall|recommend(?:s|ed)?|suggest(?:s|ed)?|offer|consider|advised?|"
    r"indicated|(?:is|are)\s+(?:preferred|appropriate|not\s+appropriate)|avoid)\b"
    r"|(?:^|[.;:]\s+)use\b",
    re.I,
)


def _find_verbs(lines: list[Line], reg: Registry, document_text: str) -> list[Extracted]:
    """Numbered directive statements ('1.2.3 Offer ...'): the verb is the strength where the
    document defines its verbs; otherwise each is kept ungraded. Read only in a document
    numbered that way throughout (three such items at least)."""
    starts = [i for i, line in enumerate(lines) if _DEEP_NUMBER_RE.match(line.text)]
    if len(starts) < 3:
        return []
    defined = reg.defines_verbs(document_text)
    found: list[Extracted] = []
    for i in starts:
        number = _DEEP_NUMBER_RE.match(lines[i].text).group("num")  # type: ignore[union-attr]
        body = [lines[i].text[len(number) :].strip()]
        following = lines[i + 1].text if i + 1 < len(lines) else ""
        if _heading_like(body[0], following) or "...." in body[0] or _STOP_AFTER_RE.match(body[0]):
            # A numbered section heading ("4.1.3 Practical information" over its bullets) or a
            # contents line, not a statement.
            continue
        k = i + 1
        while k < len(lines) and not _ANY_NUMBER_RE.match(lines[k].text):
            following = lines[k + 1].text if k + 1 < len(lines) else ""
            if _heading_like(lines[k].text, following) or _STOP_AFTER_RE.match(lines[k].text):
                break
            if lines[k].text.startswith(("#", "```")):
                break
            if _sentences(" ".join(body)) >= _MAX_STATEMENT_SENTENCES:
                break
            body.append(lines[k].text)
            k += 1
        statement = " ".join(" ".join(body).split())
        if lead := reg.lead_grade(statement):
            grade, statement = lead
            found.append(Extracted(i, k, lines[i].page, statement, grade, number, None))
            continue
        grade = reg.verb_grade(statement, document_text) if defined else None
        first_sentence = re.split(r"(?<=[.;])\s", statement)[0]
        if grade is None and DIRECTIVE_RE.search(first_sentence):
            grade = UNGRADED
        if grade is not None:
            heading = _nearest_heading(lines, i)
            found.append(Extracted(i, k, lines[i].page, statement, grade, number, heading))
    return found


UNGRADED = Grade("not graded", None, "ungraded")
_LABEL_RE = re.compile(
    r"^(?:[A-Z][\w-]*\s+){0,3}(?:recommendations?|statements?)\s*(?:\[[\d,\s–-]+\])?\s*:?\s*$",
    re.IGNORECASE,
)
_FINITE_VERB_RE = re.compile(
    r"\b(?:is|are|was|were|has|have|should|must|can|may|will|need|needs|be)\b", re.I
)
_ITEM_START_RE = re.compile(
    r"^(?:- |(?P<num>\d{1,2}(?:\.\d{1,3}){0,3}[a-z]?)(?:[.)]|\s*\((?P<tier>[A-Z])\))?\s+(?=\S))"
)


def _numbering_depth(text: str) -> tuple[str, int] | None:
    match = _ITEM_START_RE.match(text)
    if not match:
        return None
    if not match.group("num"):
        return ("-", 0)
    return ("n", match.group("num").count("."))


def _find_listed(lines: list[Line], reg: Registry) -> list[Extracted]:
    """Statements listed under a 'Recommendations' label (numbered or bulleted items, in the
    numbering style of the first item): kept ungraded when no grade is printed with them. A
    line ending in a printed grade ends its statement, as a full stop does."""
    closing = reg.after_labels()

    def ended(line: str) -> bool:
        return bool(_SENTENCE_END_RE.search(line)) or any(
            (m := label.pattern.search(line)) is not None and not line[m.end() :].strip()
            for label in closing
        )

    found: list[Extracted] = []
    i = 0
    while i < len(lines):
        if not _LABEL_RE.match(lines[i].text) or i + 1 >= len(lines):
            i += 1
            continue
        style = _numbering_depth(lines[i + 1].text)
        if style is None:
            i += 1
            continue
        k = i + 1
        block: list[Extracted] = []
        ended_block = False
        while k < len(lines) and not ended_block:
            if _numbering_depth(lines[k].text) != style:
                break
            body = [lines[k].text]
            m = k + 1
            while m < len(lines):
                text = lines[m].text
                depth = _numbering_depth(text)
                if depth == style or _LABEL_RE.match(text):
                    break  # the next item, or the next list
                if depth and style[0] == "n" and depth[0] == "n" and depth[1] < style[1]:
                    break  # a section number above the items' ("6." after "5.2")
                if text.startswith(("#", "```")) or _caps_heading(text):
                    break
                if _STOP_AFTER_RE.match(text):
                    ended_block = True  # 'Remarks', 'Rationale': the list of statements is over
                    break
                following = lines[m + 1].text if m + 1 < len(lines) else ""
                if ended(" ".join(body)) and (
                    _heading_like(text, following) or len(" ".join(body)) > 400
                ):
                    break
                if len(" ".join(body)) > _MAX_STATEMENT_CHARS:
                    break
                body.append(text)
                m += 1
            text = " ".join(" ".join(body).split())
            match = _ITEM_START_RE.match(text)
            number = None
            if match and match.group("num"):
                number = match.group("num") + (
                    f" ({match.group('tier')})" if match.group("tier") else ""
                )
            statement = _FOOTNOTE_MARK_RE.sub("", text[match.end() if match else 0 :]).strip()
            if len(statement) >= 25 and re.search(r"[a-z]{3}", statement):
                heading = _nearest_heading(lines, i)
                block.append(Extracted(k, m, lines[k].page, statement, UNGRADED, number, heading))
            k = m
        # A list of statements that direct care, not of topics, members or remarks.
        # Statements, not a list of topics or members: most say something (a finite verb).
        stated = [
            e
            for e in block
            if _FINITE_VERB_RE.search(e.statement) or DIRECTIVE_RE.search(e.statement)
        ]
        if len(stated) * 2 > len(block) and not any(
            _STOP_AFTER_RE.match(lines[j].text) for j in range(max(0, i - 1), i + 1)
        ):
            found.extend(block)
        i = max(k, i + 1)
    return found


def _nearest_heading(lines: list[Line], index: int) -> str | None:
    for j in range(index - 1, max(-1, index - 12), -1):
        text = lines[j].text
        following = lines[j + 1].text if j + 1 < len(lines) else ""
        if _YEAR_ONLY_RE.match(text) or text.lower() in {"recommendation", "recommendations"}:
            continue
        if _heading_like(text, following) and len(text.split()) >= 2:
            return text
    return None


def _words(statement: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{3,}", statement.lower())}


def _same_statement(a: set[str], b: set[str]) -> bool:
    """A statement restated with small edits (a summary box, then its chapter): most of the
    words of both are shared."""
    if min(len(a), len(b)) < 8:
        return False
    return len(a & b) / len(a | b) >= 0.7


def _same_grade(a: Extracted, b: Extracted) -> bool:
    """Restatements keep their grade and number (either may be left out)."""
    numbers_agree = a.number is None or b.number is None or a.number == b.number
    if a.grade is not UNGRADED and b.grade is not UNGRADED and a.grade.label != b.grade.label:
        # "Strong recommendation" in the summary, "Strong recommendation for" over the chapter's box
        same_strength = a.grade.strength.split()[:1] == b.grade.strength.split()[:1]
        return same_strength and numbers_agree and _direction(a) == _direction(b)
    return numbers_agree


def _siblings(kept: Extracted, item: Extracted, previous: Extracted | None) -> bool:
    """Two statements printed one after the other in the same list are two recommendations,
    however alike their words ("the use of X ...", then "the use of Y ..."): a restatement is
    printed elsewhere (a summary, then its chapter)."""
    return kept is previous and item.start - kept.end <= 2


def _key(statement: str) -> str:
    """Comparable form: citation numbers '(152)' and punctuation dropped."""
    text = re.sub(r"\(\d+(?:[–-]\d+)?(?:,\s*\d+(?:[–-]\d+)?)*\)", "", statement.lower())
    return re.sub(r"[^a-z]+", "", text)[:160]


def rejoined(lines: list[Line], reg: Registry | None = None) -> list[Line]:
    """The lines with grade-label words the text layer broke made whole (`Registry.rejoin`)."""
    texts = (reg or registry()).rejoin([line.text for line in lines])
    return [Line(line.page, text) for line, text in zip(lines, texts, strict=True)]


def find_recommendations(lines: list[Line], reg: Registry | None = None) -> list[Extracted]:
    """Every recommendation, once. Graded statements first (a grade after, before or beside
    its statement), then directive numbered statements and the items listed under a
    'Recommendations' label that carry no grade. A statement repeated (summary box, then
    chapter) is one recommendation, kept where it is first printed, with both pages."""
    reg = reg or registry()
    line_grades = {i: g for i, line in enumerate(lines) if (g := reg.line_grade(line.text))}
    before, after = _line_layout(lines, line_grades)
    document_text = "\n".join(line.text for line in lines)
    graded = sorted(
        _find_after(lines, reg, line_grades, after) + _find_before(lines, reg, line_grades, before),
        key=lambda e: e.start,
    )
    out: list[Extracted] = []
    last_end = 0
    for item in graded:
        if item.start < last_end:
            # A box's strength line over a statement that ends with its full grade
            # ("Conditional recommendation for" ... "[Conditional recommendation, low
            # certainty evidence]"): the grade that prints the certainty is kept.
            if item.grade.certainty and not out[-1].grade.certainty:
                out[-1] = item
                last_end = item.end
            continue
        out.append(item)
        last_end = item.end
    taken = [(item.start, item.end) for item in out]
    for item in sorted(
        _find_verbs(lines, reg, document_text) + _find_listed(lines, reg), key=lambda e: e.start
    ):
        if any(a < item.end and item.start < b for a, b in taken):
            continue
        out.append(item)
        taken.append((item.start, item.end))
    out.sort(key=lambda e: e.start)
    for item in out:  # a type code before a statement graded elsewhere ("EBR ..."): not its words
        if item.grade is not UNGRADED and (lead := reg.lead_grade(item.statement)):
            item.statement = lead[1]
    seen: dict[str, Extracted] = {}
    words: dict[str, set[str]] = {}
    previous: Extracted | None = None
    for item in out:
        key = _key(item.statement)
        mine = _words(item.statement)
        first = next(
            (
                kept
                for k, kept in seen.items()
                if (min(len(k), len(key)) > 40 and (key.startswith(k) or k.startswith(key)))
                or (
                    _same_statement(mine, words[k])
                    and _same_grade(item, kept)
                    and not _siblings(kept, item, previous)
                )
            ),
            None,
        )
        previous = item
        words.setdefault(key, mine)
        if first is not None:
            if item.page not in first.pages:
                first.pages.append(item.page)
            if first.grade is UNGRADED and item.grade is not UNGRADED:
                first.grade = item.grade
            item.statement = ""  # covered lines are dropped; the block is not repeated
            continue
        item.pages = [item.page]
        seen[key] = item
    return out


# Advice against; "insufficient evidence to recommend for or against" is neither.
_AGAINST_RE = re.compile(
    r"\b(?:not\s+(?:be\s+)?(?:recommended|recommend|used|offered|given|deployed|"
    r"initiated|discontinued abruptly)|should\s+not|do\s+not|(?<!for or )(?<!for nor )against|"
    r"is\s+not\s+advised|"
    r"are\s+not\s+recommended|recommends\s+against|avoid)\b",
    re.IGNORECASE,
)
_POPULATION_RE = re.compile(
    r"\b(?:in|for|among|to)\s+((?:all\s+)?(?:hospitalized\s+|asymptomatic\s+|adult\s+|newly\s+"
    r"diagnosed\s+|symptomatic\s+)?(?:people|persons|patients|adults|children|infants|"
    r"adolescents|women|men|individuals|neonates|outpatients|travellers|relatives)"
    r"(?:[^.;()]{0,80}?)(?=[,.;(]|\s+(?:who|should|is|are|can|may)\b|$))",
    re.IGNORECASE,
)


def _direction(item: Extracted) -> str:
    if item.grade.direction:
        return item.grade.direction
    first_clause = re.split(r"(?<=[.;])\s", item.statement)[0]
    return "against" if _AGAINST_RE.search(first_clause) else "for"


def _population(statement: str) -> str:
    if match := _POPULATION_RE.search(statement):
        return " ".join(match.group(1).split())
    return "as stated in the recommendation"


def _intervention(item: Extracted) -> str:
    if item.heading and len(item.heading) <= 120:
        return re.sub(r"\s*\((?:19|20)\d{2}\)$", "", item.heading)
    words = item.statement.split()
    return " ".join(words[:14]) + ("…" if len(words) > 14 else "")


def recommendation_block(item: Extracted, certainty_required: bool = True) -> str:
    """The ```recommendation block for a found statement (YAML, as corpus/README.md defines).
    ``certainty_required``: the document's scale is GRADE, whose blocks must state a certainty
    ('not stated' when the source prints none)."""
    unrated = item.grade.kind != "recommendation" or item.grade is UNGRADED
    grade_scale = certainty_required or "grade" in item.grade.scale.lower()
    fields: dict[str, str | None] = {
        "kind": item.grade.kind,
        "statement": item.statement,
        "direction": _direction(item),
        "strength": item.grade.strength,
        # Required in GRADE documents; elsewhere a certainty the source does not print is left out.
        "certainty": item.grade.certainty
        or ("not graded" if unrated else "not stated" if grade_scale else None),
        "population": item.population or _population(item.statement),
        "intervention": _intervention(item),
    }
    if fields["certainty"] is None:
        del fields["certainty"]
    if item.number:
        fields["id"] = item.number
    if len(item.pages) > 1:
        fields["pages"] = ", ".join(str(p) for p in item.pages)
    body = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=10_000)
    return f"```recommendation\n{body.rstrip()}\n```"


def _certainty_required(scales: Counter[str]) -> bool:
    """The document's scale (its most common one) is GRADE: its blocks must state certainty."""
    return bool(scales) and "grade" in scales.most_common(1)[0][0].lower()


def with_recommendations(blocks: list[str]) -> GuidelineText:
    """Markdown blocks (an HTML page's paragraphs, list items, headings) with each graded
    statement replaced by its recommendation block; blocks joined by blank lines."""
    lines = rejoined([Line(0, block) for block in blocks])
    found = find_recommendations(lines)
    by_start = {item.start: item for item in found}
    result = GuidelineText("", [f for f in found if f.statement])
    for item in result.recommendations:
        if item.grade is not UNGRADED:
            result.scales[item.grade.scale] += 1
    required = _certainty_required(result.scales)
    out: list[str] = []
    i = 0
    while i < len(lines):
        if (item := by_start.get(i)) is not None:
            if item.statement:
                out.append(recommendation_block(item, required))
            if item.tail:
                out.append(item.tail)
            i = item.end
            continue
        out.append(lines[i].text)
        i += 1
    result.markdown = "\n\n".join(out)
    return result


_STRENGTH_HEADER_RE = re.compile(r"strength|grade|class|\bcor\b|recommendation level|^level$", re.I)
_CERTAINTY_HEADER_RE = re.compile(r"certainty|quality|level of evidence|\bloe\b|evidence", re.I)
_STATEMENT_HEADER_RE = re.compile(r"recommendation|statement", re.I)


def table_recommendations(header: list[str], rows: list[list[str]]) -> list[str] | None:
    """A table with a recommendation column and a separate strength column (and perhaps a
    certainty column): one block per row whose strength can be read; None if it is not such
    a table. A row whose strength cannot be read is returned as plain text, ungraded."""
    from ingest.grading import strength_rank

    def column(pattern: re.Pattern[str], exclude: set[int]) -> int | None:
        return next(
            (i for i, h in enumerate(header) if i not in exclude and pattern.search(h)), None
        )

    strength_col = column(_STRENGTH_HEADER_RE, set())
    certainty_col = column(
        _CERTAINTY_HEADER_RE, {strength_col} if strength_col is not None else set()
    )
    taken = {c for c in (strength_col, certainty_col) if c is not None}
    statement_col = column(_STATEMENT_HEADER_RE, taken)
    if strength_col is None or statement_col is None:
        return None
    out: list[str] = []
    for row in rows:
        if len(row) <= max(strength_col, statement_col):
            continue
        statement = " ".join(row[statement_col].split())
        raw = " ".join(row[strength_col].split())
        label = header[strength_col].strip()
        strength = raw
        if re.fullmatch(r"(?:I{1,3}|IIa|IIb|[1-3][ab]?)", raw) and re.search(
            r"class|cor", label, re.I
        ):
            strength = f"Class {raw}"
        elif re.fullmatch(r"[A-DIU]", raw):
            strength = f"{'Level' if re.search('level', label, re.I) else 'Grade'} {raw}"
        elif raw.lower() in {"strong", "conditional", "weak"}:
            strength = f"{raw.capitalize()} recommendation"
        certainty = None
        if certainty_col is not None and len(row) > certainty_col:
            certainty = " ".join(row[certainty_col].split()) or None
            if certainty and re.search(r"level of evidence|loe", header[certainty_col], re.I):
                certainty = f"Level of evidence {certainty}"
        if not statement or strength_rank(strength) == 0:
            out.append(" | ".join(cell for cell in row if cell))
            continue
        grade = Grade(strength, certainty, "table")
        item = Extracted(0, 0, 0, statement, grade)
        out.append(recommendation_block(item))
    return out


# -- markdown ----------------------------------------------------------------------------------

_QUESTION_HEADING_RE = re.compile(r"^[A-Z][^.!]{8,150}\?$")


# "3.1 Blood pressure threshold ...", "2 Methods": a section number, then a capitalised word.
_SECTION_TITLE_RE = re.compile(r"^\d{1,2}(?:\.\d{1,2}){0,3}\.?\s+[A-Z][a-z]")


def _is_heading(lines: list[Line], i: int, after_heading: bool = False) -> bool:
    """`after_heading`: the line above is a heading. A numbered section's title or a line in
    capitals under it starts a block too ("3 Recommendations" over "3.1 Blood pressure
    threshold ..." over "1. RECOMMENDATION ON ..."); other short lines under it do not."""
    text = lines[i].text
    prev = lines[i - 1].text if i > 0 and lines[i - 1].page == lines[i].page else ""
    following = lines[i + 1].text if i + 1 < len(lines) else ""
    titled = after_heading and bool(_SECTION_TITLE_RE.match(text) or _caps_heading(text))
    starts_block = not prev or bool(_SENTENCE_END_RE.search(prev)) or prev.startswith("#") or titled
    if _QUESTION_HEADING_RE.match(text) and len(text.split()) <= 20 and starts_block:
        return True
    if not starts_block or len(text.split()) > 12 or len(text) < 3:
        return False
    if titled and not _SENTENCE_END_RE.search(text):
        return True  # a numbered title reads as a list item to `_heading_like`
    if sum(ch.isdigit() for ch in text) > len(text) / 3 or not re.search(r"[A-Za-z]{3}", text):
        return False
    if text[:1].islower() or text.startswith(("(", "- ")):
        return False
    return _heading_like(text, following) and bool(following)


def to_markdown(
    lines: list[Line], tables: dict[int, list[Extracted]] | None = None
) -> GuidelineText:
    """Clean lines -> Markdown body with page markers, headings and recommendation blocks.
    ``tables``: recommendations read from a page's drawing (colour-coded tables), placed at
    the end of their page."""
    lines = rejoined(lines)
    found = find_recommendations(lines)
    tables = dict(tables or {})
    by_start = {item.start: item for item in found}
    parts: list[str] = []
    page: int | None = None
    i = 0
    result = GuidelineText("", [f for f in found if f.statement])
    result.recommendations += [item for page_items in tables.values() for item in page_items]
    for item in result.recommendations:
        if item.grade is not UNGRADED:
            result.scales[item.grade.scale] += 1
    required = _certainty_required(result.scales)
    after_heading = False

    def close_page() -> None:
        for item in tables.pop(page, []) if page is not None else []:
            parts.append("\n" + recommendation_block(item, required) + "\n")

    while i < len(lines):
        line = lines[i]
        if line.page != page:
            close_page()
            page = line.page
            parts.append(f"\n<!-- page: {page} -->\n")
        if (item := by_start.get(i)) is not None:
            if item.statement:
                parts.append("\n" + recommendation_block(item, required) + "\n")
            if item.tail:
                parts.append(item.tail)
            i = item.end
            after_heading = True  # a block ended: a numbered title after it starts the next
            continue
        heading = _is_heading(lines, i, after_heading)
        after_heading = heading
        if heading:
            parts.append(f"\n## {line.text.rstrip(':')}\n")
        elif _LIST_ITEM_RE.match(line.text):
            parts.append("\n" + line.text if not line.text.startswith("- ") else line.text)
        else:
            parts.append(line.text)
        i += 1
    close_page()
    for page in sorted(tables):  # pages whose text was all furniture
        parts.append(f"\n<!-- page: {page} -->\n")
        close_page()
    result.markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).strip()
    return result
