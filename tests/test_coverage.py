"""Whether the sources cover a question (assistant.coverage): a source must name the question's
subject in its title or headings; and which guidelines' recommendations may answer it. Small
libraries, the real model and index."""

from __future__ import annotations

import pytest
from conftest import library_of

from assistant.engine import Assistant

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
