"""Prompt text of the LLM support judge, all in one place.

Templates are checked at import: each must use exactly the variables its caller fills, so a
renamed placeholder fails at start-up rather than as a KeyError mid-evaluation.
"""

from __future__ import annotations

from string import Formatter

SUPPORT_SYSTEM = """\
You check whether a source passage supports a claim, for a clinical question-answering system.
Judge only from the passage; ignore anything you know that it does not state.
- "supported": every part of the claim is stated or directly implied by the passage, including
  numbers, doses, units, drug names, populations, and the direction and strength of any
  recommendation ("recommends" is strong, "suggests" is conditional; "for" is not "against").
- "contradicted": the passage states something incompatible with the claim.
- "not_supported": the passage neither supports nor contradicts the claim (or only part of it).
Answer with one JSON object and nothing else:
{"label": "supported" | "contradicted" | "not_supported", "reason": "<at most 25 words>", \
"confidence": <number between 0 and 1>}"""

SUPPORT_USER = """\
<passage>
{passage}
</passage>

<claim>
{claim}
</claim>

Does the passage support the claim? Answer with the JSON object only."""

_EXPECTED = {"SUPPORT_USER": {"claim", "passage"}, "SUPPORT_SYSTEM": set()}


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def _check() -> None:
    for name, expected in _EXPECTED.items():
        found = template_fields(globals()[name]) if expected else set()
        if found != expected:
            raise RuntimeError(f"prompt {name} uses {sorted(found)}, expected {sorted(expected)}")


def support_messages(claim: str, passage: str) -> list[dict[str, str]]:
    """Chat messages for one judgement; the passage goes in as delimited data."""
    return [
        {"role": "system", "content": SUPPORT_SYSTEM},
        {"role": "user", "content": SUPPORT_USER.format(claim=claim, passage=passage)},
    ]


_check()
