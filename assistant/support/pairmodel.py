"""The packaged MiniLM read as a cross-encoder: BERT layers, low-rank adapters, pair encoding.

Torch and numpy only (no pydantic, no project settings), so the training script can run these
pieces on a bare accelerator machine and the judges can load what it trained. The forward pass
is written out here (a BERT layer is a dozen lines) rather than borrowed from ``transformers``
internals, whose layer signatures change between releases.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from assistant.support.base import JudgeUnavailableError


class BertBlock(nn.Module):
    """One BERT encoder layer (post-LayerNorm, exact GELU), loadable from a BERT state dict.
    Any position bias a model adds (MPNet's relative one) comes in with the attention mask; a
    model with other parameter names subclasses it with its own ``_NAMES``."""

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

    def load(self, state: dict[str, Any], prefix: str) -> BertBlock:
        """This layer's tensors from a whole model's state dict (``prefix``: the layer's)."""
        mine = {}
        for ours, theirs in self._NAMES.items():
            for p in ("weight", "bias"):
                mine[f"{ours}.{p}"] = state[f"{prefix}{theirs}.{p}"].float()
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


class LoRALinear(nn.Module):
    """A frozen linear map plus a trained low-rank update: W x + (alpha / r) B A x."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.A.T @ self.B.T) * self.scale

    def merged(self) -> nn.Linear:
        """One plain linear map with the update folded in (judging needs no adapter)."""
        out = nn.Linear(self.base.in_features, self.base.out_features)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * (self.B @ self.A))
            out.bias.copy_(self.base.bias)
        return out


ADAPTED = ("query", "key", "value", "attn_out", "inter", "out")


class PairModel(nn.Module):
    """The packaged MiniLM as a cross-encoder: frozen embeddings and weights, adapters on every
    linear map of its six layers, trainable layer norms, and a head over [CLS; mean; features]."""

    def __init__(
        self,
        bert_state: dict[str, Any],
        n_features: int,
        rank: int = 8,
        alpha: float = 16.0,
        n_layers: int = 6,
        n_classes: int = 3,
        hidden: int = 384,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()

        def frozen(name: str) -> nn.Parameter:
            return nn.Parameter(bert_state[name].clone().float(), requires_grad=False)

        self.word = frozen("embeddings.word_embeddings.weight")
        self.position = frozen("embeddings.position_embeddings.weight")
        self.token_type = frozen("embeddings.token_type_embeddings.weight")
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.norm.load_state_dict(
            {
                "weight": bert_state["embeddings.LayerNorm.weight"],
                "bias": bert_state["embeddings.LayerNorm.bias"],
            }
        )
        self.blocks = nn.ModuleList(
            BertBlock(hidden, eps=eps).load(bert_state, f"encoder.layer.{i}.")
            for i in range(n_layers)
        )
        for block in self.blocks:
            for name in ADAPTED:
                if rank > 0:
                    setattr(block, name, LoRALinear(getattr(block, name), rank, alpha))
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(2 * hidden + n_features, n_classes)

    def encode(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states (B, L, 384)."""
        h = (
            self.word[ids]
            + self.position[torch.arange(ids.shape[1], device=ids.device)][None]
            + self.token_type[types]
        )
        h = self.norm(h)
        bias = attention_bias(mask)
        for block in self.blocks:
            h = block(h, bias)
        return h

    def forward(
        self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor, feats: torch.Tensor
    ) -> torch.Tensor:
        h = self.encode(ids, types, mask)
        m = mask[:, :, None].to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        pooled = torch.cat([h[:, 0], mean, feats.to(h.dtype)], dim=1)
        return self.classifier(self.dropout(pooled))

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What training changed: adapters, layer norms, head (the rest is the packaged model)."""
        keep = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in keep}

    def merge_adapters(self) -> PairModel:
        for block in self.blocks:
            for name in ADAPTED:
                layer = getattr(block, name)
                if isinstance(layer, LoRALinear):
                    setattr(block, name, layer.merged())
        return self


_SENTENCE_SPLIT = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z(\[])")


def quantize_int8(state: dict[str, torch.Tensor], head_rows: int = 3) -> dict[str, torch.Tensor]:
    """Linear weights to int8 with one fp16 scale per output row; the rest (and the head, which
    has ``head_rows`` rows and is too small to gain) to fp16. What the judges' weight files hold."""
    out = {}
    for key, value in state.items():
        value = value.float()
        if value.ndim == 2 and value.shape[0] > head_rows:
            scale = value.abs().amax(1).clamp(min=1e-8) / 127
            out[key] = torch.round(value / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[key] = out[key].contiguous()
            out[key + ".scale"] = scale.to(torch.float16).contiguous()
        else:
            out[key] = value.to(torch.float16).contiguous()
    return out


def read_int8_weights(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A judge's weights file as a float32 state dict (int8 rows times their ``.scale``) and its
    config; a file stored as the change from earlier weights (``delta_of``) is added to them."""
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        config = json.loads(fh.metadata()["config"])
        raw = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    state = {}
    for key, value in raw.items():
        if key.endswith(".scale"):
            continue
        scale = raw.get(key + ".scale")
        if value.dtype == torch.int8 and scale is not None:
            state[key] = value.float() * scale.float()[:, None]
        else:
            state[key] = value.float()
    if config.get("delta_of"):
        base, _ = read_int8_weights(path.parent / config["delta_of"])
        state = {k: base[k] + v for k, v in state.items()}
    return state, config


def trained_pair_model(
    sentence_model: Any,
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    n_features: int,
    weights: Any,
    retrain: str,
) -> PairModel:
    """The packaged MiniLM with a judge's trained tensors loaded and its adapters merged: what
    every shipped pair judge runs. Weights missing a trained tensor say how to make new ones."""
    bert = sentence_model[0].auto_model
    model = PairModel(
        {k: v.detach().float().cpu() for k, v in bert.state_dict().items()},
        n_features,
        rank=int(config["rank"]),
        alpha=float(config["alpha"]),
        eps=bert.config.layer_norm_eps,
    )
    missing = set(model.trained_state()) - set(state)
    if missing:
        raise JudgeUnavailableError(
            f"support judge weights {weights} lack {len(missing)} tensors "
            f"(e.g. {sorted(missing)[0]}); retrain with {retrain}"
        )
    model.load_state_dict(state, strict=False)
    model.merge_adapters().eval()
    return model


def passage_sentences(passage: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT.split(passage) if s.strip()]


def fit_evidence(
    sentences: Sequence[str], lengths: Sequence[int], similarity: Sequence[float], budget: int
) -> str:
    """The passage within `budget` tokens: all of it when it fits, else the sentences most
    similar to the claim, greedily, in their original order."""
    if sum(lengths) <= budget:
        return " ".join(sentences)
    chosen: set[int] = set()
    used = 0
    for i in sorted(range(len(sentences)), key=lambda i: -similarity[i]):
        if used + lengths[i] <= budget:
            chosen.add(i)
            used += lengths[i]
    return " ".join(sentences[i] for i in sorted(chosen))


def sentence_windows(lengths: Sequence[int], budget: int, overlap: float = 0.5) -> list[range]:
    """Runs of consecutive sentences, each within ``budget`` tokens, that together cover every
    sentence; each run after the first starts inside the one before, so a sentence near a
    window's edge also stands in a window with its neighbours. A sentence over the budget
    stands alone (the tokenizer cuts it)."""
    n = len(lengths)
    if n == 0:
        return [range(0, 0)]
    out: list[range] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (end == start or used + lengths[end] <= budget):
            used += lengths[end]
            end += 1
        out.append(range(start, end))
        if end >= n:
            return out
        # the next run starts `overlap` of the way into this one (always moving on)
        start = max(start + 1, min(end, start + int((end - start) * (1.0 - overlap))))


WINDOW_RULES = ("max-support", "most-relevant", "classwise")


def aggregate_windows(
    probs: np.ndarray, owners: Sequence[int], n: int, rule: str = "max-support"
) -> np.ndarray:
    """(n, 3) probabilities of whole passages from those of their windows (classes supported,
    contradicted, not enough information). ``max-support``: the window most likely to support
    the claim speaks for the passage; ``most-relevant``: the window least likely to say
    nothing about it; ``classwise``: max supported, max contradicted, min nothing, renormed."""
    if rule not in WINDOW_RULES:
        raise ValueError(f"window rule {rule!r} unknown (choose from {WINDOW_RULES})")
    out = np.zeros((n, probs.shape[1]), dtype=np.float32)
    groups: dict[int, list[int]] = {}
    for row, owner in enumerate(owners):
        groups.setdefault(int(owner), []).append(row)
    for owner, rows in groups.items():
        p = probs[rows]
        if rule == "max-support":
            out[owner] = p[int(p[:, 0].argmax())]
        elif rule == "most-relevant":
            out[owner] = p[int(p[:, 2].argmin())]
        else:
            v = np.array([p[:, 0].max(), p[:, 1].max(), p[:, 2].min()], dtype=np.float32)
            out[owner] = v / max(float(v.sum()), 1e-8)
    return out


class PairEncoder:
    """Turns (claim, passage) pairs into token ids: the passage fitted to the window first."""

    def __init__(self, sentence_model: Any, max_length: int) -> None:
        self.st = sentence_model
        self.tokenizer = sentence_model.tokenizer
        self.max_length = max_length

    def fitted(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Each pair's passage cut to the window (claim, separators and all)."""
        split = [passage_sentences(p) for _, p in pairs]
        lengths = [[len(self.tokenizer.tokenize(s)) for s in ss] for ss in split]
        budgets = [self.max_length - 3 - len(self.tokenizer.tokenize(c)) for c, _ in pairs]
        over = [i for i in range(len(pairs)) if sum(lengths[i]) > budgets[i]]
        vectors: dict[str, np.ndarray] = {}
        if over:
            texts = sorted({pairs[i][0] for i in over} | {s for i in over for s in split[i]})
            embedded = self.st.encode(texts, batch_size=64, normalize_embeddings=True)
            vectors = dict(zip(texts, embedded, strict=True))
        out = []
        for i, (claim, _) in enumerate(pairs):
            sims = [float(vectors[claim] @ vectors[s]) for s in split[i]] if i in over else []
            sims = sims or [0.0] * len(split[i])
            out.append(fit_evidence(split[i], lengths[i], sims, budgets[i]))
        return out

    def windows(
        self, pairs: Sequence[tuple[str, str]], overlap: float = 0.5
    ) -> tuple[list[tuple[str, str]], list[int]]:
        """Each pair as one or more (claim, window) pairs whose windows cover its whole
        passage (``sentence_windows``), and for each the index of the pair it came from. A
        passage within the window stays one pair, as ``fitted`` leaves it."""
        expanded: list[tuple[str, str]] = []
        owners: list[int] = []
        for i, (claim, passage) in enumerate(pairs):
            sentences = passage_sentences(passage) or [passage]
            lengths = [len(self.tokenizer.tokenize(x)) for x in sentences]
            budget = self.max_length - 3 - len(self.tokenizer.tokenize(claim))
            for run in sentence_windows(lengths, max(budget, 16), overlap):
                expanded.append((claim, " ".join(sentences[j] for j in run)))
                owners.append(i)
        return expanded, owners

    def tokenize(
        self, pairs: Sequence[tuple[str, str]], passages: Sequence[str] | None = None
    ) -> list[tuple[list[int], list[int]]]:
        passages = self.fitted(pairs) if passages is None else passages
        enc = self.tokenizer(
            [c for c, _ in pairs],
            list(passages),
            truncation="longest_first",
            max_length=self.max_length,
        )
        return [(enc["input_ids"][i], enc["token_type_ids"][i]) for i in range(len(pairs))]

    @staticmethod
    def pad(items: Sequence[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, ...]:
        n = max(len(ids) for ids, _ in items)
        ids = torch.zeros(len(items), n, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (a, b) in enumerate(items):
            ids[i, : len(a)] = torch.tensor(a)
            types[i, : len(b)] = torch.tensor(b)
            mask[i, : len(a)] = 1
        return ids, types, mask

    @staticmethod
    def batches(items: Sequence[tuple[list[int], list[int]]], batch_size: int) -> list[list[int]]:
        """Indices grouped by similar length, so little compute goes to padding."""
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def windowed_probabilities(
    encoder: PairEncoder,
    pairs: Sequence[tuple[str, str]],
    predict: Any,
    rule: str = "max-support",
    overlap: float = 0.5,
) -> np.ndarray:
    """(n, 3) probabilities with each passage read in overlapping windows that cover all of it
    (a fact past the first window is not cut away), aggregated by ``rule``. ``predict`` maps
    a list of tokenized items to their (m, 3) probabilities."""
    expanded, owners = encoder.windows(pairs, overlap)
    items = encoder.tokenize(expanded, passages=[w for _, w in expanded])
    return aggregate_windows(np.asarray(predict(items)), owners, len(pairs), rule)
