"""The engine on a corpus it was not written for: real MedQuAD pages (NIH), a real index and the
real model. Nothing here is about the bundled corpus; the test data is read from ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS_DIR

from assistant.engine import Assistant
from assistant.evidence import is_heading_like, quote_units, stands_alone
from assistant.profile import defined_abbreviations
from ingest.loaders.medquad import medquad_id
from ingest.pipeline import ingest_paths
from ingest.settings import Settings
from ingest.types import Chunk, DocumentRef

MEDQUAD = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/medquad/medquad_answered_collections_1-9.jsonl"
)
# Pages of a few common conditions (NIHSeniorHealth, MedlinePlus, NIDDK) and a few others.
FOCUSES = ("Gout", "Psoriasis", "Kidney Stones in Adults", "Osteoporosis", "Shingles")
LEFT_OUT = "What causes Hashimoto's thyroiditis?"


def _chunk(text: str, heading: str = "What causes X?") -> Chunk:
    doc = DocumentRef(id="d", title="X")
    return Chunk(document=doc, position=0, text=text, section_path=[heading])


# -- units of quotation (pure) ---------------------------------------------------------------


def test_a_list_stays_with_its_lead_in_and_headings_are_not_content():
    text = (
        "Key Points\n\nPeople at higher risk are those with\n- a family history\n- obesity\n"
        "- a diet high in salt\n\nWhat are the symptoms?\n\nMost stones pass on their own."
    )
    units = quote_units([_chunk(text)])
    assert [u.text for u in units] == [
        "People at higher risk are those with",
        "Most stones pass on their own.",
    ]
    assert units[0].items == ("a family history", "obesity", "a diet high in salt")


def test_table_cells_glossaries_and_the_running_title_are_not_content():
    doc = DocumentRef(id="g", title="Evaluation of suspected memory disorders: executive summary")
    text = (
        "- Stage 4 (mild dementia)\n- Stage 5 (moderate dementia)\n"
        "- Abbreviations: AD, Alzheimer disease; CT, computed tomography.\n\n"
        "Suspected memory disorders: executive summary.\n\n"
        "Structural brain imaging should be obtained in almost all patients (MRI or CT)."
    )
    chunk = Chunk(document=doc, position=0, text=text, section_path=["Tier 1"])
    assert [u.text for u in quote_units([chunk])] == [
        "Structural brain imaging should be obtained in almost all patients (MRI or CT)."
    ]


def test_a_lead_in_whose_list_is_missing_is_left_out_and_overlaps_are_said_once():
    first = _chunk("Stones form when urine is concentrated. Treatments include:")
    second = _chunk("Stones form when urine is concentrated. Drinking water helps prevent them.")
    units = quote_units([first, second])
    assert [u.text for u in units] == [
        "Stones form when urine is concentrated.",
        "Drinking water helps prevent them.",
    ]


@pytest.mark.parametrize(
    "lead_in",
    [
        "Common symptoms include",
        "Risk factors may include the following.",
        "Treatment options for adults, such as",
        "People at higher risk are those with",
    ],
)
def test_a_sentence_that_announces_a_missing_list_or_stops_mid_clause_is_left_out(lead_in):
    units = quote_units([_chunk(f"Stones form when urine is concentrated. {lead_in}")])
    assert [u.text for u in units] == ["Stones form when urine is concentrated."]


def test_a_sentence_ending_on_a_verb_with_its_full_stop_is_kept():
    units = quote_units([_chunk("Gout pain can be severe. Ask how severe it is.")])
    assert [u.text for u in units] == ["Gout pain can be severe.", "Ask how severe it is."]


@pytest.mark.parametrize(
    ("text", "alone"),
    [
        ("Gout is a form of arthritis caused by uric acid crystals.", True),
        ("Common symptoms of gout include:\n- joint pain\n- redness", True),
        ("Symptoms include\n- joint pain\n- redness", False),  # a heading, not a statement
        ("These are called late effects.", False),  # leans on what came before
        ("The following tips might make it easier to clean your teeth.", False),
        ("The following are signs of gout:\n- joint pain\n- redness", False),
        ("When symptoms are present, they may include:\n- pain\n- swelling", False),
        ("Most stones pass on their own, though some", False),  # cut at the chunk's edge
    ],
)
def test_only_a_unit_that_stands_alone_opens_an_answer(text, alone):
    (unit,) = quote_units([_chunk(text)])
    assert stands_alone(unit) is alone


@pytest.mark.parametrize(
    ("text", "heading"),
    [
        ("What causes gout?", True),
        ("Key Points", True),
        ("Updated information and services can be found at", True),
        ("Back to top", True),
        ("Gout is a form of arthritis.", False),
    ],
)
def test_headings_navigation_and_boilerplate_are_told_from_content(text, heading):
    assert is_heading_like(text) is heading


def test_abbreviations_are_read_as_the_documents_define_them():
    text = (
        "Rheumatoid arthritis (RA) is an autoimmune disease. The World Health Organization "
        "(WHO) and systemic lupus erythematosus (SLE) are named here; a bracket (see below)."
    )
    assert defined_abbreviations(text) == [
        ("RA", "Rheumatoid arthritis"),
        ("WHO", "World Health Organization"),
        ("SLE", "systemic lupus erythematosus"),
    ]


def test_an_abbreviation_means_what_the_documents_that_use_it_define():
    from collections import Counter

    from assistant.profile import _index_meanings

    defined = {
        ("TB", "total bilirubin"): {"abstract"},
        ("RA", "rheumatoid arthritis"): {"review", "page"},
        ("RA", "right atrium"): {"echo"},
    }
    uses = Counter(
        {("TB", "abstract"): 3, ("TB", "guideline"): 900, ("RA", "review"): 12, ("RA", "page"): 9}
        | {("RA", "echo"): 4, ("RA", "other"): 20}
    )
    # One abstract's "total bilirubin (TB)" is not what 900 uses elsewhere mean; of two
    # meanings, the one its defining documents use most.
    assert _index_meanings(defined, uses) == {"RA": "rheumatoid arthritis"}


# -- the engine on real pages ----------------------------------------------------------------


@pytest.fixture(scope="module")
def general(tmp_path_factory, embedder) -> Assistant:
    if not MEDQUAD.exists():
        pytest.skip(f"MedQuAD is not at {MEDQUAD} (../shared/datasets/medquad/)")
    wanted: set[str] = set()
    lines: list[str] = []
    with MEDQUAD.open() as fh:
        records = [json.loads(line) for line in fh]
    for r in records:
        if r.get("focus") in FOCUSES and r["collection"].startswith(("7_", "4_", "5_")):
            wanted.add(medquad_id(r["collection"], r["doc_id"]))
    distractors = 0
    for r in records:
        doc_id = medquad_id(r["collection"], r["doc_id"]) if r.get("doc_id") else ""
        if doc_id in wanted:
            lines.append(json.dumps(r))
        elif r["collection"].startswith("6_") and distractors < 60 and r.get("answer"):
            lines.append(json.dumps(r))
            distractors += 1
    path = tmp_path_factory.mktemp("medquad") / "pages.jsonl"
    path.write_text("\n".join(lines) + "\n")
    settings = Settings()
    settings.store.index_dir = tmp_path_factory.mktemp("general-index")
    settings.lexicon_dir = CORPUS_DIR / "lexicon"  # another corpus's lexicon: must not matter
    ingest_paths([path], settings, embedder=embedder)
    return Assistant(settings, embedder=embedder)


def _cited_titles(answer) -> set[str]:
    return {r.document.title for r in answer.references}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "title", "words"),
    [
        ("What causes Gout?", "Gout", {"uric"}),
        ("What are the symptoms of Psoriasis?", "Psoriasis", {"skin"}),
        ("How to prevent Kidney Stones?", "Kidney Stones in Adults", {"water"}),
        ("Osteoporosis: first-line management?", "Osteoporosis", {"bone"}),
    ],
)
def test_covered_questions_are_answered_from_the_page_on_that_aspect(
    general, question, title, words
):
    answer = general.ask(question)
    assert not answer.abstained, answer.abstention_reason
    assert title in _cited_titles(answer)
    summary = answer.sections[[s.key for s in answer.sections].index("summary")].sentences[0]
    assert not summary.text.rstrip().endswith(("?", ":"))  # never a heading or a cut list
    text = " ".join(s.claim for s in answer.all_sentences()).lower()
    assert all(w in text for w in words)
    assert all(s.verified for s in answer.all_sentences() if s.citations)


@pytest.mark.integration
@pytest.mark.parametrize(
    "question",
    [
        LEFT_OUT,
        "What are the treatments for rheumatoid arthritis?",
        # Another page on diagnosis names it in passing: not a page about it.
        "How is measles diagnosed?",
    ],
)
def test_a_condition_the_index_does_not_cover_is_refused(general, question):
    answer = general.ask(question)
    assert answer.abstained, [s.text for s in answer.all_sentences()][:3]
    assert answer.references == []


@pytest.mark.integration
def test_ordinary_words_of_this_corpus_are_not_called_unknown(general):
    answer = general.ask("What causes Kidney Stones?")
    assert not answer.abstained
    notes = " ".join(s.text for s in answer.sections[0].sentences) if answer.sections else ""
    assert "Stones" not in (answer.normalization.unrecognized if answer.normalization else [])
    assert "not a term" not in notes


@pytest.mark.integration
def test_a_misspelt_condition_is_read_as_the_title_it_means(general):
    answer = general.ask("What causes psoriasys?")
    assert not answer.abstained, answer.abstention_reason
    assert "Psoriasis" in _cited_titles(answer)
    notes = [s.text for s in answer.sections[0].sentences]
    assert any("'psoriasys' was read as 'psoriasis'" in n for n in notes)


# -- published guideline wording (pure) -------------------------------------------------------


def test_a_certainty_that_names_its_evidence_is_printed_once():
    from assistant.compose import grading_text
    from ingest.types import Direction, Recommendation, RecommendationKind

    def rec(strength: str, certainty: str) -> Recommendation:
        return Recommendation(
            statement="Screening is recommended.",
            direction=Direction.for_,
            strength=strength,
            certainty=certainty,
            population="adults",
            intervention="screening",
        )

    assert grading_text(rec("Strong recommendation", "moderate-certainty evidence")) == (
        "Strong recommendation; moderate-certainty evidence"
    )
    assert grading_text(rec("recommendation category: A", "evidence type: 3")) == (
        "recommendation category: A; evidence type: 3"
    )
    assert grading_text(rec("conditional", "low")) == (
        "conditional recommendation; low certainty of evidence"
    )
    legend = "Recommended for adults with an additional risk factor"  # a legend's category
    assert grading_text(rec(legend, "")) == legend
    # a guideline that grades only its evidence: the category, not "not graded recommendation"
    assert grading_text(rec("not graded", "Evidence Category A")) == "Evidence Category A"
    best = rec("Best practice statement", "not graded").model_copy(
        update={"kind": RecommendationKind.good_practice}
    )
    assert grading_text(best) == "Best practice statement"  # the source's word, not "good"
    good = best.model_copy(update={"strength": "Good practice statement"})
    assert grading_text(good) == "good practice statement"


def test_grade_words_are_checked_in_the_sources_own_layout():
    from assistant.verify import grading_supported

    passage = "Screening is recommended. Strength: Strong recommendation; certainty: Moderate"
    claim = "Screening is recommended (Strong recommendation; moderate-certainty evidence)."
    assert grading_supported(claim, passage)
    assert not grading_supported(claim.replace("moderate", "high"), passage)


def test_a_population_of_adults_and_adolescents_is_no_special_group():
    from assistant.lexicon import Lexicon
    from assistant.profile import CorpusProfile
    from ingest.types import Direction, DocType, Document, Recommendation

    doc = Document(id="g", title="Guideline on X", organization="Org", doc_type=DocType.guideline)

    def block(n: int, population: str, section: str) -> Chunk:
        rec = Recommendation(
            statement=f"Statement {n}.",
            direction=Direction.for_,
            strength="strong",
            population=population,
            intervention=f"option {n}",
            section=section,
        )
        return Chunk(document=doc.ref(), position=n, text=rec.statement, recommendation=rec)

    blocks = [
        block(0, "adults living with HIV", "Adults"),
        block(1, "adults and adolescents living with HIV", "Adults and adolescents"),
        block(2, "children living with HIV", "Children"),
        block(3, "adults living with HIV and TB", "Adults"),
    ]
    profile = CorpusProfile.build(Lexicon.load(CORPUS_DIR / "lexicon"), {"g": doc.ref()}, blocks)
    assert profile.default_groups == {"adults"}
    assert profile.record_groups("adults and adolescents living with HIV") == set()
    assert profile.record_groups("children living with HIV") == {"children"}


def test_a_group_verification_left_empty_has_no_heading():
    from assistant.engine import _pruned
    from assistant.types import Section, Sentence, SentenceKind

    said = Sentence(text="Offer X.", kind=SentenceKind.recommendation)
    guidelines = Section(
        key="guidelines",
        title="From the Guidelines",
        subsections=[
            Section(key="recommended", title="Recommended", sentences=[said]),
            Section(key="good-practice", title="Good practice statements"),
        ],
    )
    assert [s.key for s in _pruned(guidelines).subsections] == ["recommended"]


def test_a_credit_line_naming_only_an_organization_is_not_quoted():
    text = (
        "Stretching the legs before bed can ease the urge to move them. "
        "NIH: National Institute of Neurological Disorders and Stroke. "
        "The Alpine Society recommends regular sleep hours for people with the condition."
    )
    assert [u.text for u in quote_units([_chunk(text)])] == [
        "Stretching the legs before bed can ease the urge to move them.",
        "The Alpine Society recommends regular sleep hours for people with the condition.",
    ]


def test_a_titles_initials_are_read_only_where_nothing_else_reads_the_abbreviation():
    from assistant.profile import CorpusProfile
    from ingest.types import DocType

    titles = {
        "chf": "Congenital Hepatic Fibrosis",
        "hf": "Heart Failure",
        "eee": "Eastern Equine Encephalitis",
        "study": "Mosquito control cuts equine encephalitis",  # a research finding, no topic
    }
    docs = {
        doc_id: DocumentRef(
            id=doc_id,
            title=title,
            doc_type=DocType.research if doc_id == "study" else DocType.patient_info,
        )
        for doc_id, title in titles.items()
    }
    profile = CorpusProfile.build(None, docs)
    assert profile.readings("EEE")[0] == (
        "eastern equine encephalitis",
        "the indexed title it abbreviates",
    )
    # The abbreviation list's reading, whose words the titles use, comes before a title's
    # initials; a research article's title lends none.
    assert profile.readings("CHF")[0][0] == "congestive heart failure"
    assert profile.readings("MCCEE") == []
