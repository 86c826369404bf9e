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
        s = _score(judge, [(r.claim, r.passage) for r in data["wice_dev"]])
        _, y, claim_s = _claim_max(data["wice_dev"], s.supported)
        dev_thresholds["wice"] = best_f1_threshold(y, claim_s)[0]
        s = _score(judge, [(r.claim, r.evidence) for r in data["hv_dev"]])
        y = np.array([r.label == "Supports" for r in data["hv_dev"]])
        dev_thresholds["healthver"] = best_f1_threshold(y, s.supported)[0]
        scored += len(data["wice_dev"]) + len(data["hv_dev"])

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
) -> BenchmarkReport:
    """Score every available judge (or the named ones) against WiCE and HealthVer."""
    from assistant.support import available_judges

    data_dir = Path(data_dir)
    subset = set(wice_subset_ids(data_dir))
    data = {
        "wice_subset": subset,
        "wice_test": _limit_wice(load_wice("test", data_dir), limit, subset),
        "wice_dev": _limit_wice(load_wice("dev", data_dir), limit, set()),
        "hv_test": _limit_healthver(load_healthver("test", data_dir), limit),
        "hv_dev": _limit_healthver(load_healthver("dev", data_dir), limit),
    }
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
            results.append(evaluate_judge(judge, data, resamples, seed))
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
        if r.error or not r.wice_all:
            lines.append(f"| {r.judge} | {r.version} | error: {r.error} |||||||")
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
    if report.judges and report.judges[0].wice_all:
        first = report.judges[0]
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
    lines += ["", "### Judges", "", "| judge | version | settings | thresholds from | time |"]
    lines.append("|---|---|---|---|---|")
    for r in report.judges:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines.append(
            f"| {r.judge} | {r.version} | {settings} | {r.threshold_source} | "
            f"{r.seconds:.0f} s for {r.pairs_scored} pairs |"
        )
    lines += [
        "",
        f"Bootstrap: {report.resamples} resamples, seed {report.seed}; "
        f"limit: {report.limit or 'none'}.",
        f"Regenerate: `{report.command}`",
    ]
    return "\n".join(lines)


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
    args = ap.parse_args(argv)

    import torch

    from ingest.settings import Settings

    torch.set_num_threads(args.threads)
    report = run_judge_benchmark(
        Settings(),
        judges=args.judges,
        limit=args.limit,
        data_dir=args.data_dir,
        resamples=args.resamples,
        seed=args.seed,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
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
