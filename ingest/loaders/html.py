"""HTML pages: the article text with headings kept as Markdown, page furniture dropped."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from ingest.errors import LoaderError
from ingest.loaders._common import (
    LoadResult,
    clean_line,
    decode_text,
    drop_duplicate_phrases,
    is_boilerplate_line,
    path_document_id,
    reject_binary,
    title_from_stem,
)
from ingest.loaders.guideline import table_recommendations, with_recommendations
from ingest.loaders.metadata import MAX_TITLE, document_fields
from ingest.types import Document

# Elements that are navigation, chrome or code, never article text.
_DROP_TAGS = frozenset(
    {
        "script", "style", "nav", "header", "footer", "aside", "form", "noscript", "iframe",
        "svg", "template", "button", "select", "input", "textarea", "canvas", "object", "embed",
        "menu", "dialog", "head",
    }
)  # fmt: skip
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "body", "html", "blockquote", "table", "thead",
        "tbody", "tfoot", "tr", "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "address",
        "details", "summary", "hr", "caption", "center",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


def load_html(path: Path, data: bytes) -> LoadResult:
    soup = BeautifulSoup(_decode_html(path, data), "lxml")
    title = _title(soup)
    meta = _citation_meta(soup)
    blocks = _Blocks()
    blocks.walk(_main_content(soup))
    cleaned: list[str] = []
    for block in blocks.out:
        text = block if block.startswith("```") else drop_duplicate_phrases(clean_line(block))
        if not text or is_boilerplate_line(text) or (cleaned and cleaned[-1] == text):
            continue
        cleaned.append(text)
    if not cleaned:
        raise LoaderError(
            path, "no text left after removing scripts, navigation, headers and footers"
        )
    body = with_recommendations(cleaned)
    info = {"title": str(meta.pop("title", None) or title or "")}
    if publisher := meta.pop("publisher", None):
        info["author"] = str(publisher)
    elif body_name := _site_body(soup):
        info["author"] = body_name
    fields = document_fields(
        path,
        info=info,
        first_pages="\n\n".join(cleaned[:40]),
        graded=len(body.recommendations),
        scales=body.scales,
        known={k: v for k, v in meta.items() if k != "publisher"},
    )
    fields.setdefault("title", (title or title_from_stem(path))[:MAX_TITLE])
    doc = Document(
        id=fields.pop("id", None) or path_document_id(path),
        text=body.markdown,
        source_path=str(path),
        **fields,
    )
    return LoadResult([doc])


def _main_content(soup: BeautifulSoup) -> Tag:
    """The page's main content when it marks it (<main>, role=main, one <article>)."""
    for found in (soup.find("main"), soup.find(attrs={"role": "main"})):
        if isinstance(found, Tag):
            return found
    articles = soup.find_all("article")
    if len(articles) == 1 and isinstance(articles[0], Tag):
        return articles[0]
    return soup.body or soup


def _decode_html(path: Path, data: bytes) -> str:
    """UTF-8, unless the page declares another charset in a <meta> tag."""
    reject_binary(path, data)
    declared = _CHARSET_RE.search(data[:4096])
    charset = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if charset.replace("-", "").replace("_", "") in {"utf8", "usascii", "ascii"}:
        return decode_text(path, data)
    try:
        text = data.decode(charset)
    except LookupError:
        raise LoaderError(path, f"page declares an unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise LoaderError(
            path, f"page is not valid {charset} (bad byte at offset {exc.start}); fix its charset"
        ) from None
    if not text.strip():
        raise LoaderError(path, "file contains only whitespace; add content or remove it")
    return text


def _text(node: Tag) -> str:
    return " ".join(node.get_text(" ").split())


def _breadcrumbs(soup: BeautifulSoup) -> list[str]:
    """The page's breadcrumb trail ('Home > Guidance > Hypertension'), as the site marks it."""
    trail = soup.find(attrs={"aria-label": re.compile("breadcrumb", re.I)}) or soup.find(
        class_=re.compile(r"\bbreadcrumbs?\b", re.I)
    )
    if not isinstance(trail, Tag):
        return []
    items = [_text(a) for a in trail.find_all(["a", "li", "span"]) if _text(a)]
    return [i for i in dict.fromkeys(items) if len(i) < 120]


def _title(soup: BeautifulSoup) -> str | None:
    """The page's <title> without the site's name around it ('Guideline | Site'), else its
    <h1>, else the breadcrumb trail's last item."""
    h1 = soup.find("h1")
    heading = _text(h1) if isinstance(h1, Tag) else ""
    if soup.title and (text := _text(soup.title)):
        site = {n.lower() for n in [_meta(soup, "og:site_name") or "", *_breadcrumbs(soup)[:2]]}
        parts = [p.strip() for p in re.split(r"\s+[|–—]\s+|\s+-\s+", text) if p.strip()]
        if heading in parts:
            return heading  # the part of the <title> that the page's own heading repeats
        kept = [p for p in parts if p.lower() not in site]
        return " | ".join(kept) if kept and len(kept) < len(parts) else text
    if heading:
        return heading
    crumbs = _breadcrumbs(soup)
    return crumbs[-1] if crumbs else None


def _site_body(soup: BeautifulSoup) -> str | None:
    """The issuing body where the page names no publisher: the site's name, or the breadcrumb
    that names a body ('National Institute for Health and Care Excellence > Guidance')."""
    from ingest.loaders.metadata import ORG_RE

    for name in [_meta(soup, "og:site_name") or "", *_breadcrumbs(soup)]:
        if name and ORG_RE.search(name) and len(name) <= 120:
            return name
    return None


def _meta(soup: BeautifulSoup, name: str) -> str | None:
    tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
    value = tag.get("content") if isinstance(tag, Tag) else None
    return " ".join(str(value or "").split()) or None


def _citation_meta(soup: BeautifulSoup) -> dict[str, object]:
    """Highwire `citation_*` tags (journal pages carry them) and the canonical URL."""

    def content(name: str) -> str | None:
        tag = soup.find("meta", attrs={"name": name})
        value = tag.get("content") if isinstance(tag, Tag) else None
        text = " ".join(str(value or "").split())
        return text or None

    meta: dict[str, object] = {}
    for key, name in (
        ("title", "citation_title"),
        ("title", "DC.title"),
        ("title", "dc.title"),
        ("journal", "citation_journal_title"),
        ("doi", "citation_doi"),
        ("pmid", "citation_pmid"),
        ("publisher", "citation_publisher"),
        ("publisher", "DC.publisher"),
        ("publisher", "dc.publisher"),
        ("publisher", "DC.creator"),
        ("publisher", "dc.creator"),
        ("publisher", "citation_author_institution"),
    ):
        if key in meta:
            continue
        if value := content(name):
            meta[key] = value
    date = (
        content("citation_publication_date")
        or content("citation_date")
        or content("DC.date")
        or content("dc.date")
        or content("dcterms.issued")
        or _meta(soup, "article:published_time")
    )
    if date and (year := re.search(r"\b(19|20)\d{2}\b", date)):
        meta["year"] = int(year.group(0))
    authors = [
        " ".join(str(tag.get("content", "")).split())
        for tag in soup.find_all("meta", attrs={"name": "citation_author"})
    ]
    if authors := [a for a in authors if a]:
        meta["authors"] = authors
    canonical = soup.find("link", rel="canonical")
    href = canonical.get("href") if isinstance(canonical, Tag) else None
    url = str(href) if href else content("citation_fulltext_html_url")
    if url and url.startswith(("http://", "https://")):
        meta["url"] = url
    return meta


class _Blocks:
    """Walks the DOM once, emitting Markdown-ish blocks: `# heading`, paragraphs, `- item`."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._buf: list[str] = []
        self._prefix = ""

    def flush(self) -> None:
        text = " ".join("".join(self._buf).split())
        self._buf.clear()
        if text:
            self.out.append(self._prefix + text)
            self._prefix = ""

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self._buf.append(str(child))
                continue
            if not isinstance(child, Tag) or self._dropped(child):
                continue
            name = child.name.lower()
            if name in _HEADINGS:
                self.flush()
                if heading := _text(child):
                    self.out.append(f"{'#' * _HEADINGS[name]} {heading}")
            elif name == "li":
                self.flush()
                parent = child.parent
                if isinstance(parent, Tag) and parent.name == "ol":
                    # An ordered list's number is the item's id ("3." or the li's value).
                    items = parent.find_all("li", recursive=False)
                    start = int(str(parent.get("start", "1")).strip() or 1)
                    number = child.get("value") or start + items.index(child)
                    self._prefix = f"{number}. "
                else:
                    self._prefix = "- "
                self.walk(child)
                self.flush()
                self._prefix = ""
            elif name == "pre":
                self.flush()
                if code := child.get_text().strip("\n"):
                    self.out.append(f"```\n{code}\n```")
            elif name == "table" and (graded := _graded_table(child)) is not None:
                self.flush()
                self.out.extend(graded)
            elif name == "br":
                self._buf.append("\n")
            elif name in ("td", "th"):
                self._buf.append(" ")
                self.walk(child)
                self._buf.append(" ")
            elif name in _BLOCK_TAGS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)

    @staticmethod
    def _dropped(tag: Tag) -> bool:
        if tag.name.lower() in _DROP_TAGS:
            return True
        if str(tag.get("role", "")).lower() in _DROP_ROLES:
            return True
        return tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true"


def _graded_table(table: Tag) -> list[str] | None:
    """A recommendations table with a separate strength column: one block per row."""
    rows = [
        [_text(cell) for cell in tr.find_all(["td", "th"], recursive=False)]
        for tr in table.find_all("tr")
    ]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        return None
    return table_recommendations(rows[0], rows[1:])
