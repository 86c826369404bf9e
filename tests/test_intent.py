"""What a question asks about: its subject words, its asking sentences, and how guideline text
is ranked against them. Pure functions, no model."""

from __future__ import annotations

import pytest

from assistant.intent import (
    Ask,
    Intent,
    ask_of,
    conditions_in,
    focus_terms,
    is_process_text,
    question_core,
    subject_bonus,
)


@pytest.mark.parametrize(
    "question",
    [
        "What is the management approach for restless legs syndrome?",
        "What are the treatment options for RLS in adults?",
        "and in dialysis patients?",
    ],
)
def test_broad_questions_have_no_subject_of_their_own(question):
    assert focus_terms(question) == set()


def test_subject_words_survive_and_diagnosis_brings_its_synonyms():
    assert focus_terms("What ferritin level should prompt iron therapy in RLS?") == {
        "ferrit",
        "iron",
    }
    terms = focus_terms("How is periodic limb movement disorder diagnosed?")
    assert {"diagno", "criter", "polysom"} <= terms
    assert "period" not in terms  # the condition's own words are not the subject


def test_the_asking_sentence_decides_the_kind_of_question():
    text = (
        "What is the recommended treatment for RLS in adults? Background: she has symptoms "
        "every evening and takes sertraline."
    )
    assert question_core(text) == "What is the recommended treatment for RLS in adults?"
    assert ask_of(question_core(text)) is Ask.management
    assert ask_of(text) is Ask.diagnosis  # "symptoms" in the background would have won
    assert question_core("restless legs treatment") == "restless legs treatment"


def test_conditions_are_told_apart():
    assert conditions_in("PLMS index above 15 per hour defines PLMD") == {"plmd"}
    assert conditions_in("In RLS the urge to move worsens at rest") == {"rls"}
    assert conditions_in("Willis-Ekbom disease and periodic limb movement disorder") == {
        "rls",
        "plmd",
    }


def test_rare_subject_words_numbers_and_process_text_move_the_ranking():
    question = "What ferritin level should prompt iron therapy?"
    intent = Intent(focus=focus_terms(question))
    sentences = [
        "Adults with RLS should receive iron when serum ferritin is 75 ng/mL or lower.",
        "Iron treatment of RLS was reviewed in 2018.",
        "The task force searched MEDLINE for iron and ferritin studies.",
        "Oral iron is an option for many patients with RLS and low iron.",
    ]
    threshold, year_only, process, iron_only = subject_bonus(sentences, intent, question)
    assert threshold > iron_only > 0  # ferritin is rarer than iron, and a quantity is asked
    assert year_only == pytest.approx(iron_only)  # a year is not a quantity
    assert process < 0
    assert is_process_text(sentences[2]) and not is_process_text(sentences[0])


def test_stems_join_inflections_and_subjects_bring_the_words_their_answers_use():
    from assistant.intent import stem

    assert stem("diagnosed") == stem("diagnostic") == stem("diagnosis") == "diagno"
    assert stem("causes") == "caus" and "cause".startswith(stem("causes"))
    assert {"famil", "genet"} <= focus_terms("Is restless legs syndrome inherited?")
    assert {"secondar", "risk"} <= focus_terms("What causes restless legs syndrome?")
