"""Answer -> Markdown, plain text or JSON. Rendering adds no content, only layout."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from assistant.types import Answer, Citation, Reference, Section, Sentence

_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)", re.I)

#: the heading of what is not on the first screen
MORE_TITLE = "More from the sources"


def inert_links(text: str) -> str:
    """A web address in answer text stays readable but is not a link in any Markdown or
    terminal renderer (a zero-width space after its scheme): only the references link out."""
    return _URL.sub(lambda m: m.group(0)[:-1] + "\u200b" + m.group(0)[-1], text)


def citation_marks(citations: list[Citation]) -> str:
    numbers = sorted({c.number for c in citations})
    return "[" + ", ".join(str(n) for n in numbers) + "]" if numbers else ""


def _sentence(sentence: Sentence, markdown: bool, indent: str = "  ") -> str:
    """The sentence, its citation marks and caveat; a list it leads into as a sub-list."""
    text = inert_links(sentence.text)
    marks = citation_marks(sentence.citations)
    if marks:
        text = f"{text} {marks}"
    if sentence.caveat:
        text += f" _({sentence.caveat})_" if markdown else f" ({sentence.caveat})"
    for item in sentence.items:
        text += f"\n{indent}- {inert_links(item)}"
    return text


def pages_label(pages: Sequence[int]) -> str:
    """'p. 14' or 'pp. 9, 14': where in the source the cited passages are."""
    if not pages:
        return ""
    return f"p. {pages[0]}" if len(pages) == 1 else "pp. " + ", ".join(map(str, pages))


def reference_line(ref: Reference, pages: Sequence[int] = (), recs: Sequence[str] = ()) -> str:
    doc = ref.document
    parts = [doc.title.rstrip(".") + "."]
    source = ", ".join(p for p in (doc.organization, doc.journal) if p)
    if source:
        parts.append(source + ".")
    if ref.citation:
        parts.append(ref.citation.rstrip(".") + ".")
    elif doc.year:
        parts.append(f"{doc.year}.")
    if pages:
        parts.append(pages_label(pages) + ".")
    if recs:  # no page to cite: the recommendation's own number
        parts.append(("rec. " if len(recs) == 1 else "recs ") + ", ".join(recs) + ".")
    if doc.doi:
        parts.append(f"doi:{doc.doi}")
    elif doc.url:
        parts.append(doc.url)
    if doc.pmid:
        parts.append(f"PMID {doc.pmid}")
    if doc.status == "superseded":
        parts.append("(superseded by a newer guideline)")
    return " ".join(parts)


def shown_references(answer: Answer, brief: bool) -> list[Reference]:
    """All references, or with `brief` those the first screen cites."""
    if not brief:
        return list(answer.references)
    numbers = {c.number for s in _sentences(answer.first_screen()) for c in s.citations}
    return [r for r in answer.references if r.number in numbers]


def _sentences(sections: Sequence[Section]) -> list[Sentence]:
    out: list[Sentence] = []
    for section in sections:
        out.extend(section.sentences)
        out.extend(_sentences(section.subsections))
    return out


def to_markdown(answer: Answer, brief: bool = False) -> str:
    """The first screen, then (unless `brief`) the rest under 'More from the sources'."""
    lines: list[str] = []
    folded = [] if brief else answer.folded_sections()
    for section in answer.sections:
        if section.folded:
            continue
        if section.key == "notes":
            lines.extend(f"> **Note:** {s.text}" for s in section.sentences)
            lines.append("")
        elif section.key == "summary":
            lines.append("**Summary.** " + " ".join(_sentence(s, True) for s in section.sentences))
            lines.append("")
        else:
            _markdown_section(section, lines, level=2)
    if folded:
        lines.append(f"## {MORE_TITLE}")
        lines.append("")
        for section in folded:
            _markdown_section(section, lines, level=3)
    references = shown_references(answer, brief)
    if references:
        lines.append("## References")
        lines.extend(
            f"{r.number}. {reference_line(r, answer.pages_cited(r), answer.recs_cited(r))}"
            for r in references
        )
        lines.append("")
    if answer.disclaimer:
        lines.append("---")
        lines.append(f"_{answer.disclaimer}_")
    return "\n".join(lines).rstrip() + "\n"


def _markdown_section(section: Section, lines: list[str], level: int) -> None:
    lines.append(f"{'#' * level} {section.title}")
    lines.extend(f"- {_sentence(s, True)}" for s in section.sentences)
    lines.append("")
    for sub in section.subsections:
        _markdown_section(sub, lines, level + 1)


def to_text(answer: Answer, brief: bool = False) -> str:
    """The first screen, then (unless `brief`) the rest under 'MORE FROM THE SOURCES'."""
    lines: list[str] = []

    def walk(section: Section, depth: int) -> None:
        if section.key == "summary":
            lines.append("Summary: " + " ".join(_sentence(s, False) for s in section.sentences))
            lines.append("")
            return
        if section.key == "notes":
            lines.extend(f"Note: {s.text}" for s in section.sentences)
            lines.append("")
            return
        title = section.title.upper() if depth == 0 else section.title
        lines.append(("  " * depth) + title)
        lines.extend(
            ("  " * depth) + f"  * {_sentence(s, False, '  ' * depth + '      ')}"
            for s in section.sentences
        )
        if section.sentences:
            lines.append("")
        for sub in section.subsections:
            walk(sub, depth + 1)

    for section in answer.sections:
        if not section.folded:
            walk(section, 0)
    folded = [] if brief else answer.folded_sections()
    if folded:
        lines.append(MORE_TITLE.upper())
        lines.append("")
        for section in folded:
            walk(section, 1)
    references = shown_references(answer, brief)
    if references:
        lines.append("REFERENCES")
        lines.extend(
            f"  {r.number}. {reference_line(r, answer.pages_cited(r), answer.recs_cited(r))}"
            for r in references
        )
        lines.append("")
    if answer.disclaimer:
        lines.append(answer.disclaimer)
    return "\n".join(lines).rstrip() + "\n"


def to_json(answer: Answer, include_passage_text: bool = True) -> str:
    data = answer.model_dump(mode="json")
    if not include_passage_text:
        for passage in data.get("passages", []):
            passage["chunk"].pop("text", None)
    return json.dumps(data, indent=2, ensure_ascii=False)
