"""Answer -> Markdown pieces for the Streamlit page. Pure functions: testable without Streamlit.

The page follows the product layout of ``assistant.render.to_markdown`` (notes, the first screen:
summary, key points, conflicting evidence; then, folded, More from the sources; References,
disclaimer) but splits it into blocks, so the app can put the notes in a call-out, the folded
sections in a collapsed expander and the disclaimer in small print. Like the
renderers, it adds no content, only layout and links.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from itertools import pairwise
from urllib.parse import quote

from assistant.render import inert_links, pages_label, reference_line
from assistant.types import Answer, Citation, Reference, Section, Sentence
from ingest.chunking import split_sentences
from ingest.types import Chunk

# Characters Streamlit's Markdown would read as formatting, LaTeX, links or strikethrough.
_SPECIAL = re.compile(r"([\\`*_\[\]$~|])")
_LIST_START = re.compile(r"^(\d+)([.)])(?=\s|$)")
_TOP_LEVEL = 4  # "####": section headings sized for a chat message, not a page
_SYSTEMS = {"cliniq-offline": "the offline answerer", "cliniq-llm": "the LLM answerer"}


@dataclass(frozen=True)
class Block:
    """One piece of an answer. ``kind`` is the section key, or ``references``/``disclaimer``."""

    kind: str
    markdown: str
    #: under the collapsed "More from the sources", not on the first screen
    folded: bool = False


def escape(text: str) -> str:
    """Source or model text shown as written: a '$' or '*' in a guideline must not turn into
    formatting, and a web address in it is text, never a link (only references link out)."""
    return inert_links(_escape_markup(text))


def _escape_markup(text: str) -> str:
    out = _LIST_START.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", text))
    return "\\" + out if out.startswith(("#", ">", "+", "-")) else out


def citation_links(citations: list[Citation], anchor: str | None) -> str:
    """'[1, 3]' with each number a link to the passage that sentence cites, in the viewer
    (``anchor`` prefixes the ids of one answer); plain marks without an anchor."""
    first: dict[int, str] = {}
    for citation in citations:
        first.setdefault(citation.number, citation.chunk_id)
    if not first:
        return ""
    if anchor is None:
        return "[" + ", ".join(map(str, sorted(first))) + "]"
    links = ", ".join(f"[{n}](#{passage_id(anchor, first[n])})" for n in sorted(first))
    return f"\\[{links}\\]"


def passage_id(anchor: str, chunk_id: str) -> str:
    return f"{anchor}-p{chunk_id[:12]}"


def sentence_markdown(sentence: Sentence, anchor: str | None = None) -> str:
    """The sentence, its citation numbers (links to the cited passage when ``anchor`` is
    given), and its caveat in grey italics: not part of the claim, but read with it."""
    text = escape(sentence.text)
    marks = citation_links(sentence.citations, anchor)
    if marks:
        text = f"{text} {marks}"
    if sentence.caveat:
        text += f" :gray[_({escape(sentence.caveat)})_]"
    # A list the sentence leads into: a sub-list under it, quoted and cited with it.
    for item in sentence.items:
        text += f"\n    - {escape(item)}"
    return text


def heading_color(key: str) -> str | None:
    """Direction at a glance: green for, orange against, blue good practice."""
    if key == "against" or key.endswith(("-against", "against-unconfirmed")):
        return "orange"
    if key in {"recommended", "suggested", "for", "for-unconfirmed"}:
        return "green"
    if key == "good-practice":
        return "blue"
    return None


def section_markdown(section: Section, level: int = _TOP_LEVEL, anchor: str | None = None) -> str:
    title = escape(section.title)
    color = heading_color(section.key)
    if color:
        title = f":{color}[{title}]"
    parts = [f"{'#' * min(level, 6)} {title}"]
    if section.sentences:
        parts.append("\n".join(f"- {sentence_markdown(s, anchor)}" for s in section.sentences))
    parts.extend(section_markdown(sub, level + 1, anchor) for sub in section.subsections)
    return "\n\n".join(parts)


def notes_markdown(section: Section) -> str:
    notes = [escape(s.text) for s in section.sentences]
    if len(notes) == 1:
        return notes[0]
    return "\n".join(f"- {n}" for n in notes)


def summary_markdown(section: Section, anchor: str | None = None) -> str:
    return "**Summary.** " + " ".join(sentence_markdown(s, anchor) for s in section.sentences)


def abstention_markdown(section: Section, nearest_topics: list[str]) -> str:
    """The "do not address" message; the nearest topics as a list when the sentence names them."""
    parts: list[str] = []
    for sentence in section.sentences:
        text = sentence.text
        first = text.find(nearest_topics[0]) if nearest_topics else -1
        if first > 0 and all(t in text for t in nearest_topics):
            lead = text[:first].rstrip(" :")
            parts.append(
                escape(lead) + ":\n\n" + "\n".join(f"- {escape(t)}" for t in nearest_topics)
            )
        else:
            parts.append(sentence_markdown(sentence))
    return "\n\n".join(parts)


def _link(label: str, href: str) -> str:
    return f"[{_escape_markup(label)}]({href})"


def reference_links(ref: Reference) -> list[tuple[str, str]]:
    """(text as ``reference_line`` writes it, where it links): DOI or URL, and PubMed."""
    doc = ref.document
    links: list[tuple[str, str]] = []
    if doc.doi:
        links.append((f"doi:{doc.doi}", "https://doi.org/" + quote(doc.doi, safe="/:;.-_~")))
    elif doc.url and doc.url.startswith(("https://", "http://")):
        links.append((doc.url, quote(doc.url, safe="/:;.-_~?&=#%+@,!")))
    if doc.pmid:
        links.append((f"PMID {doc.pmid}", f"https://pubmed.ncbi.nlm.nih.gov/{quote(doc.pmid)}/"))
    return links


def reference_markdown(ref: Reference, pages: list[int] | None = None) -> str:
    """``reference_line`` with its DOI/URL and PMID made links; the text is otherwise the same."""
    line = reference_line(ref, pages or ())
    out: list[str] = []
    position = 0
    for label, href in reference_links(ref):
        found = line.find(label, position)
        if found < 0:
            continue
        out.append(escape(line[position:found]))
        out.append(_link(label, href))
        position = found + len(label)
    out.append(escape(line[position:]))
    return "".join(out)


def references_markdown(
    references: list[Reference], pages: dict[int, list[int]] | None = None
) -> str:
    pages = pages or {}
    lines = [f"{'#' * _TOP_LEVEL} References", ""]
    numbers = [r.number for r in references]
    consecutive = all(b == a + 1 for a, b in pairwise(numbers))
    for ref in references:
        # A Markdown list renumbers its items: only let it when that keeps our numbers.
        number = f"{ref.number}." if consecutive else f"{ref.number}\\."
        lines.append(f"{number} {reference_markdown(ref, pages.get(ref.number))}")
        if not consecutive:
            lines.append("")
    return "\n".join(lines).rstrip()


def answer_blocks(answer: Answer, anchor: str | None = None) -> list[Block]:
    """The answer in reading order: notes first, references and disclaimer last. With an
    ``anchor``, each citation number links to its passage (see ``cited_passages_html``)."""
    blocks: list[Block] = []
    for section in answer.sections:
        if section.folded:
            continue
        if section.key == "notes":
            blocks.append(Block("notes", notes_markdown(section)))
        elif section.key == "summary":
            blocks.append(Block("summary", summary_markdown(section, anchor)))
        elif section.key == "abstention":
            blocks.append(Block("abstention", abstention_markdown(section, answer.nearest_topics)))
        else:
            blocks.append(Block(section.key, section_markdown(section, anchor=anchor)))
    blocks.extend(
        Block(section.key, section_markdown(section, anchor=anchor), folded=True)
        for section in answer.folded_sections()
    )
    if answer.references:
        pages = {r.number: answer.pages_cited(r) for r in answer.references}
        blocks.append(Block("references", references_markdown(answer.references, pages)))
    if answer.disclaimer:
        blocks.append(Block("disclaimer", escape(answer.disclaimer)))
    return blocks


# -- the evidence behind an answer -----------------------------------------------------------


def _cited_numbers(answer: Answer) -> dict[str, list[int]]:
    out: dict[str, set[int]] = {}
    for sentence in answer.all_sentences():
        for citation in sentence.citations:
            out.setdefault(citation.chunk_id, set()).add(citation.number)
    return {k: sorted(v) for k, v in out.items()}


def passage_rows(answer: Answer) -> list[dict[str, object]]:
    """Every retrieved passage with its fused, dense and BM25 scores and ranks, and the numbers
    the answer cites it by: for clinicians who want to check, and for evaluators (a table
    they can sort)."""
    cited = _cited_numbers(answer)
    return [
        {
            "#": p.rank,
            "fused": round(p.score, 4),
            "dense": None if p.dense_score is None else round(p.dense_score, 3),
            "dense rank": p.dense_rank,
            "BM25": None if p.lexical_score is None else round(p.lexical_score, 2),
            "BM25 rank": p.lexical_rank,
            "document": p.document.id,
            "type": f"{p.document.doc_type}, {p.document.status}",
            "section": p.chunk.heading,
            "page": p.chunk.page,
            "cited as": citation_marks_for(cited.get(p.chunk.id)),
        }
        for p in answer.passages
    ]


def citation_marks_for(numbers: list[int] | None) -> str:
    return "[" + ", ".join(str(n) for n in numbers) + "]" if numbers else ""


def passage_texts(answer: Answer, limit: int = 700) -> str:
    """The passage texts, shortened, so a claim can be checked against its source."""
    parts: list[str] = []
    for p in answer.passages:
        text = " ".join(p.chunk.text.split())
        if len(text) > limit:
            text = text[: limit - 1].rsplit(" ", 1)[0] + " …"
        where = escape(p.document.title) + (
            f" › {escape(p.chunk.heading)}" if p.chunk.heading else ""
        )
        if p.chunk.page is not None:
            where += f", {pages_label([p.chunk.page])}"
        parts.append(f"**{p.rank}.** {where}\n\n> {escape(text)}")
    return "\n\n".join(parts)


def follow_up_reading(answer: Answer) -> str | None:
    """How a question was read with the earlier ones ("What about dialysis?" -> "management of
    restless legs syndrome: patients on dialysis"). Shown first, so a misreading is caught."""
    typed = answer.normalization.rewritten if answer.normalization else answer.question
    query = answer.standalone_query.strip()
    if not query or query == typed.strip():
        return None
    return (
        f"Read with the earlier questions as: _{escape(query)}_. "
        "Start a new conversation to change the subject."
    )


def searched_for(answer: Answer) -> str | None:
    """The query retrieval used, when it differs from what was typed (normalized terms, or a
    follow-up read with the earlier questions)."""
    query = answer.standalone_query.strip()
    if not query or query.rstrip("?. ").lower() == answer.question.strip().rstrip("?. ").lower():
        return None
    return f"Searched the index for: {escape(query)}"


def timings_line(answer: Answer) -> str:
    """Small print: who answered and how long each step took."""
    who = _SYSTEMS.get(answer.system, answer.system)
    steps = {k.removesuffix("_ms"): v for k, v in answer.timings_ms.items()}
    total = steps.pop("total", None)
    head = f"Answered by {who}" + (f" in {total / 1000:.2f} s" if total is not None else "")
    tail = " · ".join(f"{name} {ms:.0f} ms" for name, ms in steps.items())
    return f"{head} — {tail}" if tail else head


# -- the passage viewer ------------------------------------------------------------------------

#: Hidden until its citation number is clicked (the link's #target), then shown and framed.
PASSAGE_CSS = """<style>
.cliniq-passage { display: none; border-left: 3px solid #1c83e1; padding: 0.4rem 0.8rem;
  margin: 0.5rem 0; background: rgba(28, 131, 225, 0.06); border-radius: 0.25rem; }
.cliniq-passage:target { display: block; }
.cliniq-passage mark { background: #ffe58a; padding: 0 0.1rem; }
.cliniq-passage .where { font-size: 0.85rem; color: #555; }
</style>"""
_WORD_RE = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if len(w) > 2}


def cited_sentence_spans(chunk_text: str, claims: list[str]) -> list[str]:
    """The passage's sentences, each cited one (the best match of each claim that cites the
    passage, by shared words) wrapped in <mark>; HTML-escaped."""
    sentences = split_sentences(chunk_text) or [chunk_text]
    marked: set[int] = set()
    for claim in claims:
        words = _words(claim)
        if not words:
            continue
        scores = [len(words & _words(s)) / len(words | _words(s) or {""}) for s in sentences]
        best = max(range(len(sentences)), key=scores.__getitem__)
        if scores[best] >= 0.2:
            marked.add(best)
    return [
        f"<mark>{html.escape(s)}</mark>" if i in marked else html.escape(s)
        for i, s in enumerate(sentences)
    ]


def passage_where(chunk: Chunk) -> str:
    """'Title, Organization, 2022 · p. 14 · Section': where a passage is in its source."""
    doc = chunk.document
    source = ", ".join(str(p) for p in (doc.title, doc.source_name, doc.year) if p)
    parts = [source]
    if chunk.page is not None:
        parts.append(pages_label([chunk.page]))
    if chunk.heading:
        parts.append(chunk.heading)
    return " · ".join(parts)


def cited_passages_html(answer: Answer, anchor: str) -> str:
    """One hidden box per cited passage, the cited sentences highlighted; clicking [n] after
    a sentence opens the passage that sentence cites (CSS :target, no rerun)."""
    by_id = {p.chunk.id: p.chunk for p in answer.passages}
    claims: dict[str, list[str]] = {}
    number_of: dict[str, int] = {}
    for sentence in answer.all_sentences():
        for citation in sentence.citations:
            claims.setdefault(citation.chunk_id, []).extend([sentence.text, *sentence.items])
            number_of.setdefault(citation.chunk_id, citation.number)
    boxes: list[str] = []
    for chunk_id, number in number_of.items():
        chunk = by_id.get(chunk_id)
        if chunk is None:
            continue
        spans = cited_sentence_spans(chunk.text, claims[chunk_id])
        boxes.append(
            f'<div class="cliniq-passage" id="{passage_id(anchor, chunk_id)}">'
            f'<strong>[{number}]</strong> <span class="where">'
            f"{html.escape(passage_where(chunk))}</span><p>{' '.join(spans)}</p></div>"
        )
    return "\n".join(boxes)
