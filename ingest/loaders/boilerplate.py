"""Page furniture recognised by its shape, on any site: never by the phrases of one publisher.

Three signals, each general:

- **interface sentences** speak to the reader about the page, not the subject: an action on an
  interface ("click", "tap", "scroll", "enlarge", "subscribe") addressed to the reader (the
  sentence opens with it, or with "please", or a clause does: "To enlarge the video, click the
  brackets ...") together with a thing on a screen ("video", "link", "button", "window", "here");
  consent and rights notices (cookies with a site or browser; copyright, trademark, terms of use,
  a Creative Commons licence); an author's disclosure ("has received fees from");
- **link-dense lines**: mostly addresses (URLs, "www.") with few words around them;
- **repeated furniture**: a paragraph printed on at least half of the pages of one source
  (a site's "related resources" list, a standard disclaimer), after each page's own title is
  taken out, so "Treatment of <this condition>:" templates count as the same line. Content
  repeated on a few pages (a list item "fever", an inheritance sentence shared by a third of a
  site's pages) stays: half of a source is furniture, a third is not.

A short line that is only an interface sentence goes; in a paragraph, only its interface
sentences go, the rest of the paragraph stays.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

MAX_WORDS = 40  # an interface sentence is short; a longer one is content that mentions a screen
REPEATED_SHARE = 0.5  # furniture: on at least this share of a source's pages ...
REPEATED_MIN_PAGES = 8  # ... of a source with at least this many pages

ACTIONS = frozenset(
    {
        "click", "clicking", "tap", "scroll", "enlarge", "zoom", "subscribe", "unsubscribe",
        "bookmark", "download", "print", "share", "sign", "log", "play", "watch", "press",
        "select", "hover", "drag", "swipe",
    }
)  # fmt: skip
SCREEN_THINGS = frozenset(
    {
        "video", "videos", "link", "links", "button", "buttons", "page", "window", "tab",
        "screen", "box", "menu", "icon", "brackets", "corner", "website", "animation",
        "here", "cookies", "browser", "app", "player", "resource", "resources", "keyboard",
        "toolbar", "banner", "popup", "pop-up", "checkbox", "slider", "url", "pdf",
    }
)  # fmt: skip
_SHARE_THIS = re.compile(r"(?i)\b(share|print|e-?mail|bookmark)\s+this\s+(page|content|article)\b")
_COOKIES = re.compile(r"(?i)\bcookies?\b.{0,80}\b(site|website|browser|consent|accept)\b|"
                      r"\b(site|website|browser|accept)\b.{0,80}\bcookies?\b")  # fmt: skip
_RIGHTS = re.compile(
    r"(?i)\b(copyright(ed)?|trademark(ed)?|all rights reserved|terms of (use|service)|"
    r"terms and conditions|privacy policy|creative commons|open access article|rights holder|"
    r"by permission of)\b"
)
# An author's disclosure printed with an article ("X has received speaker's fees from ...",
# "The authors declare no competing interests"): about the authors, not the subject.
_DISCLOSURE = re.compile(
    r"(?i)\b(?:ha(?:s|ve)\s+received\s+(?:[\w'’-]+\s+){0,3}?(?:fees|honorari\w*|grants?)"
    r"\s+(?:from|for)\b|declares?\s+(?:that\s+\w+\s+ha(?:s|ve)\s+)?no\s+(?:competing|conflicts?))"
)
# Who did what in writing it ("All authors read and approved the final manuscript", "RC
# conceived the study and drafted the manuscript"): the authorship statement journals print.
_AUTHORSHIP = re.compile(
    r"(?i)\b(?:(?:read|reviewed)\s+and\s+approved\s+the\s+final|approved\s+the\s+final\s+"
    r"(?:manuscript|version)|(?:drafted|wrote|revised)\s+the\s+(?:first\s+|final\s+)?"
    r"(?:draft|manuscript)|(?:conceived|designed)\s+(?:and\s+designed\s+)?the\s+(?:study|work))"
)
_ACTION_HINT = re.compile(r"\b(?:" + "|".join(sorted(ACTIONS)) + r")\b")
# Any sign of interface text or a link: paragraphs without one are kept as they are.
_HINT_WORDS = ACTIONS | {
    "cookie", "cookies", "copyright", "copyrighted", "trademark", "trademarked", "reserved",
    "terms", "privacy", "email", "mail", "http", "https", "www",
}  # fmt: skip
_LETTERS = re.compile(r"[a-z]+")
_RIGHTS_HINT = re.compile(
    r"copyright|trademark|rights reserved|terms |privacy|creative commons|open access|"
    r"rights holder|permission"
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")


def _addressed_action(words: list[str]) -> bool:
    """An action word that opens the sentence, follows "please", or opens a clause."""
    for i, word in enumerate(words):
        if word in ACTIONS and (i == 0 or words[i - 1] in {"please", ",", "then", "and"}):
            return True
    return False


def interface_sentence(sentence: str) -> bool:
    """A sentence about the page or player (or a consent or rights notice), not the subject."""
    text = sentence.strip()
    low = text.lower()
    if text.count(" ") >= MAX_WORDS:
        return False
    # Cheap substring tests first: most sentences mention none of these.
    if (
        (" this " in low and _SHARE_THIS.search(text))
        or ("cookie" in low and _COOKIES.search(text))
        or (_RIGHTS_HINT.search(low) and _RIGHTS.search(text))
        or (("received" in low or "declare" in low) and _DISCLOSURE.search(text))
        or (
            ("manuscript" in low or "final version" in low or "the study" in low)
            and _AUTHORSHIP.search(text)
        )
    ):
        return True
    if not _ACTION_HINT.search(low):
        return False
    words = re.findall(r"[a-z][a-z'-]*|,", low)
    return _addressed_action(words) and any(w in SCREEN_THINGS for w in words)


def single_sentence(line: str) -> bool:
    return len(_SENTENCE.split(line.strip())) == 1


def link_dense(line: str) -> bool:
    """A line that is mostly web addresses: at least half its characters, few words besides."""
    text = line.strip()
    if "http" not in text and "www." not in text:
        return False
    urls = _URL.findall(text)
    if not urls:
        return False
    rest = _URL.sub(" ", text)
    return sum(map(len, urls)) >= 0.5 * len(text.replace(" ", "")) and len(rest.split()) <= 12


def strip_interface(paragraph: str) -> str:
    """The paragraph without its interface sentences and link-only lines ('' if nothing left)."""
    if _HINT_WORDS.isdisjoint(_LETTERS.findall(paragraph.lower())):
        return paragraph
    kept_lines = []
    for line in paragraph.split("\n"):
        if link_dense(line):
            continue
        prefix = re.match(r"\s*(?:[-*+]\s+|\d{1,3}[.)]\s+)?", line).group(0)  # type: ignore[union-attr]
        sentences = _SENTENCE.split(line[len(prefix) :])
        kept = [s for s in sentences if not interface_sentence(s)]
        if kept:
            kept_lines.append(prefix + " ".join(kept) if len(kept) < len(sentences) else line)
    return "\n".join(kept_lines).strip("\n") if kept_lines else ""


def _key(paragraph: str, title: str) -> str:
    """Words of the paragraph, the page's own title replaced by one placeholder."""
    text = paragraph.lower()
    if title.strip():
        text = text.replace(title.lower().strip(), " xtitlex ")
    return " ".join(_WORD.findall(text))


def repeated_paragraphs(pages: Sequence[tuple[str, Sequence[str]]]) -> list[list[bool]]:
    """Per page, per paragraph: is it furniture (on at least half of this source's pages)?

    ``pages``: (title, paragraphs) per page of one source. A source with fewer than
    ``REPEATED_MIN_PAGES`` pages is too small to tell furniture from shared content.
    """
    if len(pages) < REPEATED_MIN_PAGES:
        return [[False] * len(paragraphs) for _, paragraphs in pages]
    keys = [[_key(p, title) for p in paragraphs] for title, paragraphs in pages]
    counts: Counter[str] = Counter()
    for page_keys in keys:
        counts.update(set(page_keys))
    need = max(2, REPEATED_SHARE * len(pages))
    return [[bool(k) and counts[k] >= need for k in page_keys] for page_keys in keys]
