"""Chunker: sentence splitting, section paths, token bounds, overlap, recommendation blocks."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from conftest import shared_dataset

from ingest.chunking import TokenCounting, chunk_document, split_sentences
from ingest.errors import LoaderError
from ingest.loaders import load_file
from ingest.settings import ChunkingSettings, IngestSettings
from ingest.tokens import SPECIAL_TOKENS, TokenCounter, default_token_counter
from ingest.types import Direction, Document, GradeConfidence, RecommendationKind

MAX = ChunkingSettings().max_tokens


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return default_token_counter()


def doc(text: str, **fields: object) -> Document:
    values: dict = {"id": "test-doc", "title": "Test document", "source_path": "test.md"}
    values.update(fields)
    return Document(text=text, **values)


class WordCounter:
    """One token per whitespace-separated word: fast and predictable, for algorithm tests."""

    def count(self, text: str) -> int:
        return len(text.split())


# -- sentences ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Take 0.5 mg daily. Then reassess.", ["Take 0.5 mg daily.", "Then reassess."]),
        ("A dose of 1.5 mg was used. It worked.", ["A dose of 1.5 mg was used.", "It worked."]),
        ("Ferritin below 75 ng/mL. Give iron.", ["Ferritin below 75 ng/mL.", "Give iron."]),
        (
            "Iron (e.g., ferrous sulfate) helps. Good.",
            ["Iron (e.g., ferrous sulfate) helps.", "Good."],
        ),
        ("Use one, i.e. Iron. Fine.", ["Use one, i.e. Iron.", "Fine."]),
        ("Dopamine vs. Placebo was tested. Done.", ["Dopamine vs. Placebo was tested.", "Done."]),
        ("Dr. Smith agreed. Next.", ["Dr. Smith agreed.", "Next."]),
        ("Smith et al. Reported it. Next.", ["Smith et al. Reported it.", "Next."]),
        ("About approx. Five cases. End.", ["About approx. Five cases.", "End."]),
        ("See Fig. 2 for data. End.", ["See Fig. 2 for data.", "End."]),
        ("As shown (Fig. 3). Next one.", ["As shown (Fig. 3).", "Next one."]),
        ("Seen by J. W. Smith today. End.", ["Seen by J. W. Smith today.", "End."]),
        ("Dr. A. Jones wrote it. End.", ["Dr. A. Jones wrote it.", "End."]),
        ("Take vitamin D. Then rest.", ["Take vitamin D.", "Then rest."]),
        ("Hepatitis B. It spreads.", ["Hepatitis B.", "It spreads."]),
        ("The answer is no. Then stop.", ["The answer is no.", "Then stop."]),
        ("See No. 5 for this. End.", ["See No. 5 for this.", "End."]),
        ("Is it curable? No. It is not.", ["Is it curable?", "No.", "It is not."]),
        ("Stop now! Then wait.", ["Stop now!", "Then wait."]),
        ("Approved in the U.S. Food supply. End.", ["Approved in the U.S. Food supply.", "End."]),
        ("Take at 9 p.m. The next day rest.", ["Take at 9 p.m.", "The next day rest."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("It ends (as seen.) Then more.", ["It ends (as seen.)", "Then more."]),
        ("lowercase after period. continues here.", ["lowercase after period. continues here."]),
        ("Wait... Then go.", ["Wait...", "Then go."]),
        ("1. First step. 2. Second step.", ["1. First step.", "2. Second step."]),
        ("A line wrapped\nacross lines. Next.", ["A line wrapped across lines.", "Next."]),
        ("Para one\n\nPara two", ["Para one", "Para two"]),
        ("Items:\n- alpha\n- beta", ["Items:", "- alpha", "- beta"]),
        ("* star item\n+ plus item\n• dot item", ["* star item", "+ plus item", "• dot item"]),
        ("1. one\n2) two\n(3) three", ["1. one", "2) two", "(3) three"]),
        ("a) first\nb) second", ["a) first", "b) second"]),
        ("- item that wraps\n  onto a second line", ["- item that wraps onto a second line"]),
        ("- Two here. And here.", ["- Two here.", "And here."]),
        ("# Heading\nText under it.", ["# Heading", "Text under it."]),
        ("| a | b |\n| c | d |", ["| a | b |", "| c | d |"]),
        ("Runs   of\t\tspaces.  Next.", ["Runs of spaces.", "Next."]),
        ("No terminal punctuation", ["No terminal punctuation"]),
        ("", []),
        ("   \n\n  ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


# -- sections, pages, code ---------------------------------------------------------------------


def test_section_paths_follow_heading_levels(counter: TokenCounter) -> None:
    text = (
        "Intro before any heading.\n\n"
        "# Part A\n\nIn A.\n\n"
        "## Sub A1\n\nIn A1.\n\n"
        "### Deep\n\nIn deep.\n\n"
        "## Sub A2\n\nIn A2.\n\n"
        "# Part B\n\nIn B.\n"
    )
    chunks = chunk_document(doc(text), counter=counter)
    got = [(c.text, c.section_path) for c in chunks]
    assert got == [
        ("Intro before any heading.", []),
        ("In A.", ["Part A"]),
        ("In A1.", ["Part A", "Sub A1"]),
        ("In deep.", ["Part A", "Sub A1", "Deep"]),
        ("In A2.", ["Part A", "Sub A2"]),
        ("In B.", ["Part B"]),
    ]
    assert chunks[3].heading == "Part A > Sub A1 > Deep"


def test_title_heading_is_not_a_section(counter: TokenCounter) -> None:
    text = "# Test Document\n\nFirst words.\n\n## Methods\n\nWe did it."
    chunks = chunk_document(doc(text), counter=counter)
    assert [c.section_path for c in chunks] == [[], ["Methods"]]
    # A lone leading `#` heading is a (short) title even when it differs from the full one.
    short = chunk_document(doc("# Short title\n\n## Methods\n\nWords."), counter=counter)
    assert short[0].section_path == ["Methods"]
    # With several `#` headings, a leading one that is not the title is a real section...
    parts = chunk_document(doc("# Part A\n\nIn A.\n\n# Part B\n\nIn B."), counter=counter)
    assert [c.section_path for c in parts] == [["Part A"], ["Part B"]]
    # ...and one that repeats the title is dropped for its own scope only.
    text = "# Test document\n\nIntro.\n\n## Sub\n\nIn sub.\n\n# Appendix\n\nMore."
    paths = [c.section_path for c in chunk_document(doc(text), counter=counter)]
    assert paths == [[], ["Sub"], ["Appendix"]]
    # Content before the heading makes it a section, not a title.
    late = chunk_document(doc("Preface.\n\n# Test document\n\nWords."), counter=counter)
    assert [c.section_path for c in late] == [[], ["Test document"]]


def test_page_markers_set_page_and_are_removed(counter: TokenCounter) -> None:
    text = "<!-- page: 1 -->\n\nOn page one.\n\n<!-- page: 2 -->\n\nOn page two."
    chunks = chunk_document(doc(text), counter=counter)
    assert [(c.text, c.page) for c in chunks] == [("On page one.", 1), ("On page two.", 2)]
    assert all("<!--" not in c.text for c in chunks)


def test_code_blocks_are_kept_as_text(counter: TokenCounter) -> None:
    text = "Before.\n\n```python\nx = 1.5\ny = x. z\n```\n\nAfter."
    chunks = chunk_document(doc(text), counter=counter)
    assert len(chunks) == 1
    assert "x = 1.5\ny = x. z" in chunks[0].text
    assert chunks[0].text.startswith("Before.") and chunks[0].text.endswith("After.")


def test_comments_rules_and_table_separators_are_not_text(counter: TokenCounter) -> None:
    text = (
        "A.\n\n<!-- an author's note\nover two lines -->\n\nB.\n\n---\n\n"
        "| Drug | Dose |\n|------|:----:|\n| iron | 65 mg |\n\n<!-- one line -->\nC.\n\n* * *\n"
    )
    [chunk] = chunk_document(doc(text), counter=counter)
    assert chunk.text == "A.\nB.\n| Drug | Dose |\n| iron | 65 mg |\nC."


def test_empty_body_gives_no_chunks(counter: TokenCounter) -> None:
    assert chunk_document(doc("\n\n   \n"), counter=counter) == []
    assert chunk_document(doc("## Only a heading\n"), counter=counter) == []


# -- bounds, overlap, determinism ------------------------------------------------------------------


def _medquad_docs() -> list[Document]:
    xml_dir = shared_dataset("medquad", "raw_restless_legs_xml")
    docs = [d for f in sorted(xml_dir.glob("*.xml")) if "ADAM" not in f.name for d in load_file(f)]
    big = shared_dataset("medquad", "medquad_answered_collections_1-9.jsonl")
    every = load_file(big, IngestSettings(max_file_bytes=100_000_000))
    return docs + every[::60]  # ~90 pages from all nine collections


def test_real_medquad_chunks_fit_the_model(counter: TokenCounter) -> None:
    docs = _medquad_docs()
    chunks = [c for d in docs for c in chunk_document(d, counter=counter)]
    assert len(chunks) > 300
    counts = counter.count_many([c.text for c in chunks])
    assert max(counts) + SPECIAL_TOKENS <= MAX
    assert max(counts) + SPECIAL_TOKENS > MAX - 40  # chunks are packed, not one per sentence
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text and chunk.text
        assert not re.search(r"[ \t]{2,}|\n\s*\n", chunk.text), chunk.text[:200]
        assert chunk.section_path, "every MedQuAD chunk sits under its question"


def test_positions_and_ids_are_deterministic(counter: TokenCounter) -> None:
    path = shared_dataset("medquad", "raw_restless_legs_xml", "8_NHLBI_QA_XML_0000114.xml")
    first = chunk_document(load_file(path)[0], counter=counter)
    second = chunk_document(load_file(path)[0], counter=counter)
    assert [c.position for c in first] == list(range(len(first)))
    assert [(c.id, c.text) for c in first] == [(c.id, c.text) for c in second]
    assert len({c.id for c in first}) == len(first)


def _prose(n: int) -> str:
    return " ".join(f"Sentence number {i} talks about ferritin and iron stores." for i in range(n))


def test_sentences_are_never_cut(counter: TokenCounter) -> None:
    text = _prose(120)
    chunks = chunk_document(doc(text), counter=counter)
    assert len(chunks) > 3
    for sentence in split_sentences(text):
        assert any(sentence in c.text for c in chunks), sentence
    for chunk in chunks:
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("stores.")


def test_overlap_carries_whole_trailing_sentences(counter: TokenCounter) -> None:
    settings = ChunkingSettings(max_tokens=128, overlap_tokens=32)
    chunks = chunk_document(doc(_prose(80)), settings, counter)
    assert len(chunks) > 4
    for previous, current in itertools.pairwise(chunks):
        prev_sentences = split_sentences(previous.text)
        carried = split_sentences(current.text)[:4]
        shared = [s for s in carried if s in prev_sentences]
        assert shared, "each chunk starts with the end of the one before"
        assert prev_sentences[-len(shared) :] == shared
        overlap = counter.count(" ".join(shared))
        assert 0 < overlap <= 2 * settings.overlap_tokens


def test_no_overlap_when_disabled_or_across_sections(counter: TokenCounter) -> None:
    settings = ChunkingSettings(max_tokens=64, overlap_tokens=0)
    chunks = chunk_document(doc(_prose(30)), settings, counter)
    sentences = [s for c in chunks for s in split_sentences(c.text)]
    assert len(sentences) == len(set(sentences)) == 30
    text = f"## One\n\n{_prose(3)}\n\n## Two\n\n{_prose(3)}"
    by_section = chunk_document(doc(text), ChunkingSettings(overlap_tokens=32), counter)
    assert [c.section_path for c in by_section] == [["One"], ["Two"]]


def test_a_sentence_over_the_budget_is_cut_at_clauses(counter: TokenCounter) -> None:
    clauses = [f"clause {i} names drug number {i} and its dose" for i in range(60)]
    sentence = "; ".join(clauses) + "."
    assert counter.count(sentence) > MAX
    chunks = chunk_document(doc(sentence), counter=counter)
    assert len(chunks) >= 2
    assert all(counter.count(c.text) + SPECIAL_TOKENS <= MAX for c in chunks)
    assert all(c.text.endswith((";", ".")) for c in chunks)  # cut after a clause mark
    assert " ".join(c.text for c in chunks) == sentence


def test_words_and_unbroken_strings_over_the_budget_are_still_bounded(
    counter: TokenCounter,
) -> None:
    words = " ".join(f"word{i}" for i in range(400)) + "."
    blob = "-".join(["x"] * 700)  # one 'word' of 1,399 tokens
    for text in (words, blob):
        chunks = chunk_document(doc(text), counter=counter)
        assert len(chunks) >= 2
        assert all(counter.count(c.text) + SPECIAL_TOKENS <= MAX for c in chunks)
        assert re.sub(r"\s", "", "".join(c.text for c in chunks)) == re.sub(r"\s", "", text)


def test_max_tokens_setting_is_the_bound(counter: TokenCounter) -> None:
    settings = ChunkingSettings(max_tokens=48, overlap_tokens=8)
    chunks = chunk_document(doc(_prose(40)), settings, counter)
    assert all(counter.count(c.text) + SPECIAL_TOKENS <= 48 for c in chunks)
    assert max(counter.count(c.text) for c in chunks) > 30


def _timed_chunking(d: Document, counter: TokenCounting) -> float:
    start = time.perf_counter()
    chunks = chunk_document(d, ChunkingSettings(), counter)
    assert chunks
    return time.perf_counter() - start


def test_chunking_time_is_linear() -> None:
    """4x the text must cost about 4x, not 16x, even as one unbroken paragraph."""
    small = doc(_prose(6_000))  # ~0.35 MB, one paragraph
    large = doc(_prose(24_000))  # ~1.4 MB
    # Best of two for both sizes: a busy machine can preempt either run.
    small_s = min(_timed_chunking(small, WordCounter()) for _ in range(2))
    large_s = min(_timed_chunking(large, WordCounter()) for _ in range(2))
    assert large_s < 8 * small_s + 0.5, (small_s, large_s)


@pytest.mark.parametrize(
    "text",
    [
        "." * 40_000 + " x",  # a run of terminal punctuation
        "-" * 40_000 + "x",  # a 'table rule' that is not one
        "#" + " " * 40_000,  # a 'heading' of spaces
        "Word" + " " * 40_000 + "x",
        "```" + "a" * 40_000 + "`",
        "|" + " " * 40_000 + "x",
    ],
    ids=["dots", "dashes", "hash-spaces", "spaces", "backtick-line", "pipe-spaces"],
)
def test_pathological_lines_do_not_backtrack(text: str) -> None:
    start = time.perf_counter()
    chunk_document(doc(text), ChunkingSettings(), WordCounter())
    split_sentences(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_twenty_megabytes_chunk_in_linear_time(counter: TokenCounter) -> None:
    """The real tokenizer on 20 MB: each sentence is tokenised once, in one batch."""
    text = "\n\n".join([_prose(40)] * 9_000)
    assert len(text) > 20_000_000
    elapsed = _timed_chunking(doc(text), counter)
    assert elapsed < 180, f"{elapsed:.0f} s"


# -- recommendation blocks ------------------------------------------------------------------------

REC_DOC = """# Test document

## Recommendations for adults

Some context first.

```recommendation
id: "1"
kind: recommendation
statement: >-
  The society recommends that clinicians use gabapentin enacarbil over no gabapentin
  enacarbil in adults with RLS.
direction: for
strength: strong
certainty: moderate
population: adults with RLS
intervention: gabapentin enacarbil
remarks: Alpha-2-delta ligands carry little risk of augmentation.
grade_confidence: secondary
```

Text after the block.
"""


def test_recommendation_block_is_exactly_one_chunk(counter: TokenCounter) -> None:
    chunks = chunk_document(doc(REC_DOC, strength_scale="GRADE"), counter=counter)
    recs = [c for c in chunks if c.recommendation]
    assert len(recs) == 1
    rec_chunk = recs[0]
    rec = rec_chunk.recommendation
    assert rec is not None
    assert rec.id == "1" and rec.kind is RecommendationKind.recommendation
    assert rec.direction is Direction.for_ and rec.strength == "strong"
    assert rec.certainty == "moderate" and rec.intervention == "gabapentin enacarbil"
    assert rec.grade_confidence is GradeConfidence.secondary
    assert rec.section == "Recommendations for adults"  # defaulted from the heading path
    assert rec_chunk.section_path == ["Recommendations for adults"]
    assert rec_chunk.text == (
        "The society recommends that clinicians use gabapentin enacarbil over no gabapentin "
        "enacarbil in adults with RLS.\n"
        "Strength: strong; certainty of evidence: moderate; population: adults with RLS.\n"
        "Alpha-2-delta ligands carry little risk of augmentation."
    )
    texts = [c.text for c in chunks]
    assert texts.index(rec_chunk.text) == 1
    assert texts[0] == "Some context first." and texts[2] == "Text after the block."
    assert [c.position for c in chunks] == [0, 1, 2]


def test_long_recommendation_stays_one_chunk_and_keeps_its_section(counter: TokenCounter) -> None:
    statement = "Clinicians should consider iron. " * 80
    text = (
        "## Iron\n\n```recommendation\n"
        f"statement: {statement.strip()}\n"
        "direction: for\nstrength: conditional\npopulation: adults\nintervention: iron\n"
        "section: Section 4.2 of the source\n```\n"
    )
    chunks = chunk_document(doc(text), counter=counter)
    assert len(chunks) == 1
    assert counter.count(chunks[0].text) > MAX
    rec = chunks[0].recommendation
    assert rec is not None and rec.section == "Section 4.2 of the source"
    assert "certainty of evidence: not graded" in chunks[0].text


def _rec(body: str) -> str:
    return f"## Recs\n\n```recommendation\n{body}\n```\n"


VALID = (
    "statement: Use iron in adults with low ferritin.\ndirection: for\nstrength: strong\n"
    "certainty: low\npopulation: adults\nintervention: iron"
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("statement: [unclosed\ndirection: for", r"invalid YAML, line \d+"),
        ("- just\n- a list", "must be a YAML mapping"),
        (VALID.replace("direction: for", "direction: pro"), r"direction: 'pro' is not one of"),
        (VALID.replace("intervention: iron", ""), r"missing required field\(s\): intervention"),
        (VALID + "\nstrenght: strong", r"unknown field 'strenght' \(did you mean 'strength'\?\)"),
        (VALID + "\nkind: guidance", r"kind: 'guidance' is not one of"),
        (VALID + "\ngrade_confidence: sure", r"grade_confidence: 'sure'"),
        (VALID.replace("certainty: low", ""), "missing certainty"),
        (VALID + "\ndirection: against", "duplicate key 'direction'"),
    ],
)
def test_bad_recommendation_blocks_name_document_block_and_field(
    body: str, expected: str, counter: TokenCounter
) -> None:
    with pytest.raises(LoaderError) as info:
        chunk_document(doc(_rec(body), strength_scale="GRADE"), counter=counter)
    message = str(info.value)
    assert info.value.path == "test.md"
    assert "document 'test-doc': recommendation block 1 (body line 3" in message
    assert re.search(expected, message), message


def test_bad_block_error_quotes_its_statement(counter: TokenCounter) -> None:
    with pytest.raises(LoaderError, match=re.escape('"Use iron in adults with low ferritin."')):
        chunk_document(doc(_rec(VALID.replace("strength: strong", ""))), counter=counter)


def test_unclosed_recommendation_fence_is_an_error(counter: TokenCounter) -> None:
    with pytest.raises(LoaderError, match="fence is not closed"):
        chunk_document(doc("```recommendation\n" + VALID), counter=counter)


def test_certainty_optional_outside_grade_documents(counter: TokenCounter) -> None:
    chunks = chunk_document(doc(_rec(VALID.replace("certainty: low", ""))), counter=counter)
    assert chunks[0].recommendation and chunks[0].recommendation.certainty is None


# -- token counter ---------------------------------------------------------------------------------


def test_token_counter_counts_content_tokens_without_truncation(counter: TokenCounter) -> None:
    assert counter.count("hello world") == 2
    long_text = "ferritin " * 300
    assert counter.count(long_text) == 300 * counter.count("ferritin")  # no 128-token cap
    assert counter.count_many(["hello world", long_text]) == [2, counter.count(long_text)]
    assert default_token_counter() is default_token_counter()


def test_token_counter_needs_a_tokenizer_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        TokenCounter(tmp_path)


def test_a_list_stays_with_its_lead_in() -> None:
    """The chunk breaks before 'Interventions may include:', never between it and its items."""
    lead = "Interventions may include:"
    items = "\n".join(f"- item number {n} of the list" for n in range(1, 6))
    prose = " ".join(f"Sentence {n} fills the section with plain words." for n in range(1, 6))
    text = f"{prose}\n\n{lead}\n{items}"
    settings = ChunkingSettings(max_tokens=50, overlap_tokens=0)
    chunks = chunk_document(doc(text), settings, WordCounter())
    holding = [c for c in chunks if lead in c.text]
    assert len(holding) == 1
    assert all(f"item number {n} " in holding[0].text for n in range(1, 6))
    assert len(chunks) >= 2, "the budget forces a break: it comes before the lead-in"


def test_a_list_longer_than_the_budget_is_still_cut() -> None:
    items = "\n".join(f"- item number {n} of a long list" for n in range(1, 30))
    chunks = chunk_document(
        doc(f"Options include:\n{items}"),
        ChunkingSettings(max_tokens=40, overlap_tokens=0),
        WordCounter(),
    )
    assert len(chunks) > 1
    assert all(WordCounter().count(c.text) <= 40 - SPECIAL_TOKENS for c in chunks)
