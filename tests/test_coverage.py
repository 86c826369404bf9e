"""Whether the sources cover a question (assistant.coverage): a source must name the question's
subject in its title or headings; and which guidelines' recommendations may answer it. Small
libraries, the real model and index."""

from __future__ import annotations

import pytest
from conftest import library_of

from assistant.conversation import Session
from assistant.engine import Assistant
from assistant.profile import CorpusProfile
from assistant.render import to_text
from ingest.types import DocumentRef

PAGES = {
    "cysts.md": """# Eyelid cysts

## Causes

A blocked oil gland at the rim of the eyelid swells into a small painless lump.

## Treatment

Warm compresses several times a day let most cysts drain within weeks.
""",
    "dry-eye.md": """# Dry eye

## Symptoms

The eyes sting, burn and feel gritty, and vision blurs after reading. The eyelids may be red.
""",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory, embedder) -> Assistant:
    return library_of(PAGES, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    "question",
    [
        "What are eyelid cysts?",
        # The words that say the kind of question are not the subject.
        "Aetiology of eyelid cysts?",
        "Workup for suspected dry eye?",
    ],
)
def test_a_page_that_names_the_subject_covers_it(library, question):
    answer = library.ask(question)
    assert not answer.abstained, answer.abstention_reason


@pytest.mark.integration
def test_a_question_naming_the_best_sources_whole_title_is_covered(library):
    # Its other words ("sting", "mornings") are in no title or heading: they ask something of the
    # subject, they are not another subject.
    answer = library.ask("why does dry eye sting worse in mornings")
    assert not answer.abstained, answer.abstention_reason
    assert answer.references[0].document.id.startswith("dry-eye")
    # A subtype of what the title names is not covered by the page on the whole.
    assert library.ask("why does dry eye type 2 sting worse in mornings").abstained


@pytest.mark.integration
def test_a_patient_groups_word_in_the_title_need_not_be_named(tmp_path_factory, embedder):
    pages = {
        "childhood-dry-eye.md": "# Childhood Dry Eye\n\n## Symptoms\n\nThe eyes sting and "
        "feel gritty, worse after a night's sleep, and children rub them often.\n"
    }
    assistant = library_of(pages, tmp_path_factory, embedder)  # the lexicon knows "childhood"
    answer = assistant.ask("why does dry eye sting worse in mornings for kids")
    assert not answer.abstained, answer.abstention_reason


_PAGE = (
    "---\nid: {id}\ntitle: {title}\norganization: An eye clinic\nurl: https://example.org/{id}\n"
    "year: 2024\nstatus: current\ndoc_type: patient-info\n---\n\n"
    "# {title}\n\n{body}\n"
)
# Patient pages: a page's title names its topic (a research article's states a finding).
JOINED = {
    "stye-chalazion.md": _PAGE.format(
        id="stye-chalazion",
        title="Stye and Chalazion",
        body="## Treatment\n\nWarm compresses held on the lid for ten minutes, four times a "
        "day, help the lump drain.",
    ),
    "angle-closure.md": _PAGE.format(
        id="angle-closure",
        title="Acute Angle Closure Glaucoma",
        body="## Symptoms\n\nSudden severe eye pain, a red eye, blurred vision with halos "
        "around lights, headache and vomiting.",
    ),
}


@pytest.fixture(scope="module")
def joined(tmp_path_factory, embedder) -> Assistant:
    return library_of(JOINED, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
def test_a_title_that_joins_two_subjects_covers_each(joined):
    # "Stye and Chalazion" is about a chalazion; the question's other words ask something of it.
    answer = joined.ask("chalazion lump home remedy compress")
    assert not answer.abstained, answer.abstention_reason
    assert answer.references[0].document.id.startswith("stye-chalazion")


@pytest.mark.integration
def test_an_abbreviation_of_an_indexed_title_is_read_as_that_title(joined):
    answer = joined.ask("AACG warning signs?")
    assert not answer.abstained, answer.abstention_reason
    assert "acute angle closure glaucoma" in answer.standalone_query.lower()
    # The answer says how the abbreviation was read, and from what.
    assert "the indexed title it abbreviates" in to_text(answer)


_ARTICLE = (
    "---\nid: {id}\ntitle: {title}\njournal: A journal\nyear: 2021\nstatus: current\n"
    "url: https://example.org/{id}\n"
    "doc_type: research\n---\n\n"
    "# {title}\n\n{body}\n"
)
# An article defines "TTP" one way; a patient page is titled by another meaning of it.
TWO_READINGS = {
    "transfer.md": _ARTICLE.format(
        id="vitamin-transport",
        title="Hepatic vitamin E transport in older adults",
        body="## Results\n\nThe liver loads vitamin E onto lipoproteins through the tocopherol "
        "transfer protein (TTP), whose expression fell with age.",
    ),
    "purpura.md": _PAGE.format(
        id="purpura",
        title="Thrombotic Thrombocytopenic Purpura",
        body="## Causes\n\nToo little activity of the ADAMTS13 enzyme lets small blood clots form "
        "throughout the body, which use up platelets.",
    ),
}


@pytest.fixture(scope="module")
def two_readings(tmp_path_factory, embedder) -> Assistant:
    return library_of(TWO_READINGS, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
def test_the_questions_other_words_choose_among_an_abbreviations_readings(two_readings):
    # "TTP" with ADAMTS13 is the purpura, though the only definition printed in the documents
    # is the article's transport protein.
    answer = two_readings.ask("ADAMTS13 and TTP")
    assert "thrombotic thrombocytopenic purpura" in answer.standalone_query.lower()
    assert not answer.abstained, answer.abstention_reason
    assert answer.references[0].document.id.startswith("purpura")
    # Asked alone, the abbreviation keeps the documents' own definition.
    alone = two_readings.ask("TTP?")
    assert "tocopherol transfer protein" in alone.standalone_query.lower()


@pytest.mark.integration
def test_a_page_on_one_member_does_not_cover_the_class(library):
    # "Eyelid disorders" asks about a class of conditions; the cyst page is about one of them.
    answer = library.ask("What are eyelid disorders?")
    assert answer.abstained
    # The refusal names the part of the subject that no source is about.
    assert "disorder" in (answer.abstention_reason or "").lower()
    assert answer.references == []


@pytest.mark.integration
def test_a_page_that_mentions_the_subject_in_its_body_does_not_cover_it(library):
    # The dry-eye page mentions red eyelids in passing; no page is about eyelid redness.
    answer = library.ask("What causes blepharitis?")
    assert answer.abstained
    assert answer.references == []


GUIDELINE = """---
id: kidney-guideline
title: "Blood pressure in chronic kidney disease: a practice guideline"
organization: A kidney society
year: 2024
doc_type: guideline
status: current
url: https://example.org/kidney
---

# Blood pressure in chronic kidney disease

## Recommendations

```recommendation
id: "1"
statement: >-
  The society recommends screening adults with chronic kidney disease who sleep poorly for high
  blood pressure at night, and treating it with an ACE inhibitor.
direction: for
strength: strong
certainty: moderate
population: adults with chronic kidney disease
intervention: ACE inhibitor
```
"""

SLEEP_PAGE = """# Insomnia

## Who is at risk

Older adults, women, shift workers and people under stress are more likely to have insomnia.
Poor sleep habits, such as irregular bedtimes, make it worse.
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, embedder) -> Assistant:
    return library_of(
        {"kidney.md": GUIDELINE, "insomnia.md": SLEEP_PAGE}, tmp_path_factory, embedder
    )


@pytest.mark.integration
def test_a_guideline_on_another_condition_does_not_answer_with_its_recommendations(mixed):
    # The question names a condition the lexicon knows; the guideline's recommendation is for
    # another one, however close its words ("sleep poorly").
    answer = mixed.ask("Who is at risk for insomnia and poor sleep?")
    assert not answer.abstained, answer.abstention_reason
    cited = {c.document_id for s in answer.all_sentences() for c in s.citations}
    assert cited and "kidney-guideline" not in cited


def _guidance(doc_id: str, organization: str, title: str, body: str) -> str:
    return f"""---
id: {doc_id}
title: "{title}"
organization: {organization}
year: 2023
doc_type: guideline
status: current
url: https://example.org/{doc_id}
---

{body}
"""


# Three bodies, each with guidance on one subject.
BODIES = {
    "cysts.md": _guidance(
        "nes-cysts",
        "Northern Eye Society (NES)",
        "Eyelid cysts: practice guidance",
        "# Eyelid cysts\n\n## Treatment\n\nWarm compresses several times a day let most eyelid "
        "cysts drain within weeks. A cyst that lasts months can be drained by a surgeon.\n",
    ),
    "dry-eye.md": _guidance(
        "cvb-dry-eye",
        "Coastal Vision Board (CVB)",
        "Dry eye: guidance for clinicians",
        "# Dry eye\n\n## Causes\n\nDry eye follows too few tears or tears that evaporate fast, as "
        "with long screen work, dry air and some blood pressure drugs.\n",
    ),
    "blepharitis.md": _guidance(
        "aoc-blepharitis",
        "Alpine Ophthalmology College",
        "Blepharitis: a guideline",
        "# Blepharitis\n\n## Treatment\n\nDaily lid hygiene with warm water and a cotton bud "
        "controls the inflamed lid margins of blepharitis.\n",
    ),
}


@pytest.fixture(scope="module")
def bodies(tmp_path_factory, embedder) -> Assistant:
    return library_of(BODIES, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    "question, body",
    [
        ("How are eyelid cysts treated according to the CVB?", "CVB"),
        (
            "Does the Alpine Ophthalmology College recommend warm compresses for eyelid cysts?",
            "Alpine",
        ),
        ("What causes dry eye according to NES guidance?", "NES"),
    ],
)
def test_a_question_asked_of_one_body_is_refused_when_its_documents_do_not_cover_it(
    bodies, question, body
):
    answer = bodies.ask(question)
    assert answer.abstained
    assert body in (answer.abstention_reason or "")


@pytest.mark.integration
@pytest.mark.parametrize(
    "question, body",
    [
        ("Does the Western Cornea Society recommend lid hygiene for blepharitis?", "Western"),
        ("How is blepharitis treated according to the Eastern Eye Association?", "Eastern"),
    ],
)
def test_a_question_asked_of_a_body_no_document_comes_from_is_refused(bodies, question, body):
    answer = bodies.ask(question)
    assert answer.abstained
    assert "hold no document from" in (answer.abstention_reason or "")
    assert body in (answer.abstention_reason or "")
    assert answer.nearest_topics  # where the reader could look instead
    assert answer.abstention_reason in to_text(answer)  # the reader is told what is missing


@pytest.mark.integration
@pytest.mark.parametrize(
    "question, document",
    [
        ("How are eyelid cysts treated according to the NES?", "nes-cysts"),
        ("What does the Coastal Vision Board say causes dry eye?", "cvb-dry-eye"),
    ],
)
def test_a_question_asked_of_one_body_is_answered_from_its_documents(bodies, question, document):
    answer = bodies.ask(question)
    assert not answer.abstained, answer.abstention_reason
    cited = {c.document_id for s in answer.all_sentences() for c in s.citations}
    assert document in cited


@pytest.mark.integration
def test_a_body_mentioned_is_not_asked_as_the_source(bodies):
    profile = bodies.profile
    assert set(profile.cited_organizations("Does the CVB recommend lid hygiene?")) == {
        "Coastal Vision Board (CVB)"
    }
    assert set(profile.cited_organizations("according to the Alpine Ophthalmology College")) == {
        "Alpine Ophthalmology College"
    }
    assert profile.cited_organizations("What is the revised NES definition of dry eye?") == {}
    # Two bodies under one short name are both asked.
    shared = CorpusProfile.build(
        None,
        {
            d.id: d
            for d in (
                DocumentRef(id="a", title="A", organization="Eye Topics (NEL)"),
                DocumentRef(id="b", title="B", organization="Eye Genetics Reference (NEL)"),
            )
        },
    )
    assert set(shared.cited_organizations("What does the NEL say about dry eye?")) == {
        "Eye Topics (NEL)",
        "Eye Genetics Reference (NEL)",
    }
    assert profile.cited_organizations("When was the CVB founded?") == {}


def test_absent_bodies_are_organizations_asked_as_the_source_that_nothing_indexed_comes_from():
    profile = CorpusProfile.build(
        None,
        {"a": DocumentRef(id="a", title="Dry eye", organization="Coastal Vision Board (CVB)")},
    )
    profile.abbreviations = {"WCS": "Western Cornea Society", "TBUT": "tear break-up time"}
    assert profile.absent_bodies("Does the WCS recommend lid hygiene?") == [
        "WCS (Western Cornea Society)"
    ]
    assert profile.absent_bodies("What do Western Cornea Society guidelines say?") == [
        "Western Cornea Society"
    ]
    assert profile.absent_bodies("Dry eye according to the Coastal Vision Board") == []
    assert profile.absent_bodies("Does the CVB recommend lid hygiene?") == []
    # Named but not asked as the source; an abbreviation that is not a body.
    assert profile.absent_bodies("Was the Western Cornea Society founded in 1950?") == []
    assert profile.absent_bodies("What do TBUT guidelines say about dry eye?") == []


@pytest.fixture(scope="module")
def two_on_cysts(tmp_path_factory, embedder) -> Assistant:
    second = _guidance(
        "cvb-cysts",
        "Coastal Vision Board (CVB)",
        "Eyelid cysts in adults: guidance",
        "# Eyelid cysts\n\n## Treatment\n\nMost eyelid cysts settle with warm compresses and lid "
        "massage; one that is still present after two months is referred for incision.\n",
    )
    return library_of({**BODIES, "cysts-2.md": second}, tmp_path_factory, embedder, lexicon=False)


@pytest.mark.integration
def test_an_answer_asked_of_one_body_quotes_only_its_documents(two_on_cysts):
    library = two_on_cysts
    for body, document in (("CVB", "cvb-cysts"), ("NES", "nes-cysts")):
        answer = library.ask(f"How are eyelid cysts treated according to the {body}?")
        assert not answer.abstained, answer.abstention_reason
        cited = {c.document_id for s in answer.all_sentences() for c in s.citations}
        assert cited == {document}


@pytest.mark.integration
def test_a_follow_up_on_that_guideline_is_answered_from_the_one_the_last_answer_led_with(
    two_on_cysts,
):
    session = Session()
    first = two_on_cysts.ask("How are eyelid cysts treated according to the NES?", session)
    assert first.references[0].document.id == "nes-cysts"
    # Both bodies advise warm compresses; "that guidance" is the NES one.
    answer = two_on_cysts.ask(
        "What does that guidance say about warm compresses for eyelid cysts?", session
    )
    assert not answer.abstained, answer.abstention_reason
    cited = {c.document_id for s in answer.all_sentences() for c in s.citations}
    assert cited == {"nes-cysts"}
    assert "the source the last answer led with: Eyelid cysts: practice guidance" in to_text(answer)
    # Only the other body's guidance speaks of incision: that guidance does not cover it.
    refused = two_on_cysts.ask("Does that guidance advise incision of eyelid cysts?", session)
    assert refused.abstained
    assert "Eyelid cysts: practice guidance" in (refused.abstention_reason or "")
    # A question that points at no source is read against the whole library.
    other = two_on_cysts.ask("Is incision needed for eyelid cysts?", session)
    assert "cvb-cysts" in {c.document_id for s in other.all_sentences() for c in s.citations}


@pytest.mark.parametrize(
    ("question", "points"),
    [
        ("What is discussed in this publication?", True),
        ("What did this analysis find?", True),
        ("How many patients were in the same study?", True),
        ("What does that guideline say about children?", True),
        ("Is this rash contagious?", False),
        ("What did the publications of 2019 report?", False),
    ],
)
def test_a_question_points_at_a_source_only_by_naming_one(question, points):
    assert Session.points_at_source(question) is points
