"""A header of `Key: value` lines at the top of a plain-text article, read into metadata.

Articles exported as plain text (CORD-19, PMC text dumps, notes copied from a reference manager)
often open with their bibliographic record: an optional title line, a bare URL, then lines such
as `Authors: ...`, `Date: 2018-02-02`, `DOI: 10.1111/...`, `License: cc-by`, `SHA: ...`. That
record is metadata, not something to quote. The header is recognised by its shape, not by its
keys: a run of short `Key: value` lines (blank lines and a bare URL allowed between them) at the
top of the file, at least `MIN_FIELDS` of them. A `Key: value` line whose value is prose
(`Abstract: ...`, `Text: ...`) is content: it ends the header and becomes a section headed by
its key. Known keys fill Document fields; the others are dropped with the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

MIN_FIELDS = 2
PROSE_WORDS = 8  # a value of this many words, mostly lower-case, is prose: content, not a field

_KEY_LINE = re.compile(
    r"(?P<key>[A-Za-z][A-Za-z]*(?:[ _-][A-Za-z]+){0,2})[ \t]*:[ \t]*(?P<value>.*)"
)
_URL_LINE = re.compile(r"<?(?P<url>https?://\S+?)>?")
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_ISO_DATE = re.compile(r"((?:19|20)\d\d)-(\d\d)-(\d\d)")
_DOI = re.compile(r"(10\.\d{4,9}/\S+)")

# Document field <- header keys (lower-cased), first match wins.
FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "authors": ("authors", "author", "by"),
    "date": ("date", "published", "publication date", "pub date", "year"),
    "doi": ("doi",),
    "pmid": ("pmid", "pubmed id"),
    "url": ("url", "link", "source url"),
    "journal": ("journal",),
    "license": ("license", "licence"),
}


@dataclass
class Header:
    """What a header said, and the text after it."""

    fields: dict[str, str] = field(default_factory=dict)  # lower-cased key -> value
    title_line: str | None = None
    url: str | None = None
    body: str = ""

    def get(self, name: str) -> str | None:
        for key in FIELD_KEYS.get(name, (name,)):
            value = self.fields.get(key)
            if value:
                return value
        return None

    def title(self) -> str | None:
        return self.get("title") or self.title_line

    def authors(self) -> list[str]:
        value = self.get("authors")
        if not value:
            return []
        parts = re.split(r"\s*;\s*|\s+and\s+", value) if ";" in value else [value]
        return [p.strip() for p in parts if p.strip()]

    def year(self) -> int | None:
        value = self.get("date")
        match = _YEAR.search(value or "")
        return int(match.group(0)) if match else None

    def publication_date(self) -> date | None:
        match = _ISO_DATE.search(self.get("date") or "")
        if not match:
            return None
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return None

    def doi(self) -> str | None:
        match = _DOI.search(self.get("doi") or "")
        return match.group(1).rstrip(".,;") if match else None

    def pmid(self) -> str | None:
        value = (self.get("pmid") or "").strip()
        return value if re.fullmatch(r"\d{1,9}", value) else None

    def url_value(self) -> str | None:
        value = self.get("url")
        match = _URL_LINE.fullmatch(value.strip()) if value else None
        return match.group("url") if match else self.url


_METADATA_KEYS = frozenset(k for keys in FIELD_KEYS.values() for k in keys)


def _is_prose(key: str, value: str) -> bool:
    """Running text (most words lower-case) under a key that is not a metadata field. An author
    list or a title is long too, but it is a field."""
    words = re.findall(r"[^\W\d_][\w'’-]*", value)
    if key.lower() in _METADATA_KEYS or len(words) < PROSE_WORDS:
        return False
    return sum(w[0].islower() for w in words) / len(words) >= 0.4


def _is_field(line: str) -> bool:
    """A metadata line ('Title: ...', 'SHA: 3ec1...'), not a title that has a colon in it
    ('iNR-Drug: Predicting the Interaction of Drugs ...')."""
    match = _KEY_LINE.fullmatch(line)
    if match is None:
        return False
    return match.group("key").lower() in _METADATA_KEYS or len(match.group("value").split()) <= 1


def split_header(text: str) -> Header | None:
    """The header at the top of ``text`` and the body after it, or None when there is none."""
    lines = text.split("\n")
    header = Header()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = lines[i].strip() if i < len(lines) else ""
    if first and not _URL_LINE.fullmatch(first) and not _is_field(first):
        header.title_line = " ".join(first.split())  # a title line may open the header
        i += 1
    body_start = len(lines)
    body_prefix = ""
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if (url := _URL_LINE.fullmatch(line)) and header.url is None:
            header.url = url.group("url")
            i += 1
            continue
        match = _KEY_LINE.fullmatch(line)
        if match is None:
            body_start = i
            break
        key, value = match.group("key").strip(), " ".join(match.group("value").split())
        if _is_prose(key, value):
            body_prefix = f"## {key}\n\n{value}\n\n"
            body_start = i + 1
            break
        header.fields.setdefault(key.lower(), value)
        i += 1
    if len(header.fields) < MIN_FIELDS:
        return None
    rest = [
        _as_section(line, prev)
        for prev, line in zip(["", *lines[body_start:]], lines[body_start:], strict=False)
    ]
    header.body = (body_prefix + "\n".join(rest)).strip("\n")
    return header


def _as_section(line: str, previous: str) -> str:
    """`Text: <prose>` opening a paragraph -> a section headed `Text`, like `Abstract:`."""
    match = _KEY_LINE.fullmatch(line.strip()) if not previous.strip() else None
    if match and _is_prose(match.group("key"), match.group("value")):
        return f"## {match.group('key').strip()}\n\n{match.group('value').strip()}"
    return line
