"""Shared pieces of the benchmarks: the seeded data samples, whole-process timing, percentiles.

Every benchmark prints a figure beside a baseline measured in the same run, runs interleaved
(A/B/A/B) and medians taken, because the machine may be shared (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
MEDQUAD = SHARED / "medquad" / "medquad_answered_collections_1-9.jsonl"
PUBMEDQA = SHARED / "pubmedqa" / "ori_pqal.json"
DEFAULT_WORK = Path(os.environ.get("CLINIQ_BENCH_DIR", "/tmp/cliniq-bench"))


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"shared dataset not found: {path} (see ../shared/datasets/README.md)")
    return path


def medquad_records() -> list[dict]:
    """Every MedQuAD record with a non-empty answer (16,407), in file order."""
    with require(MEDQUAD).open() as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return [r for r in records if str(r.get("answer") or "").strip()]


def medquad_sample(n: int = 3000, seed: int = 0) -> list[dict]:
    """The seed-0 sample of 3,000 non-empty records both the ingest and quality protocols use."""
    return random.Random(seed).sample(medquad_records(), n)


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    if not path.exists() or path.read_bytes() != tmp.read_bytes():
        os.replace(tmp, path)  # same bytes keep their mtime: incremental ingests stay free
    else:
        tmp.unlink()
    return path


@dataclass
class ProcessRun:
    wall_s: float
    peak_rss_mb: float
    stdout: str
    returncode: int


def run_process(cmd: list[str], env: dict[str, str] | None = None) -> ProcessRun:
    """Whole-process wall time and peak RSS of one child (os.wait4 gives its own rusage)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(out[-3000:], file=sys.stderr)
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return ProcessRun(wall, usage.ru_maxrss / 1024, out, proc.returncode)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_env() -> dict[str, str]:
    return {
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ANONYMIZED_TELEMETRY": "False",
        "PYTHONPATH": str(ROOT),
    }
