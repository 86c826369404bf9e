"""Thresholds: the bar a run must clear, one line per metric, kept next to the suite.

```yaml
faithfulness: {min: 0.95}
contradiction_rate: {max: 0.0}
latency_p95_ms: {max: 3000}
```

A threshold is checked against the metric's point estimate. A metric with nothing to score
fails its threshold (a bar that cannot be measured is not cleared).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evals.metrics import Aggregate
from evals.suite import SuiteError

CASE_PASS_RATE = "case_pass_rate"


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' or 'max'")
        return self

    @property
    def op(self) -> str:
        return ">=" if self.min is not None else "<="

    @property
    def bound(self) -> float:
        return float(self.min if self.min is not None else self.max)  # type: ignore[arg-type]

    def label(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


class ThresholdResult(BaseModel):
    metric: str
    op: str
    bound: float
    value: float | None
    passed: bool
    reason: str = Field(description="Why it passed or failed, in words.")

    def label(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def load_thresholds(path: Path | str, known_metrics: Iterable[str]) -> list[Threshold]:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"thresholds file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected a mapping of metric name -> {{min: x}} or {{max: x}}")
    known = set(known_metrics)
    out, problems = [], []
    for metric, spec in data.items():
        if metric not in known:
            problems.append(
                f"{path}: '{metric}': unknown metric; known: {', '.join(sorted(known))}"
            )
            continue
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            spec = {"min": spec}
        if not isinstance(spec, dict):
            problems.append(f"{path}: '{metric}': expected {{min: x}} or {{max: x}}")
            continue
        try:
            out.append(Threshold.model_validate({"metric": metric, **spec}))
        except ValidationError as exc:
            for err in exc.errors():
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{path}: '{metric}': {msg}")
    if problems:
        raise SuiteError("invalid thresholds:\n" + "\n".join(problems))
    return out


def check_thresholds(
    thresholds: Iterable[Threshold], metrics: dict[str, Aggregate]
) -> list[ThresholdResult]:
    results = []
    for t in thresholds:
        agg = metrics.get(t.metric)
        value = agg.value if agg else None
        if value is None:
            why = "nothing was scored"
            if agg and agg.skipped_reasons:
                why += ": " + "; ".join(sorted(agg.skipped_reasons))
            results.append(
                ThresholdResult(
                    metric=t.metric, op=t.op, bound=t.bound, value=None, passed=False, reason=why
                )
            )
            continue
        passed = value >= t.bound if t.op == ">=" else value <= t.bound
        word = "meets" if passed else "misses"
        ci = ""
        if agg and agg.ci_low is not None and agg.ci_high is not None:
            ci = f" (95% CI {_fmt(agg.ci_low)}-{_fmt(agg.ci_high)})"
        results.append(
            ThresholdResult(
                metric=t.metric,
                op=t.op,
                bound=t.bound,
                value=value,
                passed=passed,
                reason=f"{_fmt(value)}{ci} {word} {t.op} {t.bound:g}",
            )
        )
    return results


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"


def thresholds_to_yaml(thresholds: Iterable[Threshold]) -> str:
    data: dict[str, Any] = {}
    for t in thresholds:
        data[t.metric] = {"min": t.min} if t.min is not None else {"max": t.max}
    return yaml.safe_dump(data, sort_keys=False)
