"""The mixed-library measurement's own rules: which gold spans say enough to count another
document that prints them, and which question a 'this study' question is asked after."""

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "library_eval", Path(__file__).resolve().parents[1] / "scripts" / "library_eval.py"
)
library_eval = importlib.util.module_from_spec(_SPEC)
sys.modules["library_eval"] = library_eval  # dataclasses look their module up
_SPEC.loader.exec_module(library_eval)


@pytest.mark.parametrize(
    ("span", "specific"),
    [
        ("Betacoronavirus", True),
        ("incubation period of 5-6 days", True),
        ("31", False),
        ("Africa", False),
        ("31 December", False),
        ("first in 2012", False),
        ("Coronavirus OC43", True),
    ],
)
def test_a_span_counts_elsewhere_only_when_it_says_enough(span, specific):
    assert library_eval.specific(span) is specific


def test_a_question_on_this_study_is_asked_after_the_last_one_that_names_its_subject():
    rows = [
        {"id": "1", "document": "a", "question": "What is the incubation period of MERS?"},
        {"id": "2", "document": "b", "question": "Which cells does influenza infect?"},
        {"id": "3", "document": "a", "question": "What was the conclusion of this study?"},
        {"id": "4", "document": "a", "question": "How many were in this study?"},
        {"id": "5", "document": "c", "question": "What is presented in this publication?"},
    ]
    lead_ins = library_eval._lead_ins(rows)
    assert lead_ins == {
        "3": "What is the incubation period of MERS?",
        "4": "What is the incubation period of MERS?",
    }
