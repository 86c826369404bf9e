"""Support judges against human labels: WiCE (Wikipedia claims) and HealthVer (health claims).

Every judge that can run here (``assistant.support.available_judges``) scores the test splits:

* WiCE oracle-chunk test, binary "supported vs the rest" at claim level (max over a claim's
  rows): F1 and accuracy at a dev-chosen threshold, and AUROC; on all 358 claims and on the
  100 claims the WiCE paper scored its published models on (published figures beside).
* HealthVer test: Supports vs the rest (F1, accuracy, AUROC), Supports vs Refutes AUROC, and
  3-class accuracy / macro-F1 from the judge's probabilities.

Every figure carries a bootstrap 95% interval (resampling claims or pairs, fixed seed).
Thresholds come from dev only: a trained judge brings the ones chosen on its held-out dev
predictions; any other judge is run on dev and its F1-optimal threshold is used. Data is read
from ``../shared/datasets/faithfulness`` (never copied into the repository).

    python -m evals.judges_bench            # or: cliniq eval judges
    python -m evals.judges_bench --limit 30 # quick smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

import ingest  # noqa: F401  (offline hub, pinned BLAS threads, before torch loads)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets" / "faithfulness"


class DatasetMissingError(FileNotFoundError):
    """A benchmark file is not where it should be."""


@dataclass(frozen=True)
class WiceRow:
    claim_id: str
    claim: str
    evidence: tuple[str, ...]
    label: str  # supported | partially_supported | not_supported

    @property
    def passage(self) -> str:
        return "\n".join(self.evidence)


@dataclass(frozen=True)
class HealthVerRow:
    id: str
    claim: str
    evidence: str
    label: str  # Supports | Refutes | Neutral
    topic: str


def _require(path: Path) -> Path:
    if not path.exists():
        raise DatasetMissingError(
            f"benchmark data not found: {path} (see ../shared/datasets/README.md, "
            "or pass --data-dir)"
        )
    return path


def load_wice(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[WiceRow]:
    """WiCE oracle-chunk rows (about 3 per claim; the claim's label is on every row)."""
    path = _require(Path(data_dir) / "wice" / f"oracle_chunks_claim_{split}.jsonl")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                rows.append(WiceRow(r["meta"]["id"], r["claim"], tuple(r["evidence"]), r["label"]))
    return rows


def wice_subset_ids(data_dir: Path = DEFAULT_DATA_DIR) -> list[str]:
    """Claim ids of the 100-claim test subset the WiCE paper's published models were scored on."""
    folder = _require(Path(data_dir) / "wice" / "model_outputs")
    files = sorted(folder.glob("claim__*__test.entailment_score.json"))
    if not files:
        raise DatasetMissingError(f"no claim__*__test.entailment_score.json in {folder}")
    ids = set(json.loads(files[0].read_text(encoding="utf-8")))
    for f in files[1:]:
        ids &= set(json.loads(f.read_text(encoding="utf-8")))
    return sorted(ids)


def load_healthver(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[HealthVerRow]:
    path = _require(Path(data_dir) / "healthver" / f"healthver_{split}.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            HealthVerRow(
                r["id"], r["claim"].strip(), r["evidence"].strip(), r["label"], r["topic_ip"]
            )
            for r in csv.DictReader(fh)
        ]


# ------------------------------------------------------------------ metrics (numpy only)


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, tied scores get their average rank)."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1_at(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(s) >= threshold
    tp = float((pred & y).sum())
    denom = float(pred.sum() + y.sum())
    return 2 * tp / denom if denom else 0.0


def accuracy_at(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    return float(((np.asarray(s) >= threshold) == np.asarray(y, dtype=bool)).mean())


def best_f1_threshold(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """The threshold (a midpoint between observed scores) that maximises F1 on these data."""
    s = np.asarray(s, dtype=np.float64)
    values = np.unique(s)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2])
    best_t, best_f = 0.5, -1.0
    for t in candidates:
        f = f1_at(y, s, float(t))
        if f > best_f:
            best_t, best_f = float(t), f
    return best_t, best_f


def _ranks(s: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def macro_f1(y: np.ndarray, pred: np.ndarray, classes: Sequence[int]) -> float:
    scores = []
    for c in classes:
        tp = float(((pred == c) & (y == c)).sum())
        denom = float((pred == c).sum() + (y == c).sum())
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


# ------------------------------------------------------------------ report types


class Figure(BaseModel):
    """A metric with its bootstrap 95% interval."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def fmt(self, scale: float = 1.0, digits: int = 1) -> str:
        if self.value is None or math.isnan(self.value):
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.value * scale:.{digits}f}"
        return (
            f"{self.value * scale:.{digits}f} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        )


class BinaryResult(BaseModel):
    n: int = Field(description="Claims (WiCE) or pairs (HealthVer) scored.")
    positives: int
    threshold: float
    f1: Figure
    accuracy: Figure
    auroc: Figure


class HealthVerResult(BinaryResult):
    svr_auroc: Figure = Field(description="Supports vs Refutes AUROC on pairs labelled either.")
    three_class_accuracy: Figure | None = None
    three_class_macro_f1: Figure | None = None


class JudgeResult(BaseModel):
    judge: str
    version: str
    settings: dict[str, object]
    threshold_source: str
    wice_all: BinaryResult | None = None
    wice_subset: BinaryResult | None = None
    healthver: HealthVerResult | None = None
    sets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Figures on the other labelled sets (Figure dumps)."
    )
    ms_per_pair: float | None = Field(default=None, description="CPU cost at --threads.")
    seconds: float
    pairs_scored: int
    error: str | None = None


class BenchmarkReport(BaseModel):
    judges: list[JudgeResult]
    published: dict[str, dict[str, object]]
    limit: int | None
    resamples: int
    seed: int
    data_dir: str
    command: str


# ------------------------------------------------------------------ bootstrap


def bootstrap(
    n: int, stat: Callable[[np.ndarray], float], resamples: int, seed: int
) -> tuple[float | None, float | None]:
    """Percentile 95% interval of ``stat(indices)`` over resamples of 0..n-1 with replacement."""
    if resamples <= 0 or n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = stat(rng.integers(0, n, n))
        if not math.isnan(v):
            values.append(v)
    if not values:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def figure(n: int, stat: Callable[[np.ndarray], float], resamples: int, seed: int) -> Figure:
    value = stat(np.arange(n))
    low, high = bootstrap(n, stat, resamples, seed)
    return Figure(value=None if math.isnan(value) else value, low=low, high=high)


def binary_result(
    y: np.ndarray, s: np.ndarray, threshold: float, resamples: int, seed: int
) -> BinaryResult:
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=np.float64)
    n = len(y)
    return BinaryResult(
        n=n,
        positives=int(y.sum()),
        threshold=round(threshold, 4),
        f1=figure(n, lambda i: f1_at(y[i], s[i], threshold), resamples, seed),
        accuracy=figure(n, lambda i: accuracy_at(y[i], s[i], threshold), resamples, seed),
        auroc=figure(n, lambda i: auroc(y[i], s[i]), resamples, seed),
    )


# ------------------------------------------------------------------ scoring


@dataclass
class _Scores:
    supported: np.ndarray
    contradiction: np.ndarray


def _score(judge: Any, pairs: list[tuple[str, str]], batch: int = 64) -> _Scores:
    sup, con = [], []
    for i in range(0, len(pairs), batch):
        for v in judge.judge_many(pairs[i : i + batch]):
            sup.append(v.score)
            con.append(v.contradiction)
    return _Scores(np.asarray(sup, dtype=np.float64), np.asarray(con, dtype=np.float64))


def _claim_max(rows: list[WiceRow], s: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    best: dict[str, float] = {}
    label: dict[str, bool] = {}
    for r, v in zip(rows, s, strict=True):
        best[r.claim_id] = max(best.get(r.claim_id, -1.0), float(v))
        label[r.claim_id] = r.label == "supported"
    ids = sorted(best)
    return ids, np.array([label[i] for i in ids]), np.array([best[i] for i in ids])


def _limit_wice(rows: list[WiceRow], limit: int | None, prefer: set[str]) -> list[WiceRow]:
    """All rows of ``limit`` claims: half from ``prefer`` (the published subset), half others."""
    if not limit:
        return rows
    ids = sorted({r.claim_id for r in rows})
    preferred = [i for i in ids if i in prefer][: limit // 2]
    others = [i for i in ids if i not in prefer][: limit - len(preferred)]
    keep = set(preferred) | set(others)
    return [r for r in rows if r.claim_id in keep]


def _limit_healthver(rows: list[HealthVerRow], limit: int | None) -> list[HealthVerRow]:
    """``limit`` pairs taken round-robin over the three labels, so each class is present."""
    if not limit:
        return rows
    by_label: dict[str, list[HealthVerRow]] = defaultdict(list)
    for r in rows:
        by_label[r.label].append(r)
    out: list[HealthVerRow] = []
    queues = [by_label[k] for k in sorted(by_label)]
    i = 0
    while len(out) < min(limit, len(rows)):
        q = queues[i % len(queues)]
        if q:
            out.append(q.pop(0))
        i += 1
    return out


_HV = {"Supports": 0, "Refutes": 1, "Neutral": 2}


def evaluate_judge(
    judge: Any,
    data: dict[str, Any],
    resamples: int,
    seed: int,
) -> JudgeResult:
    """Score one judge on the test sets, thresholds from dev."""
    t = time.time()
    dev_thresholds = dict(getattr(judge, "dev_thresholds", {}) or {})
    scored = 0
    if {"wice", "healthver"} <= dev_thresholds.keys():
        source = "dev (held-out predictions at training time)"
    else:
        source = "dev (F1-optimal on this run's dev scores)"
        if "wice" not in dev_thresholds:
            s = _score(judge, [(r.claim, r.passage) for r in data["wice_dev"]])
            _, y, claim_s = _claim_max(data["wice_dev"], s.supported)
            dev_thresholds["wice"] = best_f1_threshold(y, claim_s)[0]
            scored += len(data["wice_dev"])
        else:
            source = "dev: WiCE held out at training time; HealthVer F1-optimal on its dev part"
        hv_dev = data.get("hv_dev_heldout") or data["hv_dev"]
        s = _score(judge, [(r.claim, r.evidence) for r in hv_dev])
        y = np.array([r.label == "Supports" for r in hv_dev])
        dev_thresholds["healthver"] = best_f1_threshold(y, s.supported)[0]
        scored += len(hv_dev)

    wice = data["wice_test"]
    s = _score(judge, [(r.claim, r.passage) for r in wice])
    scored += len(wice)
    ids, y, claim_s = _claim_max(wice, s.supported)
    th = float(dev_thresholds["wice"])
    wice_all = binary_result(y, claim_s, th, resamples, seed)
    subset = np.array([i in data["wice_subset"] for i in ids])
    wice_subset = (
        binary_result(y[subset], claim_s[subset], th, resamples, seed) if subset.any() else None
    )

    hv = data["hv_test"]
    s = _score(judge, [(r.claim, r.evidence) for r in hv])
    scored += len(hv)
    y3 = np.array([_HV[r.label] for r in hv])
    th = float(dev_thresholds["healthver"])
    base = binary_result(y3 == 0, s.supported, th, resamples, seed)
    sr = np.flatnonzero(y3 != 2)
    svr = figure(len(sr), lambda i: auroc(y3[sr][i] == 0, s.supported[sr][i]), resamples, seed)
    three_acc = three_f1 = None
    if s.contradiction.max(initial=0.0) > 0:
        probs = np.stack(
            [s.supported, s.contradiction, np.clip(1 - s.supported - s.contradiction, 0, 1)], 1
        )
        pred = probs.argmax(axis=1)
        n = len(y3)
        three_acc = figure(n, lambda i: float((pred[i] == y3[i]).mean()), resamples, seed)
        three_f1 = figure(n, lambda i: macro_f1(y3[i], pred[i], (0, 1, 2)), resamples, seed)
    healthver = HealthVerResult(
        **base.model_dump(),
        svr_auroc=svr,
        three_class_accuracy=three_acc,
        three_class_macro_f1=three_f1,
    )
    return JudgeResult(
        judge=judge.name,
        version=str(judge.version),
        settings=dict(judge.settings()),
        threshold_source=source,
        wice_all=wice_all,
        wice_subset=wice_subset,
        healthver=healthver,
        seconds=round(time.time() - t, 1),
        pairs_scored=scored,
    )


# ------------------------------------------------------------------ the other labelled sets

OTHER_SETS = ("citint", "snli", "climate_fever", "summedits", "perturbations")
ALL_SETS = ("wice", "healthver", *OTHER_SETS)  # wice and healthver are scored together


def _labels3(
    judge: Any, pairs: list[tuple[str, str]], batch: int = 64
) -> tuple[_Scores, np.ndarray]:
    """Scores and 3-way labels (0 supported, 1 contradicted, 2 not enough information)."""
    sup, con, lab = [], [], []
    code = {"supported": 0, "contradicted": 1}
    for i in range(0, len(pairs), batch):
        for v in judge.judge_many(pairs[i : i + batch]):
            sup.append(v.score)
            con.append(v.contradiction)
            lab.append(code.get(str(v.label), 2))
    return _Scores(np.asarray(sup, float), np.asarray(con, float)), np.asarray(lab)


def _fig(n: int, stat: Callable[[np.ndarray], float], resamples: int, seed: int) -> dict:
    return figure(n, stat, resamples, seed).model_dump()


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the recalls of the two classes (``y``, ``pred`` boolean)."""
    if not y.any() or y.all():
        return float("nan")
    return 0.5 * (float(pred[y].mean()) + float((~pred[~y]).mean()))


def evaluate_other_sets(
    judge: Any, data: dict[str, Any], sets: Sequence[str], resamples: int, seed: int
) -> tuple[dict[str, dict[str, Any]], int]:
    """Citation-Integrity, SNLI, CLIMATE-FEVER, SummEdits and corpus perturbations (test parts;
    SummEdits' threshold from its dev part or the judge's own dev threshold)."""
    out: dict[str, dict[str, Any]] = {}
    scored = 0
    for name in sets:
        if data[name]:
            out[name], n = _evaluate_set(judge, name, data[name], data, resamples, seed)
            scored += n
    return out, scored


def _evaluate_set(
    judge: Any, name: str, rows: list[Any], data: dict[str, Any], resamples: int, seed: int
) -> tuple[dict[str, Any], int]:
    """One set's figures and the number of pairs scored."""
    scored = 0
    pairs = [(r.claim, r.passage) for r in rows]
    sc, lab = _labels3(judge, pairs)
    scored += len(pairs)
    y = np.array([r.label for r in rows])
    n = len(y)
    res: dict[str, Any] = {"n": n}
    if name in ("citint", "climate_fever", "healthver"):
        sr = np.flatnonzero(y != 2)
        ys, ss = y[sr] == 0, sc.supported[sr]
        res["svr_auroc"] = _fig(len(sr), lambda i: auroc(ys[i], ss[i]), resamples, seed)
        res["svr_n"] = len(sr)
    if name in ("citint", "snli", "climate_fever"):
        res["accuracy3"] = _fig(n, lambda i: float((lab[i] == y[i]).mean()), resamples, seed)
        res["macro_f1_3"] = _fig(n, lambda i: macro_f1(y[i], lab[i], (0, 1, 2)), resamples, seed)
    if name == "summedits":
        th = (getattr(judge, "dev_thresholds", {}) or {}).get("summedits")
        source = "judge's held-out dev"
        if th is None:
            dev = data["summedits_dev"]
            ds = _score(judge, [(r.claim, r.passage) for r in dev])
            scored += len(dev)
            yd = np.array([r.label == 0 for r in dev])
            cands = np.unique(np.round(ds.supported, 4))
            th = float(max(cands, key=lambda t: balanced_accuracy(yd, ds.supported >= t)))
            source = "this run's SummEdits dev part"
        ok = y == 0
        pred = sc.supported >= th
        domains = sorted({r.source.split(":")[1] for r in rows})
        dom = np.array([r.source.split(":")[1] for r in rows])
        per = {}
        for d in domains:
            idx = np.flatnonzero(dom == d)
            per[d] = _fig(
                len(idx),
                lambda i, idx=idx: balanced_accuracy(ok[idx][i], pred[idx][i]),
                resamples,
                seed,
            )
        res["per_domain"] = per
        # The mean over domains, resampled within each domain.
        groups = [np.flatnonzero(dom == d) for d in domains]

        def mean_bacc(i: np.ndarray) -> float:
            del i
            return float(np.mean([balanced_accuracy(ok[g], pred[g]) for g in groups]))

        value = mean_bacc(np.arange(n))
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(resamples):
            picks = [rng.choice(g, len(g)) for g in groups]
            boots.append(np.mean([balanced_accuracy(ok[g], pred[g]) for g in picks]))
        lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (None, None)
        res["mean_bacc"] = {
            "value": value,
            "low": None if lo is None else float(lo),
            "high": None if hi is None else float(hi),
        }
        res["threshold"] = round(float(th), 4)
        res["threshold_source"] = source
    if name == "perturbations":
        kinds = np.array([r.kind for r in rows])
        halves = np.array([r.split for r in rows])
        flagged = lab != 0
        per = {}
        for half in ("test", "all"):
            keep = np.ones(n, bool) if half == "all" else halves == "test"
            ctl = np.flatnonzero(keep & (kinds == "control"))
            pert = np.flatnonzero(keep & (kinds != "control"))
            per[half] = {
                "perturbed_flagged": _fig(
                    len(pert), lambda i, p=pert: float(flagged[p][i].mean()), resamples, seed
                ),
                "controls_flagged": _fig(
                    len(ctl), lambda i, c=ctl: float(flagged[c][i].mean()), resamples, seed
                ),
                "n_perturbed": len(pert),
                "n_controls": len(ctl),
                "by_kind": {
                    k: round(float(flagged[keep & (kinds == k)].mean()), 4)
                    for k in sorted(set(kinds[keep]))
                },
            }
        res.update(per)
    return res, scored


def time_judge(judge: Any, pairs: list[tuple[str, str]], repeats: int = 1) -> float:
    """Milliseconds per pair, batched as the benchmark batches, after one warm-up batch."""
    judge.judge_many(pairs[:8])
    t = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(pairs), 16):
            judge.judge_many(pairs[i : i + 16])
    return 1000 * (time.perf_counter() - t) / (repeats * len(pairs))


# ------------------------------------------------------------------ published figures


PUBLISHED_WICE = {
    # WiCE paper, result_table.tex: claim level, oracle chunks, supported vs the rest, n=100.
    "T5-3B (ANLI)": {"file": "t5-3b-anli", "f1": 61.8, "accuracy": 74.0},
    "GPT-4": {"file": "gpt-4-0613", "f1": 61.0, "accuracy": 77.0},
    "T5-3B (ANLI+WiCE; trained on WiCE train)": {
        "file": "t5-3b-anli-wice",
        "f1": 77.8,
        "accuracy": 88.0,
    },
    "GPT-3.5": {"file": "gpt-3.5-turbo-0613", "f1": 39.3, "accuracy": 32.0},
}
PUBLISHED_HEALTHVER = {
    # Sarrouti et al. 2021, 3-class test, fine-tuned on the HealthVer train split (not here).
    "T5 (fine-tuned on HealthVer train)": {"accuracy": 80.69, "macro_f1": 79.60},
    "SciBERT (fine-tuned on HealthVer train)": {"accuracy": 78.11, "macro_f1": 77.21},
}


def published_figures(
    data_dir: Path, wice_test: list[WiceRow], resamples: int, seed: int
) -> dict[str, dict[str, object]]:
    """Published F1/accuracy, plus AUROC (with interval) recomputed from their released scores."""
    labels = {r.claim_id: r.label == "supported" for r in wice_test}
    out: dict[str, dict[str, object]] = {}
    for name, info in PUBLISHED_WICE.items():
        entry: dict[str, object] = {"f1": info["f1"], "accuracy": info["accuracy"]}
        path = (
            Path(data_dir)
            / "wice"
            / "model_outputs"
            / (f"claim__{info['file']}__test.entailment_score.json")
        )
        if path.exists():
            scores = json.loads(path.read_text(encoding="utf-8"))
            ids = sorted(i for i in scores if i in labels)
            if ids:
                y = np.array([labels[i] for i in ids])
                s = np.array([float(scores[i]) for i in ids])
                entry["auroc"] = figure(
                    len(ids), lambda i, y=y, s=s: auroc(y[i], s[i]), resamples, seed
                ).model_dump()
                entry["n"] = len(ids)
        out[f"WiCE subset: {name}"] = entry
    for name, info in PUBLISHED_HEALTHVER.items():
        out[f"HealthVer: {name}"] = dict(info)
    return out


# ------------------------------------------------------------------ entry point


def run_judge_benchmark(
    settings: Any = None,
    judges: Sequence[str] | None = None,
    limit: int | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    resamples: int = 1000,
    seed: int = 0,
    model: Any = None,
    progress: Callable[[str], None] | None = None,
    sets: Sequence[str] = ALL_SETS,
    timing_pairs: int = 0,
) -> BenchmarkReport:
    """Score every available judge (or the named ones) against WiCE and HealthVer, and the
    other labelled sets named in ``sets``; with ``timing_pairs``, time each judge per pair."""
    from assistant.support import available_judges
    from evals import judge_sets as js

    data_dir = Path(data_dir)
    subset = set(wice_subset_ids(data_dir))
    data = {
        "wice_subset": subset,
        "wice_test": _limit_wice(load_wice("test", data_dir), limit, subset),
        "wice_dev": _limit_wice(load_wice("dev", data_dir), limit, set()),
        "hv_test": _limit_healthver(load_healthver("test", data_dir), limit),
        "hv_dev": _limit_healthver(load_healthver("dev", data_dir), limit),
    }
    heldout = {r.claim for r in js.load_healthver("dev", data_dir)}
    data["hv_dev_heldout"] = [r for r in data["hv_dev"] if r.claim in heldout]

    def cut(rows: list[Any]) -> list[Any]:
        if not limit:
            return rows
        by: dict[int, list[Any]] = defaultdict(list)
        for r in rows:
            by[r.label].append(r)
        return [r for k in sorted(by) for r in by[k][: max(1, limit // len(by))]]

    loaders = {
        "citint": lambda: js.load_citint("test", data_dir),
        "snli": lambda: js.load_snli("test", data_dir),
        "climate_fever": lambda: js.load_climate_fever("test", data_dir),
        "summedits": lambda: js.load_summedits("test", data_dir),
        "perturbations": lambda: js.load_perturbations(),
    }
    core = bool({"wice", "healthver"} & set(sets))
    sets = [n for n in sets if n in OTHER_SETS]
    for name in sets:
        data[name] = cut(loaders[name]())
    if "summedits" in sets:
        data["summedits_dev"] = cut(js.load_summedits("dev", data_dir))
    factories = available_judges(settings, model)
    names = list(judges) if judges else list(factories)
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown or unavailable judges {unknown}; available: {list(factories)}")
    results = []
    for name in names:
        if progress:
            progress(f"judging with {name} ...")
        try:
            judge = factories[name]()
            t0 = time.time()
            result = (
                evaluate_judge(judge, data, resamples, seed)
                if core
                else JudgeResult(
                    judge=judge.name,
                    version=str(judge.version),
                    settings=dict(judge.settings()),
                    threshold_source="-",
                    seconds=0.0,
                    pairs_scored=0,
                )
            )
            others, n_other = evaluate_other_sets(judge, data, sets, resamples, seed)
            result.sets, result.pairs_scored = others, result.pairs_scored + n_other
            if timing_pairs:
                pairs = [(r.claim, r.evidence) for r in data["hv_test"][:timing_pairs]]
                result.ms_per_pair = round(time_judge(judge, pairs), 1)
            result.seconds = round(time.time() - t0, 1)
            results.append(result)
        except Exception as exc:  # one broken judge must not hide the others' figures
            results.append(
                JudgeResult(
                    judge=name,
                    version="?",
                    settings={},
                    threshold_source="-",
                    seconds=0.0,
                    pairs_scored=0,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
    command = "python -m evals.judges_bench" + (f" --limit {limit}" if limit else "")
    if judges:
        command += " --judges " + " ".join(judges)
    if tuple(sets) != OTHER_SETS or not core:
        command += " --sets " + " ".join((["wice", "healthver"] if core else []) + list(sets))
    return BenchmarkReport(
        judges=results,
        published=published_figures(data_dir, data["wice_test"], resamples, seed),
        limit=limit,
        resamples=resamples,
        seed=seed,
        data_dir=str(data_dir),
        command=command,
    )


def format_table(report: BenchmarkReport) -> str:
    """The report as Markdown tables (figures in %, AUROC as a fraction, 95% intervals)."""
    lines = [
        "### WiCE oracle-chunk test, claim level, supported vs the rest",
        "",
        "| judge | version | subset F1 | subset acc | subset AUROC | all F1 | all acc "
        "| all AUROC | threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.judges:
        if r.error:
            lines.append(f"| {r.judge} | {r.version} | error: {r.error} |||||||")
            continue
        if not r.wice_all:
            continue
        sub = r.wice_subset
        lines.append(
            f"| {r.judge} | {r.version} | "
            + (
                f"{sub.f1.fmt(100)} | {sub.accuracy.fmt(100)} | {sub.auroc.fmt(1, 3)} | "
                if sub
                else "n/a | n/a | n/a | "
            )
            + f"{r.wice_all.f1.fmt(100)} | {r.wice_all.accuracy.fmt(100)} | "
            f"{r.wice_all.auroc.fmt(1, 3)} | {r.wice_all.threshold:.3f} |"
        )
    for name, p in report.published.items():
        if name.startswith("WiCE"):
            au = p.get("auroc")
            au_text = Figure(**au).fmt(1, 3) if isinstance(au, dict) else "n/a"
            lines.append(
                f"| *published: {name.removeprefix('WiCE subset: ')}* | paper | {p['f1']} "
                f"| {p['accuracy']} | {au_text} | | | | |"
            )
    first = next((r for r in report.judges if r.wice_all), None)
    if first is not None and first.wice_all:
        n_sub = first.wice_subset.n if first.wice_subset else 0
        lines.append("")
        lines.append(
            f"Claims: all n={first.wice_all.n} ({first.wice_all.positives} supported), "
            f"subset n={n_sub}."
        )
    lines += [
        "",
        "### HealthVer test",
        "",
        "| judge | S-vs-rest F1 | S-vs-rest acc | S-vs-rest AUROC | S-vs-R AUROC | 3-class acc "
        "| 3-class macro-F1 | threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.judges:
        h = r.healthver
        if r.error or not h:
            continue
        acc3 = h.three_class_accuracy.fmt(100) if h.three_class_accuracy else "n/a"
        f13 = h.three_class_macro_f1.fmt(100) if h.three_class_macro_f1 else "n/a"
        lines.append(
            f"| {r.judge} | {h.f1.fmt(100)} | {h.accuracy.fmt(100)} | {h.auroc.fmt(1, 3)} | "
            f"{h.svr_auroc.fmt(1, 3)} | {acc3} | {f13} | {h.threshold:.3f} |"
        )
    for name, p in report.published.items():
        if name.startswith("HealthVer"):
            lines.append(
                f"| *published: {name.removeprefix('HealthVer: ')}* | | | | | {p['accuracy']} "
                f"| {p['macro_f1']} | |"
            )
    lines += _other_tables(report)
    lines += ["", "### Judges", "", "| judge | version | settings | thresholds from | time |"]
    lines.append("|---|---|---|---|---|")
    for r in report.judges:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        cost = f"; {r.ms_per_pair} ms/pair" if r.ms_per_pair is not None else ""
        lines.append(
            f"| {r.judge} | {r.version} | {settings} | {r.threshold_source} | "
            f"{r.seconds:.0f} s for {r.pairs_scored} pairs{cost} |"
        )
    lines += [
        "",
        f"Bootstrap: {report.resamples} resamples, seed {report.seed}; "
        f"limit: {report.limit or 'none'}.",
        f"Regenerate: `{report.command}`",
    ]
    return "\n".join(lines)


def _f(d: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    return Figure(**d).fmt(scale, digits) if isinstance(d, dict) else "n/a"


def _other_tables(report: BenchmarkReport) -> list[str]:
    """Citation-Integrity, SNLI, CLIMATE-FEVER, SummEdits and perturbation tables."""
    judged = [r for r in report.judges if r.sets and not r.error]
    if not judged:
        return []
    lines: list[str] = []

    def n_of(name: str, key: str = "n") -> object:
        return next((r.sets[name][key] for r in judged if name in r.sets), "?")

    if any("citint" in r.sets for r in judged):
        lines += [
            "",
            f"### Citation-Integrity test ({n_of('citint')} citing sentences against the cited "
            f"abstract; {n_of('citint', 'svr_n')} SUPPORT or REFUTE)",
            "",
            "| judge | SUPPORT-vs-REFUTE AUROC | 3-way macro-F1 | 3-way acc |",
            "|---|---|---|---|",
        ]
        for r in judged:
            c = r.sets.get("citint")
            if c:
                lines.append(
                    f"| {r.judge} | {_f(c['svr_auroc'], 1, 3)} | {_f(c['macro_f1_3'], 100)} | "
                    f"{_f(c['accuracy3'], 100)} |"
                )
    if any("snli" in r.sets for r in judged):
        lines += [
            "",
            f"### SNLI test ({n_of('snli')} pairs)",
            "",
            "| judge | 3-way accuracy | 3-way macro-F1 |",
            "|---|---|---|",
        ]
        for r in judged:
            c = r.sets.get("snli")
            if c:
                lines.append(
                    f"| {r.judge} | {_f(c['accuracy3'], 100)} | {_f(c['macro_f1_3'], 100)} |"
                )
    if any("climate_fever" in r.sets for r in judged):
        lines += [
            "",
            f"### CLIMATE-FEVER, our claim-level test split ({n_of('climate_fever')} evidence "
            f"pairs of 20% of claims; {n_of('climate_fever', 'svr_n')} SUPPORTS or REFUTES)",
            "",
            "| judge | Supports-vs-Refutes AUROC | 3-way macro-F1 |",
            "|---|---|---|",
        ]
        for r in judged:
            c = r.sets.get("climate_fever")
            if c:
                lines.append(
                    f"| {r.judge} | {_f(c['svr_auroc'], 1, 3)} | {_f(c['macro_f1_3'], 100)} |"
                )
    if any("summedits" in r.sets for r in judged):
        domains = sorted(
            next(r.sets["summedits"]["per_domain"] for r in judged if "summedits" in r.sets)
        )
        lines += [
            "",
            f"### SummEdits, test half of the documents of each domain ({n_of('summedits')} "
            "summaries), balanced accuracy %",
            "",
            "| judge | mean of domains | " + " | ".join(domains) + " | threshold |",
            "|---|---|" + "---|" * len(domains) + "---|",
        ]
        for r in judged:
            c = r.sets.get("summedits")
            if c:
                cells = " | ".join(_f(c["per_domain"][d], 100) for d in domains)
                lines.append(
                    f"| {r.judge} | {_f(c['mean_bacc'], 100)} | {cells} | {c['threshold']:.3f} |"
                )
    if any("perturbations" in r.sets for r in judged):
        p0 = next(r.sets["perturbations"] for r in judged if "perturbations" in r.sets)
        kinds = [k for k in p0["all"]["by_kind"] if k != "control"]
        lines += [
            "",
            "### Corpus perturbations (`evals/data/perturbations.jsonl`: "
            f"{p0['all']['n_perturbed']} perturbed claims, {p0['all']['n_controls']} controls; "
            "the test half, "
            f"{p0['test']['n_perturbed']} / {p0['test']['n_controls']}, was never trained on)",
            "",
            "| judge | perturbed flagged, test half | controls flagged, test half "
            "| perturbed flagged, all | controls flagged, all | " + " | ".join(kinds) + " |",
            "|---|---|---|---|---|" + "---|" * len(kinds),
        ]
        for r in judged:
            c = r.sets.get("perturbations")
            if c:
                by = " | ".join(
                    f"{100 * c['all']['by_kind'].get(k, float('nan')):.0f}" for k in kinds
                )
                lines.append(
                    f"| {r.judge} | {_f(c['test']['perturbed_flagged'], 100)} | "
                    f"{_f(c['test']['controls_flagged'], 100)} | "
                    f"{_f(c['all']['perturbed_flagged'], 100)} | "
                    f"{_f(c['all']['controls_flagged'], 100)} | {by} |"
                )
        lines += [
            "",
            "Per-kind columns: % of all perturbed claims of that kind flagged (not supported).",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Support judges against human labels.")
    ap.add_argument("--judges", nargs="*", help="judge names (default: every available one)")
    ap.add_argument("--limit", type=int, default=None, help="claims / pairs per split (smoke)")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the full report as JSON here")
    ap.add_argument("--markdown", type=Path, help="write the tables as Markdown here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sets", nargs="*", default=list(ALL_SETS), help=f"sets: {' '.join(ALL_SETS)}")
    ap.add_argument("--timing", type=int, default=256, help="HealthVer pairs timed per judge")
    ap.add_argument(
        "--write-doc",
        action="store_true",
        help="regenerate the 3-way judges' section of docs/judges.md (cached verdicts)",
    )
    ap.add_argument(
        "--choose-window",
        action="store_true",
        help="dev figures of each way of reading long passages (fit, window rules)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="verdict cache for --write-doc")
    ap.add_argument("--no-extra", action="store_true", help="--write-doc: target sets only")
    args = ap.parse_args(argv)

    import torch

    from ingest.settings import Settings

    torch.set_num_threads(args.threads)
    if args.write_doc or args.choose_window:
        from evals import judges_doc

        cache = args.cache or judges_doc.DEFAULT_CACHE
        say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        if args.choose_window:
            print(
                json.dumps(judges_doc.choose_window_rule(cache, args.data_dir, say=say), indent=1)
            )
            return 0
        section = judges_doc.write_doc(
            cache,
            args.data_dir,
            args.resamples,
            extra=not args.no_extra,
            say=say,
            judges=args.judges,
            limit=args.limit,
        )
        print(section)
        return 0
    report = run_judge_benchmark(
        Settings(),
        judges=args.judges,
        limit=args.limit,
        data_dir=args.data_dir,
        resamples=args.resamples,
        seed=args.seed,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        sets=args.sets,
        timing_pairs=args.timing,
    )
    table = format_table(report)
    print(table)
    if args.json:
        args.json.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
