"""all-mpnet-base-v2 as a 3-way cross-encoder: its layers on pairmodel's block, lower part frozen.

The training script and the judge share one forward pass. The layer is ``pairmodel``'s BERT
layer under MPNet's names, rather than borrowed from ``transformers`` internals, whose layer
signatures change between releases;
``tests/test_mpnet_judge.py`` checks them against ``transformers``' MPNet on the fetched base.

The base is split in two: ``lower`` (embeddings and the first ``n_frozen`` layers, never trained)
and ``upper`` (the remaining layers and a 3-way head over [CLS; mean], what training changes and
what ships). Training caches ``lower``'s output once and runs only ``upper``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from assistant.support.pairmodel import BertBlock

HIDDEN = 768
HEADS = 12
INTER = 3072
N_LAYERS = 12
PAD_ID = 1  # MPNet's <pad>; positions count from PAD_ID + 1, as in RoBERTa
EPS = 1e-5


class MPNetBlock(BertBlock):
    """One MPNet encoder layer: BERT's layer under MPNet's parameter names; the relative position
    bias is added to the attention mask (``attention_bias``)."""

    _NAMES: ClassVar[dict[str, str]] = {
        "query": "attention.attn.q",
        "key": "attention.attn.k",
        "value": "attention.attn.v",
        "attn_out": "attention.attn.o",
        "attn_norm": "attention.LayerNorm",
        "inter": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }

    def __init__(self) -> None:
        super().__init__(HIDDEN, HEADS, INTER, EPS)


def relative_buckets(n: int, num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """(n, n) bucket of each key position relative to each query position (MPNet's T5 scheme)."""
    pos = torch.arange(n)
    rel = -(pos[None, :] - pos[:, None])
    half = num_buckets // 2
    ret = (rel < 0).long() * half
    rel = rel.abs()
    exact = half // 2
    large = (
        exact
        + (
            torch.log(rel.float().clamp(min=1) / exact)
            / math.log(max_distance / exact)
            * (half - exact)
        ).long()
    )
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return ret + torch.where(rel < exact, rel, large)


def attention_bias(rel_bias: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, L) additive bias: relative positions plus -1e4 on padded keys."""
    n = mask.shape[1]
    pos = rel_bias[relative_buckets(n).to(mask.device)].permute(2, 0, 1)[None]
    pad = (1.0 - mask[:, None, None, :].to(pos.dtype)) * -1e4
    return pos + pad


class MPNetLower(nn.Module):
    """Embeddings and the first ``n_frozen`` layers: frozen, shared by training and judging."""

    def __init__(self, state: dict[str, Any], n_frozen: int) -> None:
        super().__init__()
        self.word = nn.Embedding.from_pretrained(
            state["embeddings.word_embeddings.weight"].float(), freeze=True
        )
        self.position = nn.Embedding.from_pretrained(
            state["embeddings.position_embeddings.weight"].float(), freeze=True
        )
        self.norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.norm.load_state_dict(
            {
                "weight": state["embeddings.LayerNorm.weight"],
                "bias": state["embeddings.LayerNorm.bias"],
            }
        )
        self.rel_bias = nn.Parameter(
            state["encoder.relative_attention_bias.weight"].float(), requires_grad=False
        )
        self.blocks = nn.ModuleList(
            MPNetBlock().load(state, f"encoder.layer.{i}.") for i in range(n_frozen)
        )
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = ids.ne(PAD_ID).long()
        positions = torch.cumsum(keep, dim=1) * keep + PAD_ID
        h = self.norm(self.word(ids) + self.position(positions))
        bias = attention_bias(self.rel_bias, mask)
        for block in self.blocks:
            h = block(h, bias)
        return h


class MPNetUpper(nn.Module):
    """The trained part: the top layers (initialised from the base) and the 3-way head."""

    def __init__(
        self, state: dict[str, Any] | None, first: int, n_classes: int = 3, rel_bias: Any = None
    ) -> None:
        super().__init__()
        self.first = first
        self.blocks = nn.ModuleList(MPNetBlock() for _ in range(first, N_LAYERS))
        if state is not None:
            for j, i in enumerate(range(first, N_LAYERS)):
                self.blocks[j].load(state, f"encoder.layer.{i}.")
            rel_bias = state["encoder.relative_attention_bias.weight"]
        self.rel_bias = nn.Parameter(
            torch.zeros(32, HEADS) if rel_bias is None else rel_bias.float().clone(),
            requires_grad=False,
        )
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(2 * HIDDEN, n_classes)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        bias = attention_bias(self.rel_bias, mask)
        for block in self.blocks:
            h = block(h, bias)
        m = mask[:, :, None].to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.classifier(self.dropout(torch.cat([h[:, 0], mean], dim=1)))

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What ships: the top layers and the head (the relative bias is the base's)."""
        return {k: v for k, v in self.state_dict().items() if k != "rel_bias"}


def load_base_state(model_dir: Any) -> dict[str, torch.Tensor]:
    """The base model's tensors (float32), from ``model.safetensors`` in ``model_dir``."""
    from pathlib import Path

    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


def pad_batch(items: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (ids, mask), right-padded with MPNet's pad id."""
    n = max(len(x) for x in items)
    ids = torch.full((len(items), n), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(items), n, dtype=torch.long)
    for i, x in enumerate(items):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length, so little compute goes to padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
