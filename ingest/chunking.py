"""Document -> Chunks: heading-aware, sentence-bounded, token-bounded.

A chunk never crosses a heading or a page marker, never cuts a sentence (see `_split_long` for
the one exception), and fits the embedding model, which silently truncates longer input. A
`recommendation` block becomes exactly one chunk whatever its length, so a graded
recommendation is always retrieved whole, with its strength and certainty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from ingest.errors import LoaderError
from ingest.loaders._common import describe_yaml_error, did_you_mean, load_yaml
from ingest.settings import ChunkingSettings
from ingest.tokens import SPECIAL_TOKENS, default_token_counter
from ingest.types import (
    Chunk,
    Direction,
    Document,
    GradeConfidence,
    Recommendation,
    RecommendationKind,
)


class TokenCounting(Protocol):
    """What the chunker needs of a counter: `ingest.tokens.TokenCounter` (whose `count_many` is
    used when present), or a simpler stand-in."""

    def count(self, text: str) -> int: ...


# -- sentences ---------------------------------------------------------------------------------

# Words that end with a period but rarely end a sentence (compared lowercased, without the dot).
_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "vs", "cf", "ca", "approx", "al", "fig", "figs", "tab", "eq", "eqs",
        "ref", "refs", "ch", "sect", "ed", "eds", "dr", "drs", "mr", "mrs", "prof", "st", "jr",
        "sr", "dept", "univ", "resp", "incl", "esp", "viz", "sp", "spp", "u.s", "u.k", "n.b",
        "b.i.d", "t.i.d", "q.i.d", "q.d", "p.o", "i.v", "s.c", "i.m", "p.r.n", "q.h.s",
    }
)  # fmt: skip
# Abbreviations only when a number follows ("No. 5", "p. 12"); "... answer is no. Then" splits.
_BEFORE_NUMBER = frozenset({"no", "nos", "p", "pp", "vol", "vols", "sec"})
_TITLES = frozenset({"dr", "drs", "mr", "mrs", "prof", "st"})
# A whole run of terminal punctuation (and closing quotes/brackets), then space, then the next
# character, captured inside the lookahead so no slicing of the text is needed. The lookbehind
# and possessive quantifiers keep a long run of dots linear instead of quadratic.
_BOUNDARY_RE = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?=\s+(\S))")
_ITEM_RE = re.compile(r"[ \t]*(?:[-*+•▪‣◦]|\(?\d{1,3}[.)]|\(?[a-z][.)])[ \t]+\S")
_HEADING_RE = re.compile(r" {0,3}(#{1,6})[ \t]++(.*\S)[ \t]*")
_TABLE_ROW_RE = re.compile(r"[ \t]*\|")
# Both match stripped lines. Cells are separated by a mandatory `|`, so that a long run of
# dashes or spaces cannot make the regex backtrack.
_TABLE_RULE_RE = re.compile(r"\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?")
_THEMATIC_BREAK_RE = re.compile(r"([-*_])(?:[ \t]*\1){2,}")
_DOTTED_RE = re.compile(r"(?:[a-z]\.)+[a-z]")
_LOOKBACK = 64


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences, the unit the assistant cites.

    Blank lines, list items (`-`, `*`, `•`, `1.`, `a)`), headings and table rows always start
    a new sentence; other line breaks are soft wraps. A period ends a sentence only when the next
    word does not start in lowercase and the word before is not an abbreviation (e.g., vs., Dr.,
    et al., Fig.), an initial (J. W. Smith), a dotted acronym (U.S.) or a list number. Decimals
    (0.5 mg) never split because no space follows their point.
    """
    sentences: list[str] = []
    for segment in _segments(text):
        sentences.extend(_split_segment(segment))
    return sentences


def _heading_text(raw: str) -> str:
    """`Title ##` -> `Title`: closing hashes, as Markdown allows; done without a regex that
    could backtrack on a long line."""
    text = raw.rstrip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare
    return " ".join(text.split()) or raw.strip()


def _segments(text: str) -> Iterator[str]:
    """Paragraphs and list items, whitespace-collapsed. Headings and table rows stand alone;
    a list item continues over the lines that follow it, as in Markdown."""
    buffer: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if _TABLE_RULE_RE.fullmatch(stripped) or _THEMATIC_BREAK_RE.fullmatch(stripped):
            line = ""  # |---|---| and --- carry no words: a break, never a sentence
        single = _HEADING_RE.fullmatch(line) or _TABLE_ROW_RE.match(line)
        if single or not line.strip() or _ITEM_RE.match(line):
            if buffer:
                yield " ".join(" ".join(buffer).split())
            buffer = []
        if single:
            yield " ".join(line.split())
        elif line.strip():
            buffer.append(line)
    if buffer:
        yield " ".join(" ".join(buffer).split())


def _split_segment(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _BOUNDARY_RE.finditer(text):
        end = match.end()
        if not _is_boundary(text, match, start):
            continue
        if sentence := text[start:end].strip():
            out.append(sentence)
        start = end
    if rest := text[start:].strip():
        out.append(rest)
    return out


def _is_boundary(text: str, match: re.Match[str], sentence_start: int) -> bool:
    following = match.group(1)
    if following.islower():
        return False
    punctuation = match.group()
    if punctuation[0] in "!?…" or ".." in punctuation:
        return True
    window_start = max(sentence_start, match.start() - _LOOKBACK)
    words = text[window_start : match.start()].split()
    if not words:
        return False
    word = words[-1].lstrip("([{\"'“‘")
    lowered = word.lower()
    if lowered in _ABBREVIATIONS or (lowered in _BEFORE_NUMBER and following.isdigit()):
        return False
    if _DOTTED_RE.fullmatch(lowered):  # U.S., a.m.: only a.m./p.m. often end sentences
        return lowered in {"a.m", "p.m"}
    if len(words) == 1 and window_start == sentence_start and (word.isdigit() or len(word) == 1):
        return False  # "1." opening a numbered item, or an initial opening a sentence
    if len(word) == 1 and word.isupper():
        after = text[match.end() : match.end() + 8].lstrip()
        return not _is_initial(words, after)
    return True


def _is_initial(words: list[str], after: str) -> bool:
    """`J. W. Smith`, `Dr. A. Jones`: yes. `vitamin D. Then`, `hepatitis B. It`: no."""
    if re.match(r"[A-Z]\.(?:\s|$)", after):
        return True
    if len(words) < 2:
        return True
    previous = words[-2].lower().rstrip(".")
    return previous in _TITLES or bool(re.fullmatch(r"[a-z]", previous))


# -- units -------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """A sentence (or a piece of an over-long one) with its token count, counted once."""

    text: str
    sep: str  # joins it to the unit before it in a chunk: " " in a paragraph, "\n" otherwise
    tokens: int = 0
    whole: bool = True  # pieces of a split sentence are never carried as overlap


@dataclass
class _Run:
    """Prose between two headings, page markers or recommendation blocks."""

    path: tuple[str, ...]
    page: int | None
    units: list[_Unit] = field(default_factory=list)


@dataclass
class _RecBlock:
    path: tuple[str, ...]
    page: int | None
    body: str
    line: int  # 1-based line of the opening fence in the document body
    index: int  # 1-based among the document's recommendation blocks


_FENCE_OPEN_RE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_PAGE_RE = re.compile(r"[ \t]*<!--\s*page:\s*(\d+)\s*-->[ \t]*", re.IGNORECASE)


def _parse(doc: Document) -> list[_Run | _RecBlock]:
    """One pass over the lines: headings, page markers, fences and paragraphs.

    A `#` heading opening the body is the document's title, not a section, when it is the only
    `#` heading or repeats the title: it is dropped from section paths so they do not all start
    with the title the reader already sees.
    """
    parts: list[_Run | _RecBlock] = []
    stack: list[tuple[int, str]] = []
    title_heading: str | None = None
    title_scope_end: int | None = None  # parts after this index are under another `#` heading
    top_headings = 0
    page: int | None = None
    paragraph: list[str] = []
    run: _Run | None = None
    seen_content = False
    rec_count = 0
    lines = doc.text.split("\n")

    def current_run() -> _Run:
        nonlocal run
        path = tuple(text for _, text in stack)
        if run is None or run.path != path or run.page != page:
            run = _Run(path, page)
            parts.append(run)
        return run

    def flush_paragraph() -> None:
        if paragraph:
            target = current_run()
            for segment in _segments("\n".join(paragraph)):
                for i, sentence in enumerate(_split_segment(segment)):
                    target.units.append(_Unit(sentence, " " if i else "\n"))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN_RE.fullmatch(line)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            flush_paragraph()
            marker, info = fence.group(1), (fence.group(2).split() or [""])[0].lower()
            close = re.compile(rf" {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*")
            end = next((j for j in range(i + 1, len(lines)) if close.fullmatch(lines[j])), None)
            body_lines = lines[i + 1 : end if end is not None else len(lines)]
            if info == "recommendation":
                if end is None:
                    raise _rec_error(doc, rec_count + 1, i + 1, None, "the ``` fence is not closed")
                rec_count += 1
                path = tuple(text for _, text in stack)
                parts.append(_RecBlock(path, page, "\n".join(body_lines), i + 1, rec_count))
                run = None
            elif code := "\n".join(text.rstrip() for text in body_lines).strip("\n"):
                current_run().units.append(_Unit(code, "\n"))
            seen_content = True
            i = (end if end is not None else len(lines)) + 1
            continue
        if page_marker := _PAGE_RE.fullmatch(line):
            flush_paragraph()
            page = int(page_marker.group(1))
        elif line.lstrip().startswith("<!--"):  # an author's comment: not for readers
            flush_paragraph()
            close_at = next((j for j in range(i, len(lines)) if "-->" in lines[j]), len(lines))
            i = close_at + 1
            continue
        elif heading := _HEADING_RE.fullmatch(line):
            flush_paragraph()
            level, text = len(heading.group(1)), _heading_text(heading.group(2))
            if level == 1:
                top_headings += 1
                if not seen_content and not stack:
                    title_heading = text
                elif title_heading is not None and title_scope_end is None:
                    title_scope_end = len(parts)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
        elif line.strip():
            paragraph.append(line)
            seen_content = True
        else:
            flush_paragraph()
        i += 1
    flush_paragraph()
    if title_heading is not None and (top_headings == 1 or _same(title_heading, doc.title)):
        for part in parts[:title_scope_end]:
            if part.path[:1] == (title_heading,):
                part.path = part.path[1:]
    return [part for part in parts if isinstance(part, _RecBlock) or part.units]


def _same(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(re.sub(r"[*_`]", "", s).lower().split()).rstrip(".")

    return norm(a) == norm(b)


# -- token bounds ------------------------------------------------------------------------------


def _counts(counter: TokenCounting, texts: list[str]) -> list[int]:
    many = getattr(counter, "count_many", None)
    return list(many(texts)) if many else [counter.count(text) for text in texts]


def _count_all(units: Sequence[_Unit], counter: TokenCounting) -> None:
    for unit, count in zip(units, _counts(counter, [u.text for u in units]), strict=True):
        unit.tokens = count


def _split_long(unit: _Unit, budget: int, counter: TokenCounting) -> list[_Unit]:
    """Cut a sentence longer than the budget: at clause marks (; : ,), then words, then tokens.

    The one place a sentence is cut: a chunk must fit the model, and a 300-token sentence
    (a drug list, a table flattened into one line) would otherwise be truncated unseen.
    """
    pieces = _pack_texts(re.split(r"(?<=[;:,])\s+", unit.text), budget, counter, _split_words)
    return [
        _Unit(text, unit.sep if i == 0 else " ", tokens, whole=False)
        for i, (text, tokens) in enumerate(pieces)
    ]


def _split_words(text: str, budget: int, counter: TokenCounting) -> list[tuple[str, int]]:
    return _pack_texts(text.split(), budget, counter, _split_tokens)


def _split_tokens(text: str, budget: int, counter: TokenCounting) -> list[tuple[str, int]]:
    """Last resort for a 'word' over the budget (a long URL, a flattened formula): halve it
    until each half fits. Halves are re-counted, so the bound holds whatever the tokenizer."""
    pieces: list[tuple[str, int]] = []
    for half in (text[: len(text) // 2], text[len(text) // 2 :]):
        tokens = counter.count(half)
        if tokens > budget and len(half) > 1:
            pieces.extend(_split_tokens(half, budget, counter))
        elif half:
            pieces.append((half, tokens))
    return pieces


def _pack_texts(
    parts: list[str],
    budget: int,
    counter: TokenCounting,
    finer: Callable[[str, int, TokenCounting], list[tuple[str, int]]],
) -> list[tuple[str, int]]:
    """Greedily join parts with spaces up to the budget; a part over it is cut finer."""
    parts = [part for part in parts if part.strip()]
    counts = _counts(counter, parts)
    pieces: list[tuple[str, int]] = []
    current: list[str] = []
    total = 0
    for part, tokens in zip(parts, counts, strict=True):
        if tokens > budget:
            if current:
                pieces.append((" ".join(current), total))
                current, total = [], 0
            pieces.extend(finer(part, budget, counter))
            continue
        if current and total + tokens > budget:
            pieces.append((" ".join(current), total))
            current, total = [], 0
        current.append(part)
        total += tokens
    if current:
        pieces.append((" ".join(current), total))
    return pieces


_LIST_UNIT_RE = re.compile(r"(?:[-*+•]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")


def _groups(units: list[_Unit], budget: int) -> list[list[_Unit]]:
    """Units that must share a chunk: a list's lead-in ('... include:') with its items, when
    they fit the budget together; every other unit alone."""
    groups: list[list[_Unit]] = []
    i = 0
    while i < len(units):
        unit = units[i]
        j = i + 1
        if unit.text.rstrip().endswith(":"):
            while j < len(units) and (
                (units[j].sep == "\n" and _LIST_UNIT_RE.match(units[j].text))
                or (units[j].sep == " " and j > i + 1)
            ):
                j += 1
        group = units[i:j]
        if len(group) > 1 and sum(u.tokens for u in group) > budget:
            group = [unit]
            j = i + 1
        groups.append(group)
        i = j
    return groups


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[list[_Unit]]:
    """Greedy packing; each new chunk starts with whole trailing sentences of the last one.
    A list and its lead-in are one group: the chunk breaks before the lead-in, not inside."""
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    total = 0
    for group in _groups(units, budget):
        size = sum(u.tokens for u in group)
        if current and total + size > budget:
            chunks.append(current)
            current = _carry(current, overlap, budget - size)
            total = sum(u.tokens for u in current)
        current.extend(group)
        total += size
    if current:
        chunks.append(current)
    return chunks


def _carry(previous: list[_Unit], overlap: int, room: int) -> list[_Unit]:
    """About `overlap` tokens of whole sentences: the last one if it is under twice the
    overlap, then more while the total stays under it; never the whole previous chunk."""
    if overlap <= 0:
        return []
    carried: list[_Unit] = []
    total = 0
    for unit in reversed(previous):
        limit = 2 * overlap if not carried else overlap
        if not unit.whole or total + unit.tokens > min(limit, room):
            break
        carried.append(unit)
        total += unit.tokens
    if len(carried) == len(previous):
        carried.pop()
    return carried[::-1]


# -- recommendations ---------------------------------------------------------------------------

_REC_FIELDS = frozenset(Recommendation.model_fields)
_REC_REQUIRED = ("statement", "direction", "strength", "population", "intervention")
_REC_ENUMS: dict[str, list[str]] = {
    "kind": [m.value for m in RecommendationKind],
    "direction": [m.value for m in Direction],
    "grade_confidence": [m.value for m in GradeConfidence],
}


def _rec_error(
    doc: Document, index: int, line: int, statement: str | None, problem: str
) -> LoaderError:
    what = f"recommendation block {index} (body line {line}"
    if statement:
        short = " ".join(statement.split())
        what += f', "{short[:60]}…"' if len(short) > 60 else f', "{short}"'
    return LoaderError(doc.source_path or doc.id, f"document {doc.id!r}: {what}): {problem}")


def parse_recommendation(doc: Document, block: _RecBlock) -> Recommendation:
    """Parse and validate a block's YAML; every problem names the document, block and field."""
    try:
        data = load_yaml(block.body)
    except yaml.YAMLError as exc:
        detail = describe_yaml_error(exc, first_line=block.line + 1)
        raise _rec_error(doc, block.index, block.line, None, f"invalid YAML, {detail}") from None
    if not isinstance(data, dict):
        raise _rec_error(doc, block.index, block.line, None, "the block must be a YAML mapping")
    statement = data.get("statement")

    def fail(problem: str) -> LoaderError:
        text = statement if isinstance(statement, str) else None
        return _rec_error(doc, block.index, block.line, text, problem)

    for key in data:
        if key not in _REC_FIELDS:
            hint = did_you_mean(str(key), _REC_FIELDS)
            raise fail(f"unknown field {key!r}{hint}; valid: {', '.join(sorted(_REC_FIELDS))}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or value == "":
            continue
        if isinstance(value, dict | list):
            raise fail(f"field {key!r} must be a single value")
        values[key] = " ".join(str(value).split())
    missing = [key for key in _REC_REQUIRED if key not in values]
    if missing:
        raise fail(f"missing required field(s): {', '.join(missing)}")
    for key, allowed in _REC_ENUMS.items():
        if key in values and values[key] not in allowed:
            hint = did_you_mean(values[key], allowed)
            raise fail(f"{key}: {values[key]!r} is not one of {' | '.join(allowed)}{hint}")
    kind = values.get("kind", RecommendationKind.recommendation.value)
    graded = "grade" in (doc.strength_scale or "").lower()
    if graded and kind == RecommendationKind.recommendation.value and "certainty" not in values:
        raise fail("missing certainty (required in GRADE documents; write 'not graded' if none)")
    if "section" not in values and block.path:
        values["section"] = " > ".join(block.path)
    try:
        return Recommendation(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(problems) from None


def recommendation_text(rec: Recommendation) -> str:
    """Statement, then grading and population on one line, then remarks (corpus/README.md)."""
    population = rec.population.rstrip(". ")
    lines = [
        rec.statement,
        f"Strength: {rec.strength}; certainty of evidence: {rec.certainty or 'not graded'}; "
        f"population: {population}.",
    ]
    if rec.remarks:
        lines.append(rec.remarks)
    return "\n".join(lines)


# -- entry point -------------------------------------------------------------------------------


def chunk_document(
    doc: Document,
    settings: ChunkingSettings | None = None,
    counter: TokenCounting | None = None,
) -> list[Chunk]:
    """Cut a document into chunks of at most `settings.max_tokens` model tokens, special
    tokens included, with about `overlap_tokens` of whole sentences carried between chunks of
    one section.

    Two exceptions to "whole sentences only": a sentence that alone exceeds the budget is cut at
    clause marks (; : ,), then between words; and a recommendation block is one chunk whatever
    its length. Linear in the text: every sentence is tokenised once, in batches. Raises
    LoaderError for an invalid recommendation block.
    """
    settings = settings or ChunkingSettings()
    counter = counter or default_token_counter()
    budget = settings.max_tokens - SPECIAL_TOKENS
    parts = _parse(doc)
    runs = [part for part in parts if isinstance(part, _Run)]
    _count_all([unit for run in runs for unit in run.units], counter)

    ref = doc.ref()
    chunks: list[Chunk] = []

    def emit(text: str, path: Sequence[str], page: int | None, rec: Recommendation | None):
        chunks.append(
            Chunk(
                document=ref,
                position=len(chunks),
                text=text,
                section_path=list(path),
                page=page,
                recommendation=rec,
            )
        )

    for part in parts:
        if isinstance(part, _RecBlock):
            rec = parse_recommendation(doc, part)
            emit(recommendation_text(rec), part.path, part.page, rec)
            continue
        units: list[_Unit] = []
        for unit in part.units:
            units.extend(_split_long(unit, budget, counter) if unit.tokens > budget else [unit])
        for group in _pack(units, budget, settings.overlap_tokens):
            text = "".join((u.sep if i else "") + u.text for i, u in enumerate(group)).strip()
            if text:
                emit(text, part.path, part.page, None)
    return chunks
