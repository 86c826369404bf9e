"""An NLI cross-encoder from a local directory, for users who have one.

None ships on PyPI, so this judge appears only when ``nli_model_path`` is set. NLI models name
their classes differently (ENTAILMENT / entailment / LABEL_0); the mapping to our labels is
read from the model's ``id2label`` or given explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.support.base import (
    JudgeUnavailableError,
    SupportLabel,
    SupportVerdict,
    clip01,
    label_from_scores,
)

# Checked in order: "not_entailment" must be read as neutral before "entail" or "no" match.
_NAME_HINTS = (
    (("neutral", "not", "nei", "unknown", "undetermined"), SupportLabel.not_supported),
    (("entail", "support", "true", "yes"), SupportLabel.supported),
    (("contradict", "refute", "false", "no"), SupportLabel.contradicted),
)


def infer_label_map(id2label: dict[int, str]) -> dict[int, SupportLabel]:
    """Map class indices to our labels by their names; error when a name says nothing."""
    out: dict[int, SupportLabel] = {}
    for idx, name in id2label.items():
        low = name.lower()
        for hints, label in _NAME_HINTS:
            if any(low.startswith(h) for h in hints):
                out[int(idx)] = label
                break
        else:
            raise JudgeUnavailableError(
                f"cannot tell what NLI class {idx} ({name!r}) means; set nli_label_map, e.g. "
                '{"LABEL_0": "contradicted", "LABEL_1": "supported", "LABEL_2": "not_supported"}'
            )
    if SupportLabel.supported not in out.values():
        raise JudgeUnavailableError(f"no entailment class among {id2label}; set nli_label_map")
    return out


def resolve_label_map(
    id2label: dict[int, str], label_map: dict[str, str] | None
) -> dict[int, SupportLabel]:
    if not label_map:
        return infer_label_map(id2label)
    by_name = {name: idx for idx, name in id2label.items()}
    out: dict[int, SupportLabel] = {}
    for key, value in label_map.items():
        idx = by_name.get(key, int(key) if str(key).isdigit() else None)
        if idx is None:
            raise JudgeUnavailableError(f"nli_label_map names {key!r}, not a class of the model")
        out[int(idx)] = SupportLabel(value)
    if len(out) != len(id2label):
        raise JudgeUnavailableError(f"nli_label_map must cover every class of {id2label}")
    return out


class NLIJudge:
    """Premise = passage, hypothesis = claim; P(supported) is the entailment probability."""

    name = "nli"

    def __init__(
        self,
        model_path: Path | str,
        label_map: dict[str, str] | None = None,
        max_length: int = 512,
        batch_size: int = 16,
        threshold: float = 0.5,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise JudgeUnavailableError(
                f"NLI model directory not found: {path} (set CLINIQ_SUPPORT__NLI_MODEL_PATH to a "
                "local cross-encoder directory)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(
            str(path), device="cpu", local_files_only=True, max_length=max_length
        )
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.label_map = resolve_label_map(id2label, label_map)
        self.model_path = path
        self.max_length = max_length
        self.batch_size = batch_size
        self.threshold = threshold
        self.version = path.name

    def settings(self) -> dict[str, object]:
        return {
            "model_path": str(self.model_path),
            "label_map": {i: lab.value for i, lab in sorted(self.label_map.items())},
            "max_length": self.max_length,
        }

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(n, 3) probabilities in the order supported, contradicted, not supported."""
        raw = self.model.predict(
            [(passage, claim) for claim, passage in pairs],
            batch_size=self.batch_size,
            apply_softmax=True,
            show_progress_bar=False,
        )
        raw = np.asarray(raw, dtype=np.float64).reshape(len(pairs), -1)
        order = [SupportLabel.supported, SupportLabel.contradicted, SupportLabel.not_supported]
        out = np.zeros((len(pairs), 3))
        for idx, label in self.label_map.items():
            out[:, order.index(label)] += raw[:, idx]
        return out

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        if not pairs:
            return []
        probs = self.probabilities(pairs)
        return [
            SupportVerdict(
                label=label_from_scores(p[0], p[1], self.threshold),
                score=clip01(p[0]),
                contradiction=clip01(p[1]),
                judge=self.name,
            )
            for p in probs
        ]
