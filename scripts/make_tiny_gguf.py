"""Write a tiny Llama-architecture GGUF model with random weights.

No GGUF model ships on PyPI and nothing may be downloaded from a model hub, yet the LLM answer
path must be tested against a real OpenAI-compatible server (llama-cpp-python's). This model is
the smallest thing llama.cpp will load as a Llama: two layers, hidden size 64, and a
SentencePiece-style vocabulary of a few hundred tokens (byte fallback, printable ASCII, common
English bigrams). It writes nonsense, which is the point: whatever it says must either be cited
and verified, or not be shown.

Deterministic: the same seed gives byte-identical files. Takes well under a second.

    python scripts/make_tiny_gguf.py /tmp/tiny.gguf [--seed 0] [--layers 2] [--hidden 64]
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np

SPACE = "\u2581"  # SentencePiece's word-boundary mark
_BIGRAM_TEXT = (
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le "
    "ve co me de hi ri ro ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec "
    "pr no ct us ac ot il tr ly nc et ut ss so rs un lo wa ge ie wh ee wi em ad ol rt po we na "
    "ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl ig tu ev ld ry mp fe bl ab"
)
BIGRAMS = tuple(_BIGRAM_TEXT.split())
WORD_STARTS = tuple("abcdefghilmnoprstw")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a SentencePiece ('llama') tokenizer with byte fallback.

    Every string tokenizes: characters outside the list fall back to their UTF-8 bytes.
    """
    import gguf

    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = [SPACE] + [c for c in string.printable if c not in " \t\n\r\x0b\x0c"]
    pieces += [*BIGRAMS, *(SPACE + c for c in WORD_STARTS)]
    pieces = list(dict.fromkeys(pieces))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    # SentencePiece merges the adjacent pair with the highest score first: longer pieces win.
    scores = [0.0] * 259 + [-1000.0 + 10.0 * len(p) for p in pieces]
    return tokens, scores, [int(t) for t in types]


def write_model(
    path: Path, *, seed: int = 0, layers: int = 2, hidden: int = 64, heads: int = 4
) -> Path:
    """Write the model to ``path`` and return it."""
    import gguf

    if hidden % heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab, n_ff, head_dim = len(tokens), 2 * hidden, hidden // heads

    def weight(*shape: int) -> np.ndarray:
        # numpy shape is ggml's ne reversed: (out_features, in_features)
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"cliniq-tiny-random-llama-seed{seed}")
    writer.add_context_length(32768)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, hidden))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(hidden))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(hidden))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, n_ff))
    writer.add_tensor("output_norm.weight", ones(hidden))
    writer.add_tensor("output.weight", weight(n_vocab, hidden))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="where to write the .gguf file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        import gguf  # noqa: F401
    except ImportError:
        print("error: the gguf package is missing: pip install gguf", file=sys.stderr)
        return 2
    out = write_model(
        args.path, seed=args.seed, layers=args.layers, hidden=args.hidden, heads=args.heads
    )
    print(f"{out} ({out.stat().st_size:,} bytes, {len(vocabulary()[0])} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
