"""Selection by relevance: units scored against the question, MMR, each source's order and one
subject per answer. Pure parts with hand-made units; the engine on a
small library of three pages with the real model and index."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import library_of

from assistant.engine import Assistant
from assistant.evidence import Evidence, _choose_units
from assistant.relevance import (
    UNIT_FEATURES,
    Quote,
    Scored,
    Unit,
    Weights,
    close_documents,
    default_weights,
    in_source_order,
    rank_documents,
    select_units,
)
from assistant.render import to_markdown, to_text
from ingest.settings import AnswerSettings
from ingest.types import Chunk, DocType, Document, Passage


def _unit(
    doc: str, position: int, index: int, text: str, score: float, vector, title: str = ""
) -> Unit:
    document = Document(id=doc, title=title or doc, text="x")
    chunk = Chunk(document=document.ref(), position=position, text=text)
    passage = Passage(chunk=chunk, rank=1, score=1.0)
    unit = Unit(quote=Quote(text, chunk), passage=passage, index=index, count=3, score=score)
    unit.vector = np.asarray(vector, dtype=np.float32) / np.linalg.norm(vector)
    return unit


def _scored(units: list[Unit]) -> Scored:
    best: dict[str, float] = {}
    for u in units:
        best[u.document_id] = max(best.get(u.document_id, 0.0), u.score)
    return Scored(
        units=units,
        query=np.zeros(2, dtype=np.float32),
        documents=sorted(best.items(), key=lambda kv: -kv[1]),
    )


def test_mmr_says_nothing_twice_and_each_source_keeps_its_order():
    a1 = _unit("a", 0, 0, "Uric acid crystals form in the joint.", 0.9, [1, 0])
    a2 = _unit("a", 0, 1, "Crystals of uric acid form in the joint space.", 0.85, [1, 0.05])
    a3 = _unit("a", 1, 0, "Diet and kidney function change uric acid levels.", 0.6, [0.6, 0.8])
    # A list said again inside a longer unit is not said twice.
    a4 = _unit("a", 2, 0, "Uric acid crystals form in the joint. Then it swells.", 0.5, [0.9, 0.4])
    scored = _scored([a1, a2, a3, a4])
    # a2 says what a1 says (nearly the same vector): MMR takes the less relevant a3 first.
    assert select_units(scored, k=2, lam=0.5) == [a1, a3]
    # a4 contains a1's text: never taken beside it, however many are asked for.
    assert a4 not in select_units(scored, k=4, lam=0.5)
    ordered = in_source_order([a3, a1], ["a"])
    assert ordered == [a1, a3]  # reading order, not score order


def test_mmr_weighs_relevance_relative_to_the_best_unit_when_every_unit_is_unlikely():
    """Where no unit is likely to hold the answer (probabilities of a few hundredths), the unit
    three times as relevant as another still wins over it, though it is more like the summary:
    relevance is weighed on the redundancy's scale, not in raw probability."""
    summary = _unit("a", 0, 0, "Oral iron is poorly absorbed above a ferritin of 75.", 0.10, [1, 0])
    threshold = _unit("a", 1, 0, "Give iron when ferritin is 75 or lower.", 0.09, [0.8, 0.6])
    aside = _unit("a", 2, 0, "Seven specialists wrote the guideline.", 0.03, [0, 1])
    scored = _scored([summary, threshold, aside])
    assert select_units(scored, k=1, exclude=[summary]) == [threshold]


def test_only_documents_close_to_the_best_are_the_answers_subject():
    units = [
        _unit("best", 0, 0, "An answer sentence here.", 0.9, [1, 0]),
        _unit("close", 0, 0, "A near answer sentence.", 0.85, [1, 0]),
        _unit("far", 0, 0, "Something on another subject.", 0.4, [0, 1]),
    ]
    # The margin is on the logit scale: 0.9 and 0.85 are 0.46 apart.
    assert close_documents(_scored(units), margin=0.5) == ["best", "close"]
    assert close_documents(_scored(units), margin=0.3) == ["best"]
    # A question no unit answers well: 0.002 is far from 0.04, though both are near zero.
    faint = [
        _unit("best", 0, 0, "An answer sentence here.", 0.04, [1, 0]),
        _unit("close", 0, 0, "A near answer sentence.", 0.03, [1, 0]),
        _unit("far", 0, 0, "Something on another subject.", 0.002, [0, 1]),
    ]
    assert close_documents(_scored(faint), margin=0.5) == ["best", "close"]


def test_the_summary_comes_from_the_most_relevant_document_when_its_best_unit_leans_back():
    # The best unit of the answer's document cannot open an answer ("These include ...");
    # a standalone sentence of that document opens it, not a better-scored one of another.
    leans_back = _unit("flu", 0, 1, "These include fever, cough and aching muscles.", 0.9, [1, 0])
    opening = _unit("flu", 0, 0, "Influenza is a viral infection of the airways.", 0.5, [0.8, 0.6])
    elsewhere = _unit("cold", 0, 0, "Colds spread most easily in winter.", 0.8, [0.6, 0.8])
    scored = _scored([leans_back, opening, elsewhere])
    evidence = Evidence(passages=[], best_similarity=1.0, documents=["flu", "cold"])
    _choose_units(evidence, scored, AnswerSettings())
    assert evidence.summary is not None
    assert evidence.summary.text == opening.quote.text


def test_a_document_retrieval_ranks_high_and_often_leads_though_another_has_the_best_unit():
    lone = _unit("lone", 0, 0, "One sentence of an article on another study.", 0.6, [1, 0])
    many = _unit("many", 0, 0, "The article the question was written from.", 0.5, [0, 1])
    scored = _scored([lone, many])

    def retrieved(doc: str, rank: int, score: float) -> Passage:
        chunk = Chunk(document=Document(id=doc, title=doc, text="x").ref(), position=rank, text="t")
        return Passage(chunk=chunk, rank=rank, score=score)

    passages = [retrieved("many", 1, 0.9), retrieved("many", 2, 0.88), retrieved("lone", 8, 0.6)]
    ranked = rank_documents(scored, passages, default_weights())
    assert [d for d, _ in ranked.documents] == ["many", "lone"]
    assert ranked.units == scored.units
    # Without the document weights the best unit alone decides.
    plain = Weights(default_weights().unit, default_weights().unit_bias, 0.5, (0.0, 0.0))
    assert [d for d, _ in rank_documents(scored, passages, plain).documents] == ["lone", "many"]
    # The leading document gives the summary.
    evidence = Evidence(passages=[], best_similarity=1.0, documents=["many", "lone"])
    _choose_units(evidence, ranked, AnswerSettings())
    assert evidence.summary is not None and evidence.summary.text == many.quote.text


def test_the_fitted_weights_are_data_and_complete():
    weights = default_weights()
    assert len(weights.unit) == len(UNIT_FEATURES)
    # A document whose passages retrieval ranks closer to the best, and more of them, is likelier.
    assert all(w > 0 for w in weights.document)
    assert 0 < weights.document_margin < 1
    cosine = UNIT_FEATURES.index("cosine")
    assert weights.unit[cosine] > 0  # closer to the question is more relevant
    assert isinstance(weights, Weights)


# -- the engine on a small library ------------------------------------------------------------

PAGES = {
    "gout.md": """# Gout

## Causes

Gout is caused by too much uric acid in the blood. Uric acid forms sharp crystals in a joint,
most often the big toe. Eating a lot of red meat and drinking beer raise uric acid levels.

## Treatment

Colchicine and anti-inflammatory drugs ease an attack. Allopurinol lowers uric acid over months.
""",
    "asthma.md": """# Asthma

## Treatment

Inhaled corticosteroids taken every day are the main long-term treatment of asthma. A rescue
inhaler with a short-acting bronchodilator relieves sudden symptoms within minutes.

## Symptoms

People with asthma wheeze, cough at night and feel short of breath during exercise.
""",
    "migraine.md": """# Migraine

## Symptoms

A migraine is a throbbing headache on one side of the head, often with nausea. Bright light and
loud sound make the pain worse. Some people see flashing lights, an aura, before the pain.

## Prevention

Regular sleep and meals prevent some attacks. Daily preventive drugs help when attacks are
frequent.
""",
    "iron.md": """# Iron and restless legs

## Iron

Iron treatment of restless legs was reviewed in 2018. The task force searched MEDLINE for iron
and ferritin studies. Adults with restless legs should receive iron when serum ferritin is
75 ng/mL or lower. Oral iron is an option for many patients with low iron.
""",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory, embedder) -> Assistant:
    return library_of(PAGES, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "title", "words"),
    [
        ("What causes gout?", "Gout", "uric acid"),
        ("How is asthma treated long term?", "Asthma", "corticosteroids"),
        ("what makes a migrane worse", "Migraine", "light"),
        # The quantity asked for, not the sentence on how the evidence was searched.
        ("What ferritin level should prompt iron therapy?", "Iron and restless legs", "75 ng/ml"),
    ],
)
def test_the_summary_is_the_unit_that_answers_and_one_subject_is_cited(
    small, question, title, words
):
    answer = small.ask(question)
    assert not answer.abstained, answer.abstention_reason
    summary = next(s for s in answer.sections if s.key == "summary").sentences[0]
    assert words in summary.text.lower()
    assert {r.document.title for r in answer.references} == {title}
    first = answer.first_screen_text()
    assert words in first.lower()
    assert len(first.split()) <= 120


@pytest.mark.integration
def test_a_question_the_library_does_not_cover_is_refused_with_nearest_topics(small):
    answer = small.ask("What causes kidney stones?")
    assert answer.abstained
    assert answer.references == []
    assert answer.nearest_topics


@pytest.mark.integration
def test_brief_prints_only_the_first_screen(small):
    answer = small.ask("What causes gout?")
    folded = answer.folded_sections()
    full, brief = to_text(answer), to_text(answer, brief=True)
    assert "MORE FROM THE SOURCES" not in brief
    assert answer.first_screen()[0].sentences[0].text in brief
    if folded:
        assert "MORE FROM THE SOURCES" in full
        assert folded[0].sentences[0].text in full
        assert folded[0].sentences[0].text not in brief
        assert "## More from the sources" in to_markdown(answer)


def test_a_caption_is_never_quoted_as_content() -> None:
    from assistant.evidence import is_heading_like

    assert is_heading_like("Algorithm 1 - Diagnostic algorithm for the invented syndrome.")
    assert is_heading_like("Figure 2. Assessment pathway for a person with the condition.")
    assert not is_heading_like("Tables of doses are given in the appendix for each age group.")
    # A table's or figure's list of abbreviations, however it pairs them.
    assert is_heading_like("Abbreviations: ART, antiretroviral therapy; TB, tuberculosis.")
    assert is_heading_like("Stage 6 (severe dementia) Abbreviations: AD, Alzheimer's disease.")
    assert is_heading_like("Abbreviations: mg = milligram; MME = morphine milligram equivalent.")
    assert not is_heading_like("Abbreviations the patient does not know should be explained.")


def test_nearest_topics_name_a_topic_not_a_section_every_abstract_has():
    from collections import Counter

    from assistant.evidence import nearest_topics
    from assistant.profile import CorpusProfile

    title = "Does a colonoscopy after acute diverticulitis affect its management in adults?"
    abstract = Document(id="a", title=title, year=2012, text="x")
    page = Document(id="p", title="Diverticular Disease", text="x")
    passages = [
        Passage(
            chunk=Chunk(document=page.ref(), position=0, text="t", section_path=["Symptoms"]),
            rank=1,
            score=1.0,
        ),
        Passage(
            chunk=Chunk(document=abstract.ref(), position=0, text="t", section_path=["METHODS"]),
            rank=2,
            score=0.9,
        ),
    ]
    profile = CorpusProfile(
        heading_words=Counter({"method": 900, "symptom": 3}),
        about={str(n): frozenset() for n in range(1000)},
    )
    assert nearest_topics(passages, profile) == [
        "Symptoms (Diverticular Disease)",
        "Does a colonoscopy after acute diverticulitis affect its…, 2012",
    ]
    # Without the index's headings to compare with, the section is kept.
    assert nearest_topics(passages)[1].startswith("METHODS (Does a colonoscopy")
    # A contents line's page number run into its heading is not part of the topic's name.
    glued = Chunk(document=page.ref(), position=1, text="t", section_path=["21Patient Evaluation"])
    topics = nearest_topics([Passage(chunk=glued, rank=1, score=1.0)])
    assert topics == ["Patient Evaluation (Diverticular Disease)"]


@pytest.mark.parametrize(
    ("broad", "narrow", "question"),
    [
        ("Migraine", "Familial hemiplegic migraine type 2", "migraine tx?"),
        ("Psoriasis", "Guttate psoriasis", "psoriasis tx options"),
        ("Hantavirus", "Hantavirus pulmonary syndrome", "what are the symptoms for hantavirus?"),
    ],
)
def test_a_page_on_a_narrower_subject_is_set_aside_unless_asked_about(broad, narrow, question):
    from assistant.evidence import without_narrower

    units = [
        _unit("narrow", 0, 0, "Treatment is as for other forms.", 0.6, [1, 0], title=narrow),
        _unit("broad", 0, 0, "Treatment aims to stop attacks.", 0.4, [0, 1], title=broad),
        _unit("far", 0, 0, "Something else.", 0.1, [1, 1], title=f"{broad} in pregnancy"),
    ]
    kept = without_narrower(_scored(units), question)
    assert [d for d, _ in kept.documents] == ["broad", "far"]
    assert {u.document_id for u in kept.units} == {"broad", "far"}
    # Asked with the narrower subject's own words, it stays the best.
    asked = without_narrower(_scored(units), f"{narrow} treatment")
    assert asked.documents[0][0] == "narrow"


def test_a_guideline_is_not_a_narrower_page_of_a_patient_page_on_its_subject():
    from assistant.evidence import without_narrower

    guideline = Document(
        id="g", title="Report on high blood pressure", doc_type=DocType.guideline, text="x"
    )
    page = Document(id="p", title="High blood pressure", doc_type=DocType.patient_info, text="x")
    units = [
        Unit(
            quote=Quote(text, chunk),
            passage=Passage(chunk=chunk, rank=1, score=1.0),
            index=0,
            count=1,
            score=score,
        )
        for text, chunk, score in [
            ("Prehypertension is ...", Chunk(document=guideline.ref(), position=0, text="t"), 0.5),
            ("Blood pressure is ...", Chunk(document=page.ref(), position=0, text="t"), 0.4),
        ]
    ]
    for unit in units:
        unit.vector = np.ones(2, dtype=np.float32)
    kept = without_narrower(_scored(units), "What is prehypertension?")
    assert [d for d, _ in kept.documents] == ["g", "p"]


def test_a_title_that_adds_scope_words_names_no_narrower_subject():
    from assistant.evidence import without_narrower

    units = [
        _unit(
            "review", 0, 0, "Iron deficiency ...", 0.5, [1, 0], title="RLS: diagnosis and treatment"
        ),
        _unit("primer", 0, 0, "Dopamine ...", 0.4, [0, 1], title="RLS"),
    ]
    kept = without_narrower(_scored(units), "What causes RLS?")
    assert [d for d, _ in kept.documents] == ["review", "primer"]


@pytest.mark.parametrize(
    ("statement", "population", "names"),
    [
        ("we suggest duloxetine.", "patients with chronic low back pain", True),
        ("we suggest spinal manipulation.", "patients with chronic low back pain", False),
        ("offer duloxetine for neuropathic pain.", "adults with diabetes", False),
    ],
)
def test_a_recommendation_names_the_whole_subject_only_in_its_own_words(
    statement, population, names
):
    from assistant.evidence import _names_every
    from ingest.types import Direction, Recommendation

    rec = Recommendation(
        statement=f"For {population}, {statement}",
        direction=Direction.for_,
        strength="Weak for",
        population=population,
        intervention="Pharmacotherapy",
    )
    guideline = Document(id="g", title="A guideline", doc_type=DocType.guideline, text="x")
    chunk = Chunk(document=guideline.ref(), position=0, text=rec.statement, recommendation=rec)
    passage = Passage(chunk=chunk, rank=1, score=1.0)
    subject = [["duloxetine", "chronic", "low", "back", "pain"]]
    assert _names_every(passage, subject) is names


def _rec(statement: str, population: str, certainty: str) -> str:
    return f"""```recommendation
statement: >-
  {statement}
direction: for
strength: Strong recommendation
certainty: {certainty}
population: {population}
intervention: testing of samples
```
"""


LUNG_GUIDELINE = {
    "lung-fluke.md": f"""---
id: lung-fluke-testing
title: "Testing for lung fluke infection: a guideline"
organization: Harbour Lung Society
year: 2024
url: https://example.org/lung-fluke-testing
doc_type: guideline
status: current
---

# Testing for lung fluke infection

## Background

Children with lung fluke infection often cannot cough up sputum, and the infection is hard to
confirm in a laboratory when they are young. Which samples to test differs with age and with
whether a child also has HIV.

## Recommendations

{
        _rec(
            "For children with HIV who have a cough lasting weeks, test sputum, stool and urine "
            "samples together.",
            "children with HIV",
            "low certainty",
        )
    }
{
        _rec(
            "For children without HIV who have a cough lasting weeks, test sputum and stool "
            "samples together.",
            "children without HIV",
            "low certainty",
        )
    }
{
        _rec(
            "For adults who have a cough lasting weeks, test a sputum sample with a rapid "
            "molecular test.",
            "adults",
            "high certainty",
        )
    }
""",
}


@pytest.mark.integration
def test_the_recommendation_retrieved_for_exactly_what_was_asked_leads_the_answer(
    tmp_path_factory, embedder
):
    assistant = library_of(LUNG_GUIDELINE, tmp_path_factory, embedder, lexicon=False)
    answer = assistant.ask("Which samples should be tested for lung fluke in children without HIV?")
    assert not answer.abstained, answer.abstention_reason
    summary = next(s for s in answer.sections if s.key == "summary").sentences[0].text
    assert "children without HIV" in summary and "stool" in summary


@pytest.mark.integration
def test_a_leading_recommendation_leaves_the_first_screen_its_length(tmp_path_factory, embedder):
    assistant = library_of(LUNG_GUIDELINE, tmp_path_factory, embedder, lexicon=False)
    assistant.sources.options.first_screen_words = 40
    answer = assistant.ask("Which samples should be tested for lung fluke in children without HIV?")
    screen = [s for section in answer.first_screen() for s in section.sentences]
    words = sum(len(" ".join([s.text, *s.items]).split()) for s in screen)
    assert "children without HIV" in screen[0].text
    assert words <= 40, [s.text for s in screen]
    # What the recommendation left no room for is under More from the sources, not lost.
    folded = " ".join(s.text for section in answer.folded_sections() for s in section.sentences)
    assert "cannot cough up sputum" in folded
