"""What every loader shares: checked reading, decoding, ids, titles, and the result type."""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ingest.errors import LoaderError
from ingest.loaders.boilerplate import interface_sentence, link_dense, single_sentence
from ingest.settings import IngestSettings
from ingest.types import Document

MAX_FILE_BYTES_ENV = "CLINIQ_INGEST__MAX_FILE_BYTES"
_SNIFF_BYTES = 8192

# Signatures of formats that are never text; checked on files that should be text.
_BINARY_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "a PDF", "rename it to .pdf"),
    (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx/.pptx)", "export it as PDF, HTML or text"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file", "export it as PDF"),
    (b"{\\rtf", "an RTF document", "export it as PDF, HTML or text"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "ingest the text it shows instead"),
    (b"\xff\xd8\xff", "a JPEG image", "ingest the text it shows instead"),
    (b"GIF8", "a GIF image", "ingest the text it shows instead"),
    (b"\x1f\x8b", "a gzip archive", "decompress it first"),
    (b"\x7fELF", "an executable", "remove it from the ingest paths"),
    (b"SQLite format 3\x00", "an SQLite database", "remove it from the ingest paths"),
)


@dataclass(frozen=True)
class LoadProblem:
    """A part of a file that was skipped (a bad JSONL line, an unreadable PDF page)."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class LoadResult:
    """Documents of one file, plus the parts skipped on the way (the rest still loads)."""

    documents: list[Document] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)


def human_size(n: int) -> str:
    if n < 1000:
        return f"{n:,} bytes"
    value, unit = n / 1000, "KB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit} ({n:,} bytes)"


def read_checked(path: Path, settings: IngestSettings) -> bytes:
    """Read a file after checking it exists, is not too large and is not empty.

    The size is checked from `stat` before reading, so a huge file costs nothing.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LoaderError(path, "file not found; check the path") from None
    except OSError as exc:
        raise LoaderError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if not path.is_file():
        raise LoaderError(path, "not a regular file")
    if size > settings.max_file_bytes:
        raise LoaderError(
            path,
            f"file is {human_size(size)}, over the limit of {human_size(settings.max_file_bytes)}; "
            f"raise it with {MAX_FILE_BYTES_ENV}={size} to ingest this file",
        )
    if size == 0:
        raise LoaderError(path, "file is empty; add content or remove it from the ingest paths")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(path, f"cannot read the file ({exc.strerror or exc})") from None


def reject_binary(path: Path, data: bytes) -> None:
    """Refuse files that are not text, naming what they look like when we can tell."""
    head = data[:_SNIFF_BYTES]
    for signature, kind, advice in _BINARY_SIGNATURES:
        if head.startswith(signature):
            raise LoaderError(path, f"file is {kind}, not {path.suffix or 'text'} text; {advice}")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise LoaderError(
            path,
            f"file looks binary (NUL byte at offset {offset}); only text, Markdown, HTML, "
            "XML, JSON(L) and PDF files can be ingested",
        )


def _guess_encoding(data: bytes) -> str:
    if any(0x80 <= b <= 0x9F for b in data):
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            return "ISO-8859-1"
        return "WINDOWS-1252"
    return "ISO-8859-1"


def decode_text(path: Path, data: bytes) -> str:
    """Decode UTF-8 (a BOM is allowed); anything else is an error that says how to convert."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoaderError(
            path,
            "file is UTF-16 text, not UTF-8; convert it with "
            f"`iconv -f UTF-16 -t UTF-8 '{path.name}' > converted{path.suffix}`",
        )
    reject_binary(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        guess = _guess_encoding(data)
        raise LoaderError(
            path,
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
            f"line {line}); it may be {guess}: convert it with "
            f"`iconv -f {guess} -t UTF-8 '{path.name}' > converted{path.suffix}`",
        ) from None
    if not text.strip():
        raise LoaderError(path, "file contains only whitespace; add content or remove it")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def slugify(text: str, max_len: int = 48) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "doc"


def path_document_id(path: Path) -> str:
    """Id for a file without one: readable stem + hash of the resolved path.

    Two `notes.txt` in different folders get different ids; re-ingesting the same file keeps its id.
    """
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{slugify(path.stem)}-{digest}"


def short_title(text: str, limit: int = 120) -> str:
    """One line, at most `limit` characters, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return f"{cut}…"


def title_from_stem(path: Path) -> str:
    words = re.sub(r"[_\-]+", " ", path.stem).strip()
    return short_title(words or path.name)


def collapse_blank_lines(text: str) -> str:
    """Strip line ends and keep at most one blank line between paragraphs."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _StrictYamlLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (the second would silently win otherwise)."""


def _construct_mapping(loader: _StrictYamlLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[object] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def load_yaml(text: str) -> object:
    """Parse YAML safely, rejecting duplicate keys. Raises yaml.YAMLError."""
    return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader subclass


def describe_yaml_error(exc: yaml.YAMLError, first_line: int = 1) -> str:
    """'line N: problem', with N counted in the file (first_line = file line of YAML line 1)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context and context not in problem else problem
    if mark is None:
        return detail
    return f"line {first_line + mark.line}: {detail}"


def closest(word: str, options: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    match = closest(word, options)
    return f" (did you mean {match!r}?)" if match else ""


# -- text cleaning (PDF and HTML) --------------------------------------------------------------

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
        "\ufb05": "st", "\ufb06": "st", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
        "\u00ad": "", "\u200b": "", "\ufeff": "", "\u2011": "-", "\u2010": "-",
    }
)  # fmt: skip
# A bullet glyph, or one a text layer prints by its glyph name ("/C15 Folic acid ...").
_BULLET_RE = re.compile(r"^[ \t]*(?:[▸►▶●■□◆◇○•▪‣◦∙·⁃]|/[A-Za-z]{1,3}\d{1,3}(?=\s))[ \t]*")
_DUPLICATE_PHRASE_RE = re.compile(r"\b((?:[\w'’-]+[ \t]+){1,6}[\w'’-]+)[ \t]+\1\b", re.IGNORECASE)

# Lines that are journal or publisher furniture, never content to cite.
BOILERPLATE_LINE_RE = re.compile(
    r"""(?ix)
    ^(?:doi\s*:|https?://(?:dx\.)?doi\.org/)
    | \bdoi\s*:?\s*10\.\d{4,9}/\S+(?:\s+\d{1,4})?\s*$
    | updated\ information\ and\ services\ can\ be\ found
    | ^downloaded\ from\b | \bdownloaded\ from\s+\S+\.(?:com|org)\b
    | \bpublished\ by\ (?:group\.bmj\.com|gut\.bmj\.com|\S+\.com)\b
    | ^to\ cite\s*: | ^correspondence\ to\b
    | ^(?:received|revised|accepted)\s+\d{1,2}\s+[a-z]+\s+\d{4}
    | ^published\ online\ first | ^for\ numbered\ affiliations | ^(?:e-?mail\s+)?alerting\ service
    | ^receive\ free\ email\ alerts | ^to\ (?:request\ permissions|order\ reprints|subscribe\ to)\b
    | ^this\ article\ cites\ \d+\ articles | ^articles\ on\ similar\ topics | ^topic\ collections?$
    | ^these\ include\s*: | ^reprints?\ and\ permissions | ^isbn\s+[\d-]{10,}
    | ^all\ rights\ reserved\.?$ | ^(?:©|\(c\)|copyright)\s.{0,80}\d{4}\s*\.?\s*$
    | ^\[please\ include\ day\ month
    """
)
# "Jonas F Ludvigsson,1,2 Julio C Bai,3" or "Misty Humphries,i Lee Kirksey,j": names with
# affiliation numbers or letters.
_AUTHOR_RE = re.compile(
    r"[A-Z][\w'’-]+(?:\s+[A-Z][\w'’.-]*){1,3},"
    r"(?:\s?\d{1,2}(?:,\d{1,2})*\b|[a-z](?:,[a-z])*(?=[\s,;]|$))"
)
_AFFILIATION_RE = re.compile(
    r"^\d{1,2}\s?(?:Department|Division|Unit|Institute|School|Faculty|Centre|Center|Clinic"
    r"|Laboratory|Hospital|University)\b"
)
# Whole pages that are a journal's cover or service sheet.
_SERVICE_PAGE_MARKERS = (
    "updated information and services",
    "email alerting service",
    "to request permissions go to",
    "to order reprints go to",
    "to subscribe to",
    "this article cites",
)


# A journal's first-page sidebar: these open it, and the short lines after them belong to it
# (the address under "Correspondence to", the citation under "To cite:").
FRONT_MATTER_START_RE = re.compile(
    r"^(?:correspondence\s+to|to\s+cite\s*:|for\s+numbered\s+affiliations|published\s+online"
    r"\s+first|received\s+\d|accepted\s+\d|revised\s+\d)",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def drop_front_matter(lines: list[str], short: int = 45) -> list[str]:
    """Drop a first page's sidebar blocks: each opening line and the short lines that follow
    it, up to a heading in capitals ('ABSTRACT') or a full-width line."""
    out: list[str] = []
    dropping = False
    for line in lines:
        if FRONT_MATTER_START_RE.match(line):
            dropping = True
            continue
        if dropping and len(line) < short and not (line.isupper() and len(line) > 3):
            continue
        dropping = False
        out.append(line)
    return out


def clean_line(line: str) -> str:
    """Ligatures and odd spaces replaced, runs of whitespace collapsed, bullets made `- `."""
    text = " ".join(line.translate(_LIGATURES).split())
    if _BULLET_RE.match(text):
        text = "- " + _BULLET_RE.sub("", text)
    return text


def drop_duplicate_phrases(text: str) -> str:
    """'Guidelines Guidelines on core' -> 'Guidelines on core': a phrase of two to seven words
    printed twice in a row is an extraction artefact (a heading drawn twice), not content."""
    return _DUPLICATE_PHRASE_RE.sub(r"\1", text)


def is_boilerplate_line(line: str) -> bool:
    """DOIs, 'Downloaded from', 'Updated information and services ...', author lists and
    affiliations: text of the journal page, never a passage to cite. On any site, also a line
    of web addresses or a one-sentence line about the page itself (``loaders.boilerplate``)."""
    if BOILERPLATE_LINE_RE.search(line) or _EMAIL_RE.search(line):
        return True
    if link_dense(line) or (single_sentence(line) and interface_sentence(line)):
        return True
    authors = len(_AUTHOR_RE.findall(line))
    if authors >= 2 or (authors and re.search(r"\b(?:authors of|on behalf of)\b", line, re.I)):
        return True
    return bool(_AFFILIATION_RE.match(line))


def is_service_page(text: str) -> bool:
    """A journal's cover or service sheet (alerts, reprints, permissions): dropped whole."""
    lowered = " ".join(text.lower().split())
    return sum(marker in lowered for marker in _SERVICE_PAGE_MARKERS) >= 2


def join_hyphenated(lines: list[str], vocabulary: set[str]) -> list[str]:
    """Join words hyphenated at line ends: 'con-' + 'sidered' -> 'considered'.

    The hyphen is kept when the hyphenated form is a word elsewhere in the document and the
    joined one is not ('low-' + 'certainty' -> 'low-certainty'), or when either side is not
    lowercase letters ('DQ2-' + 'positive').
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        while (
            line.endswith("-")
            and i + 1 < len(lines)
            and (m := re.search(r"([A-Za-z]+)-$", line))
            and (n := re.match(r"([a-z][\w'’]*)(.*)$", lines[i + 1]))
            and not line.endswith("--")
        ):
            left, right, rest = m.group(1), n.group(1), n.group(2)
            joined = left + right
            keep = (
                not left.islower()
                or (f"{left}-{right}".lower() in vocabulary and joined.lower() not in vocabulary)
                or (
                    joined.lower() not in vocabulary
                    and right.lower() in vocabulary
                    and left.lower() in vocabulary
                    and len(left) > 3
                )
            )
            line = line[: m.start()] + (f"{left}-{right}" if keep else joined) + rest
            i += 1
        out.append(line)
        i += 1
    return out


def vocabulary_of(text: str) -> set[str]:
    """Lowercased words (and hyphenated words) of a text, for `join_hyphenated`."""
    return set(re.findall(r"[a-z]+(?:-[a-z]+)*", text.lower())) | set(
        re.findall(r"[a-z]+", text.lower())
    )
