"""Recommendation strength and certainty across grading scales.

Sources grade in their own words (GRADE strong / conditional, AAN Level A / B / C, AASM 2012
standard / guideline / option, MDS efficacious / likely efficacious). We keep the source's words
for display and map them to an ordinal rank only to sort strongest first.
"""

from __future__ import annotations

import re

_STRENGTH_RANKS: tuple[tuple[str, int], ...] = (
    # Order matters: longer, more specific phrases first.
    (r"\bgood practice\b", 5),
    (r"\blikely efficacious\b", 2),
    (r"\bnot efficacious\b|\bnon-efficacious\b", 2),
    (r"\binsufficient\b|\binvestigational\b", 1),
    (r"\bpossibly effective\b", 2),
    (r"\bprobably effective\b", 3),
    (r"\bstrong\b", 4),
    (r"\bconditional\b|\bweak\b", 2),
    (r"\blevel a\b", 4),
    (r"\blevel b\b", 3),
    (r"\blevel c\b", 2),
    (r"\blevel u\b", 1),
    (r"\bstandard\b", 4),
    (r"\bguideline\b", 3),
    (r"\boption\b", 2),
    (r"\befficacious\b", 4),
    (r"\beffective\b", 4),
    (r"\bconsensus\b|\bexpert opinion\b", 1),
)

_CERTAINTY_RANKS: tuple[tuple[str, int], ...] = (
    (r"\bvery low\b", 1),
    (r"\bhigh\b", 4),
    (r"\bmoderate\b", 3),
    (r"\blow\b", 2),
)


def _rank(text: str | None, table: tuple[tuple[str, int], ...]) -> int:
    if not text:
        return 0
    lowered = text.lower()
    for pattern, rank in table:
        if re.search(pattern, lowered):
            return rank
    return 0


def strength_rank(strength: str | None) -> int:
    """Higher is stronger; 0 when the wording is not recognised (sorted last, never dropped)."""
    return _rank(strength, _STRENGTH_RANKS)


def certainty_rank(certainty: str | None) -> int:
    """GRADE certainty: high 4, moderate 3, low 2, very low 1, unknown 0."""
    return _rank(certainty, _CERTAINTY_RANKS)


def is_graded(strength: str | None) -> bool:
    """False for wording we cannot place on any scale (e.g. 'not confirmed')."""
    return strength_rank(strength) > 0


def is_strong(strength: str | None) -> bool:
    """True for the top tier of a scale (GRADE strong, AAN Level A, AASM 2012 standard)."""
    return strength_rank(strength) >= 4 and not re.search(
        r"good practice", (strength or "").lower()
    )
