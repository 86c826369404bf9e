"""What a question asks about: its subject words, its asking sentences and its kind (how text
is ranked against a question: tests/test_relevance.py). Pure functions, no model; condition and
group names come from a corpus profile built from recommendation blocks and the bundled
lexicon."""

from __future__ import annotations

import pytest
from conftest import CORPUS_DIR

from assistant.intent import (
    KIND_WORDS,
    Ask,
    Kind,
    ask_of,
    focus_terms,
    kind_of,
    question_core,
)
from assistant.lexicon import Lexicon
from assistant.profile import CorpusProfile
from ingest.types import Chunk, Direction, DocType, Document, Recommendation


def _block(doc: Document, n: int, population: str, section: str) -> Chunk:
    rec = Recommendation(
        statement=f"Statement {n}.",
        direction=Direction.for_,
        strength="strong",
        population=population,
        intervention=f"drug {n}",
        section=section,
    )
    return Chunk(document=doc.ref(), position=n, text=rec.statement, recommendation=rec)


@pytest.fixture(scope="module")
def profile() -> CorpusProfile:
    lexicon = Lexicon.load(CORPUS_DIR / "lexicon")
    doc = Document(id="g", title="A guideline", organization="Org", doc_type=DocType.guideline)
    blocks = [
        _block(doc, 0, "adults with RLS", "Adults with RLS"),
        _block(doc, 1, "adults with RLS", "Adults with RLS"),
        _block(doc, 2, "adults with RLS and ESRD on dialysis", "Adults with RLS and ESRD"),
        _block(doc, 3, "children with RLS", "Children with RLS"),
        _block(doc, 4, "adults with PLMD", "Adults with PLMD"),
        _block(doc, 5, "adults with RLS and low ferritin", "Adults with RLS"),
    ]
    return CorpusProfile.build(lexicon, {doc.id: doc.ref()}, blocks)


@pytest.mark.parametrize(
    "question",
    [
        "What is the management approach for restless legs syndrome?",
        "What are the treatment options for RLS in adults?",
        "and in dialysis patients?",
    ],
)
def test_broad_questions_have_no_subject_of_their_own(question, profile):
    assert focus_terms(question, profile.name_words(question)) == set()


def test_subject_words_survive_and_diagnosis_brings_its_synonyms(profile):
    question = "What ferritin level should prompt iron therapy in RLS?"
    assert focus_terms(question, profile.name_words(question)) == {"ferrit", "iron"}
    question = "How is periodic limb movement disorder diagnosed?"
    terms = focus_terms(question, profile.name_words(question))
    assert {"diagno", "criter"} <= terms
    assert "period" not in terms  # the condition's own words are not the subject
    assert "period" in focus_terms(question)  # ...which the profile is what tells


def test_the_asking_sentence_decides_the_kind_of_question():
    text = (
        "What is the recommended treatment for RLS in adults? Background: she has symptoms "
        "every evening and takes sertraline."
    )
    assert question_core(text) == "What is the recommended treatment for RLS in adults?"
    assert ask_of(question_core(text)) is Ask.management
    assert ask_of(text) is Ask.diagnosis  # "symptoms" in the background would have won
    assert question_core("restless legs treatment") == "restless legs treatment"


def test_conditions_are_told_apart(profile):
    assert profile.conditions_in("PLMS index above 15 per hour defines PLMD") == {"plmd"}
    assert profile.conditions_in("In RLS the urge to move worsens at rest") == {"rls"}
    assert profile.conditions_in("Willis-Ekbom disease and periodic limb movement disorder") == {
        "rls",
        "plmd",
    }
    # A comorbidity is not a condition the recommendations treat.
    assert profile.conditions_in("adults with end-stage renal disease") == set()
    assert profile.main_condition == "rls"


def test_patient_groups_come_from_the_recommendations_own_sections(profile):
    assert set(profile.groups) == {"esrd", "children"}  # low ferritin sits in the main section
    assert profile.default_groups == {"adults"}
    assert profile.group_label("esrd") == "Adults with RLS and ESRD on dialysis"
    assert profile.group_label("children") == "Children"
    assert profile.groups_in("and in dialysis patients?") == {"esrd"}  # dialysis: same group
    assert profile.groups_in("kidney failure in children") == {"esrd", "children"}
    assert profile.groups_in("no history of kidney failure") == set()
    assert profile.groups_in("RLS in adults") == set()


def test_short_names_are_the_documents_own():
    lexicon = Lexicon.load(CORPUS_DIR / "lexicon")
    docs = {
        "a": Document(id="a", title="T", organization="American Academy of Sleep Medicine"),
        "b": Document(id="b", title="T", organization="Movement Disorder Society (MDS)"),
        "c": Document(id="c", title="T", organization="Centers for Disease Control and Prevention"),
    }
    openings = {
        "a": ["The AASM recommends ..."],
        "c": ["Centers for Disease Control and Prevention (CDC) ..."],
    }
    profile = CorpusProfile.build(lexicon, {k: d.ref() for k, d in docs.items()}, openings=openings)
    assert profile.short_name("American Academy of Sleep Medicine") == "AASM"
    assert profile.short_name("Movement Disorder Society (MDS)") == "MDS"
    assert profile.short_name("Centers for Disease Control and Prevention") == "CDC"
    # Initials the text never uses are not invented.
    assert profile.short_name("Nature Reviews Disease Primers") == "Nature Reviews Disease Primers"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("What causes COPD?", Kind.causes),
        ("Who is at risk for kidney stones?", Kind.causes),
        ("What are the signs and symptoms of type 1 diabetes?", Kind.symptoms),
        ("How is celiac disease diagnosed?", Kind.diagnosis),
        ("What are the treatments for gout?", Kind.treatment),
        ("How can osteoporosis be prevented?", Kind.prevention),
        ("What is the outlook for people with ALS?", Kind.prognosis),
        ("What is the recommended dose of metformin?", Kind.dose),
        ("What is (are) psoriasis?", Kind.definition),
        ("Is hemophilia inherited?", Kind.inheritance),
        ("What are the genetic changes related to cystic fibrosis?", Kind.inheritance),
        ("How many people are affected by lupus?", Kind.frequency),
        ("What are the complications of measles?", Kind.complications),
        # Clinicians' shorthand.
        ("gout tx?", Kind.treatment),
        ("lupus meds", Kind.treatment),
        ("asthma mgmt in adults", Kind.treatment),
        ("measles sx", Kind.symptoms),
        ("COPD dx", Kind.diagnosis),
        ("ddx of chest pain", Kind.diagnosis),
    ],
)
def test_every_condition_gets_the_same_kinds_of_question(question, kind):
    assert kind_of(question) is kind


def test_stems_join_inflections_and_subjects_bring_the_words_their_answers_use():
    from assistant.intent import stem

    assert stem("diagnosed") == stem("diagnostic") == stem("diagnosis") == "diagno"
    assert stem("causes") == "caus" and "cause".startswith(stem("causes"))
    assert {"famil", "genet"} <= focus_terms("Is restless legs syndrome inherited?")
    assert {"secondar", "risk"} <= focus_terms("What causes restless legs syndrome?")
    assert "restle" in focus_terms("What causes restless legs syndrome?")  # no profile: kept


def test_remembered_readings_are_the_readings(profile) -> None:
    """concept_spans remembers a text's names once and filters them by type per call."""
    text = "Pramipexole or gabapentin for restless legs syndrome in dialysis patients"
    everything = profile.concept_spans(text)
    profile.forget()
    conditions = profile.concept_spans(text, {"condition"})
    assert conditions == [(c, t) for c, t in everything if t == "condition"]
    assert profile.concept_spans(text) == everything
    assert len({t for _, t in everything}) > 1  # several kinds, so the filter is tested


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("Aetiology of Psoriasis?", "psoriasis"),
        ("Workup for suspected Head Lice?", "suspected head lice"),
        ("Risk factors for gout?", "gout"),
        ("What is the prognosis of shingles?", "shingles"),
    ],
)
def test_the_words_that_say_the_kind_are_not_the_subject(question, subject):
    """Coverage asks whether the sources name the subject: "aetiology" or "workup" are the
    kind's words, which a library that says "causes" or "diagnosis" never uses."""
    words = [w for w in KIND_WORDS.sub(" ", question).lower().replace("?", " ").split()]
    assert [w for w in words if w not in {"of", "for", "the"}] == subject.split()
