"""Types every support judge shares: the verdict, the judge protocol, the errors.

One implementation of "does this passage support this claim?" serves the assistant (checking
its own sentences against the passages they cite) and the evals (faithfulness metrics), so the
types live here, importable without ``evals``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ingest.errors import CliniqError


class SupportLabel(StrEnum):
    supported = "supported"
    contradicted = "contradicted"
    not_supported = "not_supported"


class SupportVerdict(BaseModel):
    """One judge's answer for one (claim, passage) pair."""

    label: SupportLabel
    score: float = Field(ge=0, le=1, description="P(supported).")
    contradiction: float = Field(
        default=0.0, ge=0, le=1, description="P(contradicted); 0 when the judge cannot tell."
    )
    judge: str = Field(description="Name of the judge that produced the verdict.")
    rules: list[str] = Field(
        default_factory=list,
        description='Checker rules that fired, e.g. "number-mismatch: 300 mg vs 600 mg".',
    )
    evidence: str | None = Field(
        default=None, description="The passage sentence that best supports the claim, if any."
    )


@runtime_checkable
class SupportJudge(Protocol):
    """Anything that can say whether a passage supports a claim."""

    name: str
    version: str

    def settings(self) -> dict[str, object]: ...

    def judge(self, claim: str, passage: str) -> SupportVerdict: ...

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]: ...


class SupportError(CliniqError):
    """A support judge could not be built or could not answer."""


class JudgeUnavailableError(SupportError):
    """The judge's model or endpoint is not there (not configured, missing, unreachable)."""


class JudgeResponseError(SupportError):
    """The judge answered, but not in the form we asked for."""


def label_from_scores(
    score: float, contradiction: float, threshold: float = 0.5, contradiction_threshold: float = 0.5
) -> SupportLabel:
    """Map probabilities to a label: contradiction wins only when it beats support."""
    if contradiction >= contradiction_threshold and contradiction > score:
        return SupportLabel.contradicted
    if score >= threshold:
        return SupportLabel.supported
    return SupportLabel.not_supported


def clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def judge_nonempty(
    pairs: Sequence[tuple[str, str]],
    judge_many: Callable[[list[tuple[str, str]]], list[SupportVerdict]],
    name: str,
) -> list[SupportVerdict]:
    """Run ``judge_many`` on pairs with text on both sides; an empty side supports nothing."""
    keep = [i for i, (c, p) in enumerate(pairs) if c.strip() and p.strip()]
    done = judge_many([pairs[i] for i in keep]) if keep else []
    out = [
        SupportVerdict(
            label=SupportLabel.not_supported,
            score=0.0,
            contradiction=0.0,
            judge=name,
            rules=["empty-input"],
        )
        for _ in pairs
    ]
    for i, verdict in zip(keep, done, strict=True):
        out[i] = verdict
    return out
