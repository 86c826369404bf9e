"""Ingest throughput: `cliniq ingest` against the plain LangChain pipeline, whole process.

    .venv/bin/python scripts/bench_ingest.py [--records 1000] [--runs 3] [--backends auto,torch]

Data: the first N records of the seed-0 sample of 3,000 non-empty MedQuAD records. Each run is a
fresh index; the commands alternate (LangChain, cliniq, LangChain, cliniq, ...), and medians of
wall time and peak RSS are reported, with cliniq's speed as a ratio of the baseline's from the
same run. Chunk counts differ (each splitter has its own rules), so throughput is given in
records/s and characters/s. Ends with an unchanged re-run of the last cliniq index. `--json`
writes the figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_WORK, ROOT, bench_env, medquad_sample, run_process, write_jsonl

PY = sys.executable
CLINIQ = str(Path(PY).with_name("cliniq"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--backends", default="auto", help="cliniq embedding backends to time, comma-separated"
    )
    parser.add_argument("--threads", type=int, default=2, help="compute threads, both pipelines")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "ingest")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    records = medquad_sample()[: args.records]
    data = write_jsonl(records, args.work / f"medquad-{args.records}.jsonl")
    chars = sum(len(r["answer"]) for r in records)
    print(f"{len(records)} MedQuAD records, {chars:,} answer characters ({data})")
    env = bench_env()
    env["CLINIQ_EMBEDDING__BATCH_THREADS"] = str(args.threads)

    systems: dict[str, list[str]] = {"langchain": []}
    for backend in args.backends.split(","):
        systems[f"cliniq[{backend}]"] = [backend]
    results: dict[str, list[dict]] = {name: [] for name in systems}
    for run in range(args.runs):
        for name, extra in systems.items():
            target = args.work / f"index-{_slug(name)}"
            shutil.rmtree(target, ignore_errors=True)
            if name == "langchain":
                cmd = [PY, "scripts/bench_langchain_ingest.py", str(data), str(target)]
                got = run_process([*cmd, "--threads", str(args.threads)], env)
                chunks = json.loads(got.stdout.strip().splitlines()[-1])["chunks"]
            else:
                run_env = {**env, "CLINIQ_EMBEDDING__BACKEND": extra[0]}
                got = run_process([CLINIQ, "ingest", str(data), "--index", str(target)], run_env)
                chunks = _chunks_of(target, extra[0])
            row = {"wall_s": got.wall_s, "rss_mb": got.peak_rss_mb, "chunks": chunks}
            results[name].append(row)
            print(f"  run {run + 1} {name:<22} {got.wall_s:7.1f} s  {got.peak_rss_mb:6.0f} MB")

    base = statistics.median(r["wall_s"] for r in results["langchain"])
    summary = {}
    print(
        f"\n{'pipeline':<22}{'wall s':>8}{'rec/s':>8}{'chars/s':>10}{'chunks':>8}"
        f"{'RSS MB':>8}{'speed vs LangChain':>20}"
    )
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        rss = statistics.median(r["rss_mb"] for r in runs)
        ratios = [
            lc["wall_s"] / r["wall_s"] for lc, r in zip(results["langchain"], runs, strict=True)
        ]
        summary[name] = {
            "wall_s": round(wall, 1),
            "records_per_s": round(len(records) / wall, 1),
            "chars_per_s": round(chars / wall),
            "chunks": runs[0]["chunks"],
            "peak_rss_mb": round(rss),
            "speed_vs_langchain": round(base / wall, 2),
            "paired_ratios": [round(x, 2) for x in ratios],
        }
        s = summary[name]
        print(
            f"{name:<22}{wall:>8.1f}{s['records_per_s']:>8.1f}{s['chars_per_s']:>10,}"
            f"{s['chunks']:>8}{rss:>8.0f}{base / wall:>19.2f}x"
        )

    last = [n for n in systems if n != "langchain"][-1]
    target = args.work / f"index-{_slug(last)}"
    run_env = {**env, "CLINIQ_EMBEDDING__BACKEND": systems[last][0]}
    again = run_process([CLINIQ, "ingest", str(data), "--index", str(target)], run_env)
    first = results[last][-1]["wall_s"]
    print(
        f"\nunchanged re-run of {last}: {again.wall_s:.1f} s ({again.wall_s / first:.0%} of the "
        "first ingest, start-up included)"
    )
    summary["unchanged_rerun_s"] = round(again.wall_s, 1)
    summary.update(records=len(records), characters=chars, threads=args.threads)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))


def _slug(name: str) -> str:
    return re.sub(r"\W", "", name)


def _chunks_of(index_dir: Path, backend: str) -> int:
    import sqlite3

    with sqlite3.connect(index_dir / "manifest.sqlite3") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


if __name__ == "__main__":
    assert ROOT.is_dir()
    main()
