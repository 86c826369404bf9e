"""One development / held-out split for every development set, decided by a salt.

Each item lands on the same side in every session and every script: the side is a hash of the
salt, the set's name and the item's key. Develop on ``dev``; run ``heldout`` once, at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

SALT = "cliniq-split-2026-12"
HELDOUT_SHARE = 0.3

Side = Literal["dev", "heldout"]
T = TypeVar("T")


def side(
    set_name: str, key: str, *, salt: str = SALT, heldout_share: float = HELDOUT_SHARE
) -> Side:
    """The side of one item: ``heldout`` for about `heldout_share` of the keys of a set."""
    digest = hashlib.sha256(f"{salt}:{set_name}:{key}".encode()).hexdigest()
    return "heldout" if int(digest[:12], 16) / 16**12 < heldout_share else "dev"


def split(
    set_name: str, items: Iterable[T], key: Callable[[T], str], *, salt: str = SALT
) -> dict[Side, list[T]]:
    """The items of a set on each side, in their given order.

    Split by the unit that must not leak across sides: a document, a condition, a file.
    """
    sides: dict[Side, list[T]] = {"dev": [], "heldout": []}
    for item in items:
        sides[side(set_name, key(item), salt=salt)].append(item)
    return sides
