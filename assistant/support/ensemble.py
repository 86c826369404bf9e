"""The default judge: the linear scorer and the MiniLM cross-encoder, averaged.

Each alone is a weak reader on a few thousand dev pairs; their errors differ (one sees only
pooled features, the other reads the pair jointly), and on the held-out part of dev their
average beat either. They share one feature pass, so the average costs little more than the
cross-encoder alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.support.base import (
    JudgeUnavailableError,
    SupportVerdict,
    judge_nonempty,
)
from assistant.support.crossenc import DEFAULT_CE_WEIGHTS, CrossEncoderJudge
from assistant.support.features import FeatureExtractor
from assistant.support.models import load_sentence_model, unwrap_sentence_model
from assistant.support.scorer import (
    DEFAULT_SCORER_WEIGHTS,
    WEIGHTS_DIR,
    SupportScorer,
    verdicts_from,
)

DEFAULT_ENSEMBLE_CONFIG = WEIGHTS_DIR / "ensemble.json"


class EnsembleJudge:
    """P = w * cross-encoder + (1 - w) * linear scorer, then the clinical gate."""

    def __init__(
        self,
        model: Any = None,
        config: Path | str = DEFAULT_ENSEMBLE_CONFIG,
        scorer_weights: Path | str = DEFAULT_SCORER_WEIGHTS,
        ce_weights: Path | str = DEFAULT_CE_WEIGHTS,
        clinical_gate: bool = True,
        features: FeatureExtractor | None = None,
    ) -> None:
        path = Path(config)
        if not path.exists():
            raise JudgeUnavailableError(
                f"ensemble config not found: {path} "
                "(run `python scripts/train_support_scorer.py --stage all`)"
            )
        self.config = json.loads(path.read_text(encoding="utf-8"))
        st = unwrap_sentence_model(model) or load_sentence_model()
        # A memo long enough for one batch: both members ask for the same pairs' features.
        self.features = features or FeatureExtractor(st, memo_size=4096)
        self.linear = SupportScorer(st, scorer_weights, clinical_gate=False, features=self.features)
        self.ce = CrossEncoderJudge(st, ce_weights, clinical_gate=False, features=self.features)
        self.ce_weight = float(self.config["ce_weight"])
        self.threshold = float(self.config["threshold"])
        self.clinical_gate = clinical_gate
        self.name = "minilm-ensemble+rules" if clinical_gate else "minilm-ensemble"
        self.version = f"{self.config['version']} ({self.linear.version}, {self.ce.version})"

    @property
    def dev_thresholds(self) -> dict[str, float]:
        """Per-dataset thresholds chosen on the held-out part of dev at training time."""
        return dict(self.config.get("thresholds", {}))

    def settings(self) -> dict[str, object]:
        return {
            "ce_weight": self.ce_weight,
            "threshold": round(self.threshold, 4),
            "clinical_gate": self.clinical_gate,
            "max_length": self.ce.config["max_length"],
        }

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        pairs = list(pairs)
        ce_probs, feats = self.ce.probabilities(pairs)
        lin_probs = self.linear.linear.predict_proba(feats.matrix, feats.names)
        col_ce = {c: i for i, c in enumerate(self.ce.config["classes"])}
        col_lin = {c: i for i, c in enumerate(self.linear.linear.classes)}
        w = self.ce_weight

        def mixed(cls: str) -> np.ndarray:
            return w * ce_probs[:, col_ce[cls]] + (1 - w) * lin_probs[:, col_lin[cls]]

        return verdicts_from(
            feats,
            mixed("supported"),
            mixed("contradicted"),
            threshold=self.threshold,
            clinical_gate=self.clinical_gate,
            judge_name=self.name,
        )
