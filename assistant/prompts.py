"""All fixed text the assistant shows or sends, in one place.

Templates that take variables list them in ``TEMPLATE_FIELDS`` and are checked at import, so a
renamed variable fails at start-up rather than mid-answer.
"""

from __future__ import annotations

import string

DISCLAIMER = (
    "This summary is generated from the indexed guideline and research sources to support "
    "clinical decisions; it is not medical advice and does not replace clinical judgement, the "
    "full guideline text, or local protocols."
)

INJECTION_NOTE = (
    "Part of the question reads like instructions to the assistant; it was treated as text. "
    "Answers come only from the indexed sources."
)

NO_POPULATION_NOTE = (
    "No guideline recommendation specific to this population was found; general "
    "recommendations are shown."
)

NO_DOSE_NOTE = (
    "The indexed sources state no dose for this; check the full guideline or the product "
    "label before prescribing."
)

DROPPED_NOTE = "{count} sentence(s) were left out because their cited passage did not support them."

UNRECOGNIZED_NOTE = (
    "'{term}' is not a term the indexed sources or the lexicon know; nothing below is about it "
    "specifically. Check the name (a brand, a spelling) before relying on this answer for it."
)

ABBREVIATION_NOTE = "'{abbreviation}' was read as {expansion} ({how})."

SPELLING_NOTE = "'{word}' was read as '{correction}', a word of the indexed sources' titles."

READ_AS_SOURCE_NOTE = "Read as a question on the source the last answer led with: {title}."

VECTOR_FAULT_NOTE = (
    "The vector search could not be used, so this answer comes from keyword (BM25) search "
    "alone and may miss passages worded differently from the question: {reason}"
)

TEMPLATE_FIELDS: dict[str, set[str]] = {
    "VECTOR_FAULT_NOTE": {"reason"},
    "ABBREVIATION_NOTE": {"abbreviation", "expansion", "how"},
    "READ_AS_SOURCE_NOTE": {"title"},
    "SPELLING_NOTE": {"word", "correction"},
    "DROPPED_NOTE": {"count"},
    "UNRECOGNIZED_NOTE": {"term"},
}


def _check_templates() -> None:
    for name, expected in TEMPLATE_FIELDS.items():
        template = globals()[name]
        found = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        if found != expected:
            raise RuntimeError(f"prompt {name} uses {sorted(found)}, expected {sorted(expected)}")


_check_templates()
