"""The 3-way support judge: supported, contradicted or not enough information.

The packaged MiniLM (all-MiniLM-L6-v2) reads claim and passage together; its six layers and a
3-way head were fine-tuned on labelled claim/evidence pairs (the train parts of
``evals.judge_sets.TRAINABLE`` and the corpus perturbations; see docs/judges.md). Only the
trained layers ship, as int8 weights with per-row scales (LoRA adapters load from the same file
format); the embeddings come from the packaged model. A passage over the window is read as the
sentences closest to the claim, or in overlapping windows covering all of it (``window_rule``).

``+rules`` adds the clinical checker: a rule that finds a contradiction (direction, strength,
dose, threshold, drug, population, option) makes the verdict contradicted whatever the model
says, a claim naming a number, drug, option or population its text lacks is capped below
supported, and a recommendation claim the rules find stated with the same direction and
strength (nothing firing, most content words present), or that the passage quotes word for
word, is supported (``rules_agree``, ``quoted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assistant.support.base import (
    JudgeUnavailableError,
    SupportLabel,
    SupportVerdict,
    clip01,
    judge_nonempty,
)
from assistant.support.clinical import (
    Severity,
    check_claim,
    recommendation_direction,
    recommendation_strength,
)
from assistant.support.models import load_sentence_model, unwrap_sentence_model
from assistant.support.pairmodel import (
    WINDOW_RULES,
    PairEncoder,
    read_int8_weights,
    trained_pair_model,
    windowed_probabilities,
)
from assistant.support.scorer import GATING_RULES, WEIGHTS_DIR
from assistant.support.terms import ClinicalTerms

DEFAULT_NLI_WEIGHTS = WEIGHTS_DIR / "minilm_nli_int8.safetensors"
# How a passage over the window is read: "fit" = one window of the sentences closest to the
# claim, chosen from all of it; a WINDOW_RULES name = overlapping windows covering all of it,
# aggregated by that rule. "fit" scored best on dev (docs/judges.md) at a fraction of the cost.
DEFAULT_WINDOW_RULE = "fit"
GATED_SCORE = 0.2  # P(supported) cap when a rule contradicts
UNSUPPORTED_SCORE = 0.4  # cap when the claim names something the text lacks
# Rules precise enough to overrule the model (negation counts are not: "X over no X").
GATE = GATING_RULES | {"option-mismatch", "population-mismatch", "pairing-mismatch"}
AGREEMENT_RECALL = 0.7  # content words of a recommendation claim found in its text


def quoted(claim: str, passage: str) -> bool:
    """The claim stands word for word in the passage (as the assistant's verifier checks)."""
    norm = lambda t: " ".join(t.lower().split()).rstrip(".")  # noqa: E731
    return len(claim) > 20 and norm(claim) in norm(passage)


def rules_agree(claim: str, check: object) -> bool:
    """A recommendation claim whose text gives the same direction and strength, with no rule
    firing and most of its content words in the text: the rules vouch for it. The model,
    trained mostly on other prose, reads some faithful recommendation sentences as contradicted
    (a list of drugs under one "suggests against", say); there the rules decide."""
    evidence = getattr(check, "evidence", None) or ""
    direction = recommendation_direction(claim)
    if direction is None or direction != recommendation_direction(evidence):
        return False
    c_str, e_str = recommendation_strength(claim), recommendation_strength(evidence)
    if c_str and e_str and c_str != e_str:
        return False
    loose = {"negation-mismatch", "effect-direction-mismatch"}  # "X over no X" has a "no"
    firing = [f for f in check.findings if f.rule not in loose]
    return not firing and check.lexical_recall >= AGREEMENT_RECALL


def load_nli_weights(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Float32 state dict (int8 tensors dequantized with their ``.scale``) and the config."""
    path = Path(path)
    if not path.exists():
        raise JudgeUnavailableError(
            f"support judge weights not found: {path} (see docs/judges.md, Training)"
        )
    return read_int8_weights(path)


class MiniLMNLIJudge:
    """Supported / contradicted / not enough information, from one cross-encoder pass."""

    def __init__(
        self,
        model: Any = None,
        weights: Path | str = DEFAULT_NLI_WEIGHTS,
        clinical_gate: bool = True,
        batch_size: int = 16,
        terms: ClinicalTerms | None = None,
        window_rule: str | None = None,
        name: str | None = None,
    ) -> None:
        state, self.config = load_nli_weights(weights)
        self.window_rule = window_rule or str(self.config.get("window_rule", DEFAULT_WINDOW_RULE))
        if self.window_rule not in (*WINDOW_RULES, "fit"):
            raise ValueError(
                f"window rule {self.window_rule!r} unknown (choose from fit, {WINDOW_RULES})"
            )
        self.weights_path = Path(weights)
        self._st = unwrap_sentence_model(model) or load_sentence_model()
        self.encoder = PairEncoder(self._st, int(self.config["max_length"]))
        self.model = trained_pair_model(
            self._st, state, self.config, 0, weights, "scripts/train_support_nli.py"
        )
        self.classes = list(self.config["classes"])
        self.threshold = float(self.config.get("threshold", 0.5))
        self.clinical_gate = clinical_gate
        self.terms = terms
        self.batch_size = batch_size
        base = name or "minilm-nli"
        self.name = f"{base}+rules" if clinical_gate else base
        self.version = str(self.config["version"])

    @property
    def dev_thresholds(self) -> dict[str, float]:
        """Per-set thresholds chosen on the held-out dev parts at training time."""
        return dict(self.config.get("thresholds", {}))

    def settings(self) -> dict[str, object]:
        return {
            "weights": self.weights_path.name,
            "layers": "all 6 fine-tuned (int8)" if not self.config["rank"] else "LoRA",
            "max_length": self.config["max_length"],
            "long_passages": self.window_rule,
            "threshold": round(self.threshold, 4),
            "label": "argmax of the 3 classes",
            "clinical_gate": self.clinical_gate,
        }

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(n, 3) class probabilities, classes in ``self.classes`` order. A passage over the
        window is read in overlapping windows covering all of it (``window_rule``), or cut to
        the sentences closest to the claim (``fit``)."""
        if self.window_rule == "fit":
            return self.predict_items(self.encoder.tokenize(list(pairs)))
        return windowed_probabilities(
            self.encoder, list(pairs), self.predict_items, self.window_rule
        )

    def predict_items(self, items: list[tuple[list[int], list[int]]]) -> np.ndarray:
        """(m, 3) probabilities of already tokenized pairs."""
        probs = np.zeros((len(items), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for idx in self.encoder.batches(items, self.batch_size):
                ids, types, mask = self.encoder.pad([items[i] for i in idx])
                logits = self.model(ids, types, mask, torch.zeros(len(idx), 0))
                probs[idx] = torch.softmax(logits, dim=-1).numpy()
        return probs

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        probs = self.probabilities(pairs)
        col = {c: i for i, c in enumerate(self.classes)}
        out = []
        for (claim, passage), p in zip(pairs, probs, strict=True):
            score, contradiction = float(p[col["supported"]]), float(p[col["contradicted"]])
            label = SupportLabel(self.classes[int(p.argmax())])
            rules: list[str] = []
            evidence = None
            if self.clinical_gate:
                check = check_claim(claim, passage, terms=self.terms)
                rules, evidence = check.rules, check.evidence
                if any(
                    f.rule in GATE and f.severity is Severity.contradiction for f in check.findings
                ):
                    score, contradiction = min(score, GATED_SCORE), max(contradiction, 0.9)
                    label = SupportLabel.contradicted
                elif any(f.severity is Severity.unsupported for f in check.findings):
                    score = min(score, UNSUPPORTED_SCORE)
                    if label is SupportLabel.supported:
                        label = SupportLabel.not_supported
                elif label is not SupportLabel.supported and quoted(claim, passage):
                    score, contradiction = max(score, 0.95), min(contradiction, 0.05)
                    label = SupportLabel.supported
                    rules = [*rules, "quoted: the claim stands in the passage"]
                elif label is not SupportLabel.supported and rules_agree(claim, check):
                    score = max(score, float(check.lexical_recall))
                    contradiction = min(contradiction, 1.0 - score)
                    label = SupportLabel.supported
                    rules = [*rules, "rules-agree: same direction and strength"]
            out.append(
                SupportVerdict(
                    label=label,
                    score=clip01(score),
                    contradiction=clip01(contradiction),
                    judge=self.name,
                    rules=rules,
                    evidence=evidence,
                )
            )
        return out
