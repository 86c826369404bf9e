"""The CPU support scorer: MiniLM + lexical + clinical features, combined by a learned model.

The model is a 3-class logistic regression (supported / contradicted / not supported) stored as
JSON, so the runtime needs numpy and the packaged MiniLM only; scikit-learn is used by
``scripts/train_support_scorer.py`` alone. It was trained on the dev splits of WiCE and
HealthVer plus synthetic perturbations; the decision threshold was chosen on dev out-of-fold
predictions, never on test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.support.base import (
    JudgeUnavailableError,
    SupportLabel,
    SupportVerdict,
    clip01,
    judge_nonempty,
    label_from_scores,
)
from assistant.support.clinical import ClinicalCheck, Severity
from assistant.support.features import FeatureExtractor, PairFeatures

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_SCORER_WEIGHTS = WEIGHTS_DIR / "support_scorer.json"
CLASSES = ("supported", "contradicted", "not_supported")

# Rules precise enough to overrule a learned score: a wrong dose, unit, drug, or direction.
GATING_RULES = frozenset(
    {"number-mismatch", "unit-mismatch", "drug-mismatch", "direction-mismatch", "strength-mismatch"}
)


LONG_PASSAGE_SENTENCES = 6  # above this, a passage is read in the "document" regime


def with_regime(features: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Append each feature times a long-passage indicator, and the indicator itself.

    A claim against one or two sentences (HealthVer-like) and against a many-sentence document
    (WiCE-like) need different weights: token coverage matters more in a long passage. One
    linear model with these interactions beat both a shared model and per-dataset models on
    dev (grouped 5-fold out-of-fold predictions).
    """
    names = list(names)
    j = names.index("n_sentences")
    long = (features[:, j] > np.log1p(LONG_PASSAGE_SENTENCES)).astype(features.dtype)[:, None]
    out = np.hstack([features, features * long, long])
    return out, [*names, *(f"{n}*long" for n in names), "long"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class LinearSupportModel:
    """Standardise, multiply, softmax: the whole runtime of the learned scorer."""

    feature_names: list[str]
    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)
    threshold: float
    version: str
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: Path | str = DEFAULT_SCORER_WEIGHTS) -> LinearSupportModel:
        path = Path(path)
        if not path.exists():
            raise JudgeUnavailableError(
                f"support scorer weights not found: {path} "
                "(run `python scripts/train_support_scorer.py`)"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            feature_names=list(data["feature_names"]),
            classes=list(data["classes"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=np.asarray(data["intercept"], dtype=np.float64),
            threshold=float(data["threshold"]),
            version=str(data["version"]),
            meta=dict(data.get("meta", {})),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "feature_names": self.feature_names,
            "classes": self.classes,
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "coef": self.coef.round(6).tolist(),
            "intercept": self.intercept.round(6).tolist(),
            "threshold": round(self.threshold, 6),
            "meta": self.meta,
        }

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    def predict_proba(self, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Class probabilities in ``self.classes`` order, columns picked by feature name."""
        if "long" in self.feature_names and "long" not in names:
            features, names = with_regime(features, names)
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.feature_names if n not in index]
        if missing:
            raise ValueError(f"features missing for the support scorer: {missing}")
        x = features[:, [index[n] for n in self.feature_names]].astype(np.float64)
        z = (x - self.mean) / self.scale
        return softmax(z @ self.coef.T + self.intercept)


def gate(check: ClinicalCheck, score: float, contradiction: float) -> tuple[float, float, bool]:
    """Cap support when a precise clinical rule fired (wrong dose, unit, drug or direction)."""
    fired = any(
        f.rule in GATING_RULES and f.severity is Severity.contradiction for f in check.findings
    )
    if not fired:
        return score, contradiction, False
    return min(score, 0.2), max(contradiction, 0.8), True


def verdicts_from(
    feats: PairFeatures,
    supported: np.ndarray,
    contradicted: np.ndarray,
    *,
    threshold: float,
    clinical_gate: bool,
    judge_name: str,
) -> list[SupportVerdict]:
    """Verdicts from a learned judge's P(supported) and P(contradicted), one per pair, with the
    clinical gate applied when asked: shared by the scorer, the cross-encoder and their mix."""
    out = []
    for i, check in enumerate(feats.checks):
        score, contradiction = float(supported[i]), float(contradicted[i])
        gated = False
        if clinical_gate:
            score, contradiction, gated = gate(check, score, contradiction)
        label = (
            SupportLabel.contradicted
            if gated
            else label_from_scores(score, contradiction, threshold)
        )
        out.append(
            SupportVerdict(
                label=label,
                score=clip01(score),
                contradiction=clip01(contradiction),
                judge=judge_name,
                rules=check.rules,
                evidence=feats.evidence[i],
            )
        )
    return out


class SupportScorer:
    """Learned CPU scorer; with ``clinical_gate`` it is the project's default judge."""

    def __init__(
        self,
        model: Any = None,
        weights: Path | str = DEFAULT_SCORER_WEIGHTS,
        clinical_gate: bool = True,
        batch_size: int = 32,
        features: FeatureExtractor | None = None,
    ) -> None:
        self.features = features or FeatureExtractor(model, batch_size=batch_size)
        self.linear = LinearSupportModel.load(weights)
        self.clinical_gate = clinical_gate
        self.weights_path = Path(weights)
        self.name = "minilm-scorer+rules" if clinical_gate else "minilm-scorer"
        self.version = self.linear.version

    @property
    def dev_thresholds(self) -> dict[str, float]:
        """Per-dataset thresholds chosen on dev out-of-fold predictions at training time."""
        return dict(self.linear.meta.get("thresholds", {}))

    def settings(self) -> dict[str, object]:
        return {
            "weights": self.weights_path.name,
            "threshold": round(self.linear.threshold, 4),
            "clinical_gate": self.clinical_gate,
            "features": len(self.linear.feature_names),
        }

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        feats = self.features.compute(list(pairs))
        probs = self.linear.predict_proba(feats.matrix, feats.names)
        return self._verdicts(feats, probs)

    def _verdicts(self, feats: PairFeatures, probs: np.ndarray) -> list[SupportVerdict]:
        col = {c: i for i, c in enumerate(self.linear.classes)}
        return verdicts_from(
            feats,
            probs[:, col["supported"]],
            probs[:, col["contradicted"]],
            threshold=self.linear.threshold,
            clinical_gate=self.clinical_gate,
            judge_name=self.name,
        )
