"""Document metadata from the document itself, with an optional sidecar YAML override.

Title, issuing organization, year, DOI and document type come from what the publisher put in
the file: the PDF info dictionary, the first pages, the HTML head, JSON fields. A sidecar
`<file>.meta.yaml` (e.g. `guideline.pdf.meta.yaml`) beside the file overrides any of them with
the corpus front-matter keys (corpus/README.md). A title is never cut at a colon: the subtitle
of "Diagnosis and management of adult coeliac disease: guidelines from the British Society of
Gastroenterology" is part of its name.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import LoaderError
from ingest.loaders._common import (
    clean_line,
    describe_yaml_error,
    did_you_mean,
    is_boilerplate_line,
    load_yaml,
)
from ingest.types import DocType

SIDECAR_SUFFIX = ".meta.yaml"
MAX_TITLE = 300
_ORG_WORDS = (
    r"Organi[sz]ation|Society|Association|College|Academy|Institute|Task\s+Force|Centers|"
    r"Centres?|Center|Agency|Federation|Council|Foundation|Ministry|Department|Board|Network"
)
ORG_RE = re.compile(
    rf"(?:(?:the\s+)?(?:[A-Z][\w.'’-]*(?:,\s+(?:and\s+)?|\s+)){{0,6}}?(?:{_ORG_WORDS})"
    rf"(?:\s+(?:of|for|on)\s+(?:the\s+)?(?:[A-Z][\w'’-]*)"
    rf"(?:\s+(?:and\s+)?(?!(?:{_ORG_WORDS})\b)[A-Z][\w'’-]*){{0,5}})?)"
)
_ON_BEHALF_RE = re.compile(rf"\bon\s+behalf\s+of\s+(?P<org>{ORG_RE.pattern})")
_COPYRIGHT_RE = re.compile(
    r"©\s*(?:Copyright\s+)?(?:(?P<who>[A-Z][^\n©]{2,80}?)[, ]+(?P<year>(?:19|20)\d{2})"
    r"|(?P<year2>(?:19|20)\d{2})\s+(?P<who2>[A-Z][^\n©|]{2,80}))"
)
_YEAR_RE = re.compile(r"\b((?:19|20)\d{2})\b")
_CITATION_YEAR_RE = re.compile(r"\b[A-Z][\w .]{1,40}\s((?:19|20)\d{2});\s?\d")
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>,;\]]+)")
_BAD_TITLES = {"untitled", "title", "document", "microsoft word", "pdf"}
_GUIDELINE_RE = re.compile(
    r"\bguidelines?\b|\brecommendation statement\b|\bpractice parameter\b|\bconsensus statement\b",
    re.IGNORECASE,
)
_JOURNAL_HEADER_RE = re.compile(
    r"\b(?:vol\.?|volume|no\.|issue)\s*\d|weekly report|^recommendations and reports"
    r"|department of health"
    r"|^(?:review|original article|guidelines?|special article|clinical guideline)$",
    re.IGNORECASE,
)


def _usable_title(value: str | None) -> str | None:
    text = " ".join((value or "").split())
    if not text or text.lower() in _BAD_TITLES or len(text.split()) < 3:
        return None
    if re.search(r"\.(?:docx?|indd|pdf|qxd|tex)\b", text, re.I) or re.fullmatch(r"[\w-]+", text):
        return None
    return text[:MAX_TITLE]


def title_from_first_page(text: str) -> str | None:
    """The leading lines of the first page that read as a title, joined (at most four)."""
    lines = [clean_line(line) for line in text.split("\n")]
    picked: list[str] = []
    for line in lines:
        if not line:
            if picked:
                break
            continue
        nxt = next((x for x in lines[lines.index(line) + 1 :] if x), "")
        header = not picked and bool(_JOURNAL_HEADER_RE.search(line))
        if header and nxt[:1].islower() and _FUNCTION_WORD_START_RE.match(nxt):
            header = False  # "Guideline" / "for the pharmacological ...": the title's first line
        if is_boilerplate_line(line) or header or line.startswith(("©", "(c)", "ª")):
            if picked:
                break
            continue
        starts_title = bool(_FUNCTION_WORD_START_RE.match(nxt)) and nxt[:1].islower()
        if not picked and not starts_title and (len(line.split()) < 2 or ORG_RE.fullmatch(line)):
            continue  # a lone logo word or the publisher's name above the title
        if picked and (
            len(line) > 100 or line.startswith(("Description:", "Abstract", "ABSTRACT"))
        ):
            break
        if picked and not _continues_title(picked[-1], line):
            break
        picked.append(line)
        if len(picked) == 4 + 2 * (len(" ".join(picked)) < 60) or line.endswith((".", "?")):
            break
    title = " ".join(" ".join(picked).split())
    title = re.sub(r"(\w)- (\w)", r"\1\2", title) if "- " in title else title
    if not _GUIDELINE_TITLE_RE.search(title) or title.endswith("."):
        # The first lines are a cover note or prose: a guideline's title names what it is.
        typed = _typed_title(lines)
        title = typed or title
    return _usable_title(title)


_GUIDELINE_TITLE_RE = re.compile(
    r"\b(?:guidelines?|recommendations?|schedule|consensus|statement|report|guidance)\b", re.I
)
_FUNCTION_WORD_START_RE = re.compile(r"^(?:of|on|for|the|and|in|to|from|with|a|an|at|by)\b")


def _typed_title(lines: list[str]) -> str | None:
    """The first run of one to three Title-Case lines on the page that names a document type
    ('... Clinical Practice Guidelines for the Evaluation and ...', '... Schedule ...')."""
    for i, line in enumerate(lines):
        if not line or len(line) > 120 or not _GUIDELINE_TITLE_RE.search(line):
            continue
        words = [w for w in line.split() if w.lower() not in _SMALL_WORDS and w[:1].isalpha()]
        if len(words) < 3 or not all(w[:1].isupper() for w in words):
            continue
        if re.match(r"^(?:table|figure|box)\s+\d", line, re.I):
            continue
        run = [line]
        for extra in lines[i + 1 : i + 3]:
            if is_boilerplate_line(extra) or re.search(r"[a-z]\d", extra):
                break  # the author line under the title
            if extra and len(extra) <= 120 and _continues_title(run[-1], extra):
                run.append(extra)
            else:
                break
        return " ".join(" ".join(run).split())
    return None


_FUNCTION_WORD_END_RE = re.compile(
    r"(?:\b(?:of|on|for|the|and|in|to|from|with|a|an|at|by)|[:—–-])$", re.I
)
_SMALL_WORDS = {"of", "on", "for", "the", "and", "in", "to", "from", "with", "a", "an", "at", "by"}


def _continues_title(previous: str, line: str) -> bool:
    """A title wraps onto the next line when the line ends mid-phrase ('WHO guidelines on'),
    or the next line carries on in lowercase or in Title Case over several words."""
    words = line.split()
    if _FUNCTION_WORD_END_RE.search(previous):
        return True
    if words and all(w.lower().strip(",") in _SMALL_WORDS for w in words):
        return True  # "ON THE": a title set in capitals, one or two words a line
    if previous.isupper() != line.isupper() and len(words) >= 2:
        return False  # from capitals to Title Case: the subtitle or the body, not the title
    if len(words) < 2:
        return False
    if line[:1].islower():
        return True
    capitals = [w[:1].isupper() for w in words if w.lower() not in _SMALL_WORDS]
    return bool(capitals) and all(capitals)


def _organization(info: dict[str, str], title: str | None, pages: str) -> str | None:
    author = " ".join(info.get("author", "").split())
    if author and ORG_RE.search(author) and len(author) <= 120:
        return _tidy_org(author)
    if re.fullmatch(r"[A-Z]{3,10}", author):  # an acronym ("NHLBI"), never a person's name
        return _expand_acronym(author, pages) or author
    if title and (match := ORG_RE.search(title)):
        return _tidy_org(match.group(0))
    for acronym in re.findall(r"\b[A-Z]{3,10}\b", title or ""):
        if (name := _expand_acronym(acronym, pages)) and ORG_RE.search(name):
            return name  # "ESI Clinical Practice Guidelines": the body the title names
    # "... on behalf of the International X Network", "published by ... on behalf of X": the
    # body a journal article issues from, where no title or author field names it.
    if behalf := _ON_BEHALF_RE.search(pages):
        return _tidy_org(behalf.group("org"))
    copyright_line = _COPYRIGHT_RE.search(pages)
    who = copyright_line and (copyright_line.group("who") or copyright_line.group("who2"))
    if who and (org := ORG_RE.search(who)):
        return _tidy_org(org.group(0))
    counts = Counter(_tidy_org(m.group(0)) for m in ORG_RE.finditer(pages))
    for name, _ in counts.most_common():
        if len(name.split()) >= 2:
            return name
    return None


def _expand_acronym(acronym: str, pages: str) -> str | None:
    """The body's full name in the first pages whose initials spell the acronym."""
    for match in re.finditer(r"(?:[A-Z][\w'’-]*,?\s+(?:(?:and|of|for|the)\s+)*){1,8}", pages):
        words = [w.strip(",") for w in match.group(0).split()]
        while words and words[-1].lower() in {"and", "of", "for", "the"}:
            words.pop()
        for start in range(len(words)):
            name = words[start:]
            initials = "".join(w[0] for w in name if w[:1].isupper())
            if initials == acronym and len(name) >= 2:
                return _tidy_org(" ".join(match.group(0).split()[start : start + len(name)]))
    return None


_ORG_TAIL_RE = re.compile(
    r"(?:\s+(?:and|&)\s+(?:John\s+Wiley|Elsevier|Springer|Wolters|Oxford\s+University|BMJ)\b.*"
    r"|\s+(?:guidelines?|published\s+online|follow|guideline\s+committee)\b.*)$",
    re.I,
)


def _tidy_org(name: str) -> str:
    """The issuing body alone: no leading article, no publisher or page furniture after it."""
    name = re.sub(r"^(?:(?:and|&)\s+)?(?:the|a|an)\s+", "", " ".join(name.split()), flags=re.I)
    name = re.sub(r"^(?:[A-Z]{2,}\s+)+(?=[A-Z][a-z]\w*\s+(?:of\s+)?[A-Z])", "", name)  # cover caps
    # "... Society Guidelines" loses "Guidelines"; "Scottish Intercollegiate Guidelines Network"
    # keeps it: what is left must still name a body.
    short = _ORG_TAIL_RE.sub("", name).strip(" ,;")
    return short if ORG_RE.search(short) else name.strip(" ,;")


#: a cover's date line, month and year alone ("SEPTEMBER 1998"); a download or print date
#: carries a day, a time or the word that says what it is
_COVER_DATE_RE = re.compile(
    r"^\s*(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\s+((?:19|20)\d{2})\s*$",
    re.I | re.M,
)
_SUBJECT_CITATION_RE = re.compile(r"\b((?:19|20)\d{2})\s*[.;,]\s*\d{1,4}\s*[:(]")


def _year(info: dict[str, str], title: str | None, pages: str) -> int | None:
    """The publication year: in the title, the citation line, the PDF's citation metadata or
    the copyright line; the file's creation date last. A print or download date never is."""
    if title and (years := _YEAR_RE.findall(title)):
        return int(years[-1])
    if match := _CITATION_YEAR_RE.search(pages):
        return int(match.group(1))
    if match := _SUBJECT_CITATION_RE.search(info.get("subject", "")):
        return int(match.group(1))
    if match := _COPYRIGHT_RE.search(pages):
        return int(match.group("year") or match.group("year2"))
    if match := _COVER_DATE_RE.search(pages):
        return int(match.group(1))
    for key in ("creationdate", "moddate"):
        if match := re.match(r"D:((?:19|20)\d{2})", info.get(key, "")):
            return int(match.group(1))
    return None


def _doi(pages: str) -> str | None:
    joined = re.sub(r"-\n", "-", pages)
    if match := _DOI_RE.search(joined):
        return match.group(1).rstrip(".")
    return None


def document_fields(
    path: Path,
    *,
    info: dict[str, str] | None = None,
    first_pages: str = "",
    graded: int = 0,
    scales: Counter[str] | None = None,
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Document keyword arguments read from the file, then overridden by its sidecar."""
    info = info or {}
    fields: dict[str, Any] = dict(known or {})
    title = (
        fields.get("title")
        or _usable_title(info.get("title"))
        or title_from_first_page(first_pages)
    )
    if title:
        fields["title"] = title
    if "organization" not in fields and (org := _organization(info, title, first_pages)):
        fields["organization"] = org
    if "year" not in fields and (year := _year(info, title, first_pages)):
        fields["year"] = year
    if "doi" not in fields and (doi := _doi(first_pages)):
        fields["doi"] = doi
    is_guideline = graded > 0 or bool(title and _GUIDELINE_RE.search(title))
    fields.setdefault("doc_type", DocType.guideline if is_guideline else DocType.research)
    if scales and "strength_scale" not in fields:
        fields["strength_scale"] = scales.most_common(1)[0][0]
    fields.update(read_sidecar(path))
    return fields


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any]:
    """`<file>.meta.yaml`: front-matter keys that override what was read from the file."""
    from ingest.loaders.markdown import FRONT_MATTER_KEYS, _coerce

    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        data = load_yaml(side.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LoaderError(side, f"sidecar is not valid YAML, {describe_yaml_error(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaderError(side, f"cannot read the sidecar ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LoaderError(side, "sidecar must be a YAML mapping of `key: value` lines")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FRONT_MATTER_KEYS:
            raise LoaderError(
                side,
                f"unknown key {key!r}{did_you_mean(str(key), FRONT_MATTER_KEYS)}; valid keys: "
                f"{', '.join(sorted(FRONT_MATTER_KEYS))}",
            )
        if value is not None and value != "":
            out[key] = _coerce(side, key, value, "")
    return out
