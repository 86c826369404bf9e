"""Answer -> Markdown pieces for the Streamlit page. Pure functions: testable without Streamlit.

The page follows the product layout of ``assistant.render.to_markdown`` (notes, summary, From the
Guidelines, From the Research, Conflicting evidence, References, disclaimer) but splits it into
blocks, so the app can put the notes in a call-out and the disclaimer in small print. Like the
renderers, it adds no content, only layout and links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from urllib.parse import quote

from assistant.render import citation_marks, reference_line
from assistant.types import Answer, Reference, Section, Sentence

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


def escape(text: str) -> str:
    """Source text shown as written: a '$' or '*' in a guideline must not turn into formatting."""
    out = _LIST_START.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", text))
    return "\\" + out if out.startswith(("#", ">", "+", "-")) else out


def sentence_markdown(sentence: Sentence) -> str:
    """The sentence, its citation numbers, and its caveat in grey italics: not part of the
    claim, but read with it."""
    text = escape(sentence.text)
    marks = citation_marks(sentence.citations)
    if marks:
        text = f"{text} {marks}"
    if sentence.caveat:
        text += f" :gray[_({escape(sentence.caveat)})_]"
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


def section_markdown(section: Section, level: int = _TOP_LEVEL) -> str:
    title = escape(section.title)
    color = heading_color(section.key)
    if color:
        title = f":{color}[{title}]"
    parts = [f"{'#' * min(level, 6)} {title}"]
    if section.sentences:
        parts.append("\n".join(f"- {sentence_markdown(s)}" for s in section.sentences))
    parts.extend(section_markdown(sub, level + 1) for sub in section.subsections)
    return "\n\n".join(parts)


def notes_markdown(section: Section) -> str:
    notes = [escape(s.text) for s in section.sentences]
    if len(notes) == 1:
        return notes[0]
    return "\n".join(f"- {n}" for n in notes)


def summary_markdown(section: Section) -> str:
    return "**Summary.** " + " ".join(sentence_markdown(s) for s in section.sentences)


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
    return f"[{escape(label)}]({href})"


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


def reference_markdown(ref: Reference) -> str:
    """``reference_line`` with its DOI/URL and PMID made links; the text is otherwise the same."""
    line = reference_line(ref)
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


def references_markdown(references: list[Reference]) -> str:
    lines = [f"{'#' * _TOP_LEVEL} References", ""]
    numbers = [r.number for r in references]
    consecutive = all(b == a + 1 for a, b in pairwise(numbers))
    for ref in references:
        # A Markdown list renumbers its items: only let it when that keeps our numbers.
        number = f"{ref.number}." if consecutive else f"{ref.number}\\."
        lines.append(f"{number} {reference_markdown(ref)}")
        if not consecutive:
            lines.append("")
    return "\n".join(lines).rstrip()


def answer_blocks(answer: Answer) -> list[Block]:
    """The answer in reading order: notes first, references and disclaimer last."""
    blocks: list[Block] = []
    for section in answer.sections:
        if section.key == "notes":
            blocks.append(Block("notes", notes_markdown(section)))
        elif section.key == "summary":
            blocks.append(Block("summary", summary_markdown(section)))
        elif section.key == "abstention":
            blocks.append(Block("abstention", abstention_markdown(section, answer.nearest_topics)))
        else:
            blocks.append(Block(section.key, section_markdown(section)))
    if answer.references:
        blocks.append(Block("references", references_markdown(answer.references)))
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
