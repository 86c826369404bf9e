"""Query understanding over the real lexicon: many small cases, each able to fail."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from assistant.lexicon import Lexicon
from assistant.normalize import normalize_question
from assistant.types import NormalizedQuery

LEXICON_DIR = Path(__file__).resolve().parents[1] / "corpus" / "lexicon"
SEED = "What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?"


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(LEXICON_DIR)


def norm(lexicon: Lexicon, question: str) -> NormalizedQuery:
    return normalize_question(question, lexicon)


def only(result: NormalizedQuery, concept_id: str):
    found = [m for m in result.matches if m.concept_id == concept_id]
    assert len(found) == 1, result.matches
    return found[0]


# --------------------------------------------------------------------------- exact terms


def test_canonical_name_matches_without_notes_or_changes(lexicon: Lexicon) -> None:
    r = norm(lexicon, "First-line treatment of restless legs syndrome in adults?")
    assert r.concept_ids == ["rls", "adults"]
    assert r.rewritten == r.original
    assert r.notes == []
    assert only(r, "rls").match_type == "exact"
    assert only(r, "rls").confidence == 1.0
    assert only(r, "rls").concept_type == "condition"
    assert only(r, "adults").concept_type == "population"


def test_synonym_is_rewritten_to_canonical_keeping_the_original(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Is Willis-Ekbom disease inherited?")
    assert only(r, "rls").span == "Willis-Ekbom disease"
    assert r.rewritten == "Is restless legs syndrome (Willis-Ekbom disease) inherited?"


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("restless legs at night", "restless legs syndrome at night"),
        ("neuropathy and RLS", "peripheral neuropathy and restless legs syndrome (RLS)"),
        ("extended-release oxycodone", "extended-release oxycodone"),
        ("IV ferric carboxymaltose", "IV ferric carboxymaltose"),
        ("pediatric patients", "pediatric patients"),
    ],
)
def test_rewrite_keeps_qualifiers_and_shortens_sub_phrases(
    lexicon: Lexicon, text: str, rewritten: str
) -> None:
    assert norm(lexicon, text).rewritten == rewritten


def test_plural_and_british_spelling_match(lexicon: Lexicon) -> None:
    r = norm(lexicon, "restless leg syndromes on haemodialysis")
    assert r.concept_ids == ["rls", "hemodialysis"]
    assert r.notes == []


def test_longest_match_wins(lexicon: Lexicon) -> None:
    r = norm(lexicon, "gabapentin enacarbil or gabapentin?")
    assert [(m.span, m.concept_id) for m in r.matches] == [
        ("gabapentin enacarbil", "gabapentin-enacarbil"),
        ("gabapentin", "gabapentin"),
    ]


def test_multiword_terms_do_not_cross_sentence_punctuation(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Is she restless? Legs ache at night.")
    assert "rls" not in r.concept_ids


# --------------------------------------------------------------------------- abbreviations


def test_abbreviation_is_expanded_once(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RLS in pregnancy: is RLS worse later?")
    assert r.rewritten == (
        "Restless legs syndrome (RLS) in pregnancy: is restless legs syndrome worse later?"
    )
    assert [m.match_type for m in r.matches] == ["abbreviation", "exact", "abbreviation"]


def test_lowercase_abbreviation_matches_with_lower_confidence(lexicon: Lexicon) -> None:
    m = only(norm(lexicon, "rls and plmd in kids"), "rls")
    assert m.match_type == "abbreviation"
    assert m.confidence < 1.0


@pytest.mark.parametrize("text", ["Do girls snarl?", "Ida has it", "we wed in June", "burls"])
def test_abbreviations_never_match_inside_words_names_or_english(
    lexicon: Lexicon, text: str
) -> None:
    assert norm(lexicon, text).matches == []


def test_case_sensitive_abbreviation_matches_as_written(lexicon: Lexicon) -> None:
    assert norm(lexicon, "WED and PLMS").concept_ids == ["rls", "plms"]


def test_possessive_abbreviation_matches(lexicon: Lexicon) -> None:
    r = norm(lexicon, "What is RLS's cause?")
    assert only(r, "rls").match_type == "abbreviation"
    assert r.rewritten == "What is restless legs syndrome (RLS)'s cause?"


def test_abbreviation_and_its_expansion_become_one_phrase(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RLS (restless legs syndrome) on Mirapex")
    assert r.rewritten == "Restless legs syndrome (RLS) on pramipexole (Mirapex)"


# --------------------------------------------------------------------------- brands


@pytest.mark.parametrize(
    ("brand", "concept_id", "generic"),
    [
        ("Horizant", "gabapentin-enacarbil", "gabapentin enacarbil"),
        ("Neurontin", "gabapentin", "gabapentin"),
        ("Gralise", "gabapentin", "gabapentin"),
        ("Lyrica", "pregabalin", "pregabalin"),
        ("Mirapex", "pramipexole", "pramipexole"),
        ("Requip", "ropinirole", "ropinirole"),
        ("Neupro", "rotigotine", "rotigotine"),
        ("Sinemet", "levodopa", "levodopa"),
        ("Dostinex", "cabergoline", "cabergoline"),
        ("Injectafer", "ferric-carboxymaltose", "ferric carboxymaltose"),
        ("Feraheme", "ferumoxytol", "ferumoxytol"),
        ("Venofer", "iron-sucrose", "iron sucrose"),
        ("INFeD", "lmw-iron-dextran", "low-molecular-weight iron dextran"),
        ("OxyContin", "oxycodone", "oxycodone"),
        ("Targin", "oxycodone-naloxone", "oxycodone-naloxone"),
        ("Persantine", "dipyridamole", "dipyridamole"),
        ("Klonopin", "clonazepam", "clonazepam"),
        ("Wellbutrin", "bupropion", "bupropion"),
        ("Tegretol", "carbamazepine", "carbamazepine"),
        ("Depakote", "valproic-acid", "valproic acid"),
    ],
)
def test_brand_maps_to_generic(lexicon: Lexicon, brand: str, concept_id: str, generic: str) -> None:
    r = norm(lexicon, f"is {brand} used for this?")
    m = only(r, concept_id)
    assert (m.span, m.match_type) == (brand, "brand")
    assert r.rewritten == f"is {generic} ({brand}) used for this?"
    assert r.notes == []


# --------------------------------------------------------------------------- misspellings


@pytest.mark.parametrize(
    ("typed", "concept_id", "corrected"),
    [
        ("restles leg", "rls", "restless legs syndrome"),
        ("restless leg syndrom", "rls", "restless legs syndrome"),
        ("gabapentine", "gabapentin", "gabapentin"),
        ("pregablin", "pregabalin", "pregabalin"),
        ("pramipexol", "pramipexole", "pramipexole"),
        ("ropinerole", "ropinirole", "ropinirole"),
        ("ferritn", "ferritin", "serum ferritin"),
    ],
)
def test_listed_misspelling_is_corrected_with_a_note(
    lexicon: Lexicon, typed: str, concept_id: str, corrected: str
) -> None:
    r = norm(lexicon, f"about {typed} today")
    m = only(r, concept_id)
    assert m.match_type == "misspelling"
    assert r.rewritten == f"about {corrected} today"
    assert len(r.notes) == 1 and f"'{typed}'" in r.notes[0].message


@pytest.mark.parametrize(
    ("typed", "concept_id"),
    [
        ("gabapenttin", "gabapentin"),
        ("ropinirle", "ropinirole"),
        ("levodpa", "levodopa"),
        ("clonazepamm", "clonazepam"),
        ("polysomnograhy", "polysomnography"),
        ("transferin saturaton", "tsat"),
        ("ferric carboxymaltse", "ferric-carboxymaltose"),
        ("restlesslegs", "rls"),
    ],
)
def test_unlisted_misspelling_is_fuzzy_matched(
    lexicon: Lexicon, typed: str, concept_id: str
) -> None:
    r = norm(lexicon, f"what about {typed}?")
    m = only(r, concept_id)
    assert m.match_type == "fuzzy"
    assert 0.8 <= m.confidence <= 0.95
    assert "misspelling" in r.notes[0].message


# --------------------------------------------------------------------------- real words stay


@pytest.mark.parametrize(
    ("text", "concept_ids"),
    [
        ("gabapentin for RLS", ["gabapentin", "rls"]),
        ("ropinirole dose", ["ropinirole"]),
        ("RBD and RLS", ["rbd", "rls"]),
        ("REM sleep behavior disorder treatment", ["rbd"]),
        ("Parkinson's disease and levodopa", ["parkinson-disease", "levodopa"]),
        ("pregnant women", ["pregnancy"]),
    ],
)
def test_real_terms_are_left_alone(lexicon: Lexicon, text: str, concept_ids: list[str]) -> None:
    r = norm(lexicon, text)
    assert r.concept_ids == concept_ids
    assert all(m.match_type in {"exact", "abbreviation"} for m in r.matches)
    assert r.notes == []


def test_rbd_question_is_not_read_as_rls(lexicon: Lexicon) -> None:
    r = norm(lexicon, "REM sleep behavior disorder treatment")
    assert "rls" not in r.concept_ids
    assert r.rewritten == r.original


@pytest.mark.parametrize(
    "text",
    [
        "Is oxcarbazepine like carbamazepine?",
        "Is hydrocodone like oxycodone?",
        "the lyric of the song",
        "I feel restless at night",
        "What is Down syndrome?",
        "sleep syndrome",
    ],
)
def test_real_words_are_never_corrected(lexicon: Lexicon, text: str) -> None:
    r = norm(lexicon, text)
    assert all(m.match_type in {"exact", "abbreviation"} for m in r.matches)
    assert r.notes == []
    for m in r.matches:
        assert m.span.casefold() in text.casefold()


def test_outside_terms_are_reported_unrecognized(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Is sertraline or oxcarbazepine safe with RLS? What is XYZQ?")
    assert r.unrecognized == ["sertraline", "oxcarbazepine", "XYZQ"]
    assert r.concept_ids == ["rls"]


# --------------------------------------------------------------------------- shorthand


def test_made_up_shorthand_gets_the_exact_note(lexicon: Lexicon) -> None:
    r = norm(lexicon, "How do I treat RESLEG?")
    m = only(r, "rls")
    assert (m.span, m.match_type) == ("RESLEG", "unrecognized-shorthand")
    assert [n.message for n in r.notes] == [
        "'RESLEG' is not a recognized medical term; interpreted as restless legs syndrome (RLS)."
    ]
    assert r.rewritten == "How do I treat restless legs syndrome (RLS)?"


@pytest.mark.parametrize(("typed", "concept_id"), [("PERLIMB", "plms"), ("OBSLEEP", "osa")])
def test_unlisted_shorthand_is_read_from_word_prefixes(
    lexicon: Lexicon, typed: str, concept_id: str
) -> None:
    r = norm(lexicon, f"management of {typed}")
    m = only(r, concept_id)
    assert m.match_type == "unrecognized-shorthand"
    assert 0.6 <= m.confidence <= 0.85
    assert r.notes[0].message.startswith(f"'{typed}' is not a recognized medical term")


def test_shorthand_defined_in_parentheses_follows_the_definition(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RESLEG (REM sleep behavior disorder) treatment")
    assert set(r.concept_ids) == {"rbd"}
    shorthand = r.matches[0]
    assert shorthand.alternatives[0] == "rls"
    assert r.rewritten == "REM sleep behavior disorder (RBD) treatment"


# --------------------------------------------------------------------------- wrong expansions


def test_listed_wrong_expansion_reads_rls_and_names_rbd(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Rapid Eye Movement Sleep Leg syndrome treatment")
    m = only(r, "rls")
    assert m.match_type == "wrong-expansion"
    assert m.alternatives[0] == "rbd"
    assert "rbd" not in r.concept_ids
    (note,) = r.notes
    assert "REM sleep behavior disorder (RBD) was considered and not chosen" in note.message
    assert "'leg'" in note.message and "'syndrome'" in note.message
    assert r.rewritten == "Restless legs syndrome (RLS) treatment"


def test_unseen_wrong_expansion_is_scored_with_the_head_noun(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Treatment of Rapid Eye Movement Leg Sleep syndrome")
    m = only(r, "rls")
    assert m.match_type == "initialism"
    assert m.alternatives[0] == "rbd"
    assert r.rewritten == "Treatment of restless legs syndrome (RLS)"


def test_unseen_expansion_without_leg_reads_rbd(lexicon: Lexicon) -> None:
    r = norm(lexicon, "rapid eye movement sleep disorder")
    assert r.concept_ids == ["rbd"]


def test_parenthesised_phrase_alone_is_not_reinterpreted(lexicon: Lexicon) -> None:
    assert norm(lexicon, "(Rapid Eye Movement Sleep) stage").matches == []


def test_seed_question_has_one_coherent_reading(lexicon: Lexicon) -> None:
    r = norm(lexicon, SEED)
    assert set(r.concept_ids) == {"rls"}
    assert r.rewritten == "What is the management approach for restless legs syndrome (RLS)?"
    types = {m.span: m.match_type for m in r.matches}
    assert types == {
        "RESLEG": "unrecognized-shorthand",
        "Rapid Eye Movement Sleep Leg": "wrong-expansion",
    }
    messages = [n.message for n in r.notes]
    assert messages[0] == (
        "'RESLEG' is not a recognized medical term; interpreted as restless legs syndrome (RLS)."
    )
    assert messages[1].startswith("'Rapid Eye Movement Sleep Leg' is not a recognized")
    assert "REM sleep behavior disorder (RBD) was considered and not chosen" in messages[1]
    assert r.unrecognized == []


def test_unlisted_shorthand_and_expansion_are_read_together(lexicon: Lexicon) -> None:
    r = norm(lexicon, "How to treat RESTLG (Rapid Eye Movement Leg Sleep) syndrome?")
    assert set(r.concept_ids) == {"rls"}
    assert r.rewritten == "How to treat restless legs syndrome (RLS)?"
    assert len(r.notes) == 2


def test_abbreviation_with_a_wrong_expansion_keeps_the_abbreviation(lexicon: Lexicon) -> None:
    r = norm(lexicon, "Is RLS (Rapid Eye Movement Sleep Leg syndrome) genetic?")
    assert set(r.concept_ids) == {"rls"}
    assert r.rewritten == "Is restless legs syndrome (RLS) genetic?"


# --------------------------------------------------------------------------- ambiguity


def test_ambiguous_abbreviation_defaults_and_names_the_other(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RLS in PD")
    m = only(r, "parkinson-disease")
    assert m.alternatives == ["peritoneal-dialysis"]
    assert m.confidence < 0.9
    (note,) = r.notes
    assert note.message.startswith("'PD' can mean Parkinson disease or peritoneal dialysis")


def test_ambiguous_abbreviation_follows_the_rest_of_the_question(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RLS in ESRD patients on PD")
    m = only(r, "peritoneal-dialysis")
    assert m.alternatives == ["parkinson-disease"]
    assert "end-stage renal disease" in r.notes[0].message
    assert "peritoneal dialysis (PD)" in r.rewritten


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", ["", "   ", "???", "\x00\x01\x02", "🙂🙂", "\n\t\n"])
def test_empty_or_symbol_only_input(lexicon: Lexicon, text: str) -> None:
    r = norm(lexicon, text)
    assert r.matches == [] and r.notes == [] and r.unrecognized == []
    assert r.original == text


def test_control_characters_are_removed_and_terms_still_found(lexicon: Lexicon) -> None:
    r = norm(lexicon, "RLS\x00 and\x07 gabapentin\x1b")
    assert r.concept_ids == ["rls", "gabapentin"]
    assert not any(ord(ch) < 32 for ch in r.rewritten)


@pytest.mark.parametrize(
    "text",
    [
        "¿Cuál es el tratamiento del síndrome de piernas inquietas?",
        "不宁腿综合征的治疗",
        "Какое лечение синдрома беспокойных ног?",
    ],
)
def test_non_english_text_is_returned_unchanged(lexicon: Lexicon, text: str) -> None:
    r = norm(lexicon, text)
    assert r.rewritten == text
    assert r.notes == []


@pytest.mark.parametrize(
    "text",
    [
        (SEED + " ") * 250,
        "x" * 20_000,
        " ".join(["RESLEGX", "gabapentinx", "Qwertyz"] * 1_000),
        "leg sleep rapid syndrome disorder disease " * 500,
    ],
)
def test_long_input_is_capped_and_fast(lexicon: Lexicon, text: str) -> None:
    start = time.perf_counter()
    r = norm(lexicon, text)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    assert len(r.matches) <= 200
    assert len(r.unrecognized) <= 20
    assert r.rewritten.rstrip().endswith(text.rstrip()[-20:])  # the tail is kept verbatim


def test_typical_question_takes_milliseconds(lexicon: Lexicon) -> None:
    questions = [SEED, "Is gabapentin better than ropinerole for RLS in ESRD on HD?"] * 10
    norm(lexicon, SEED)
    timings = []
    for q in questions:
        start = time.perf_counter()
        norm(lexicon, q)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.02  # typically ~0.5 ms; generous for shared CPUs


def test_output_is_deterministic_and_spans_come_from_the_input(lexicon: Lexicon) -> None:
    q = "RESLEG or restles legs on Requip, PD or HD, ferritn < 75?"
    first, second = norm(lexicon, q), norm(lexicon, q)
    assert first == second
    for m in first.matches:
        assert m.span in q
        assert 0.0 <= m.confidence <= 1.0
        assert m.canonical == lexicon.concept(m.concept_id).canonical
