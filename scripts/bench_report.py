"""The figures of docs/benchmarks.md as Markdown tables, from the benchmarks' JSON files.

    .venv/bin/python scripts/bench_report.py [BENCH_DIR]

Reads ingest.json, quality.json and latency.json (written by `make bench`) and prints the tables
that docs/benchmarks.md quotes, so a re-run can be compared with the document line by line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(directory: Path, name: str) -> dict | None:
    path = directory / name
    return json.loads(path.read_text()) if path.exists() else None


def ingest_table(data: dict) -> list[str]:
    lines = [
        f"Ingest of {data['records']:,} MedQuAD records ({data['characters']:,} characters), "
        f"{data['threads']} compute threads, medians:",
        "",
        "| pipeline | wall s | records/s | characters/s | chunks | peak RSS MB | speed vs "
        "LangChain (paired runs) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in data.items():
        if not isinstance(row, dict):
            continue
        pairs = ", ".join(f"{x:.2f}" for x in row["paired_ratios"])
        lines.append(
            f"| {name} | {row['wall_s']} | {row['records_per_s']} | {row['chars_per_s']:,} | "
            f"{row['chunks']:,} | {row['peak_rss_mb']} | {row['speed_vs_langchain']:.2f}x "
            f"({pairs}) |"
        )
    lines.append(f"\nUnchanged re-run: {data['unchanged_rerun_s']} s.")
    return lines


def quality_table(data: dict) -> list[str]:
    backends = data["backends"]
    lines = [
        f"float32 ONNX vs torch, min cosine on 200 chunks: {data.get('fp32_torch_min_cosine')}"
    ]
    for dataset, qsets in data["results"].items():
        for qset, configs in qsets.items():
            lines += [
                "",
                f"**{dataset}, questions {qset}**",
                "",
                "| retrieval | " + " | ".join(f"{b} R@1 / R@5 / MRR@10" for b in backends) + " |",
                "|---|" + "---|" * len(backends),
            ]
            for config, by_backend in configs.items():
                cells = [
                    f"{r['R@1']:.3f} / {r['R@5']:.3f} / {r['MRR@10']:.3f}" if r else "not run"
                    for r in (by_backend.get(b) for b in backends)
                ]
                lines.append(f"| {config} | " + " | ".join(cells) + " |")
    if "largest_drop_points" in data:
        lines.append(
            f"\nLargest drop of {backends[0]} below {backends[-1]} over every figure: "
            f"{data['largest_drop_points']} points."
        )
    return lines


def _triple(v: dict | None) -> str:
    return f"{v['p50']:.0f} / {v['p95']:.0f} / {v['p99']:.0f}" if v else "-"


def latency_table(data: dict) -> list[str]:
    lines = [
        f"{data['questions']} questions x {data['rounds']} rounds, each round a fresh process:",
        "",
        "| index | chunks | answer p50 / p95 / p99 ms | retrieval alone p50 / p95 / p99 ms | "
        "answer p95 / bundled p95 | peak RSS MB | on disk | cold answer p50 / p95 / p99 ms |",
        "|---|---:|---|---|---:|---:|---:|---|",
    ]
    for tier, row in data["tiers"].items():
        a, r = row["answer_ms"], row["retrieval_ms"]
        ratio = f"{row['p95_vs_bundled']:.2f}x" if row.get("p95_vs_bundled") else "-"
        disk = row["disk_bytes"] / 1e6
        per_chunk = row["disk_bytes"] / max(1, row["chunks"])
        lines.append(
            f"| {tier} | {row['chunks']:,} | {a['p50']:.0f} / {a['p95']:.0f} / {a['p99']:.0f} | "
            f"{r['p50']:.1f} / {r['p95']:.1f} / {r['p99']:.1f} | {ratio} | {row['peak_rss_mb']} | "
            f"{disk:.0f} MB ({per_chunk / 1e3:.1f} kB/chunk) | {_triple(row.get('cold_ms'))} |"
        )
    lines += ["", "Answer latency by question set (p50 / p95 / p99 ms):", ""]
    for tier, row in data["tiers"].items():
        sets = row.get("answer_ms_by_set") or {}
        shown = "; ".join(
            f"{name} {v['p50']:.0f} / {v['p95']:.0f} / {v['p99']:.0f}" for name, v in sets.items()
        )
        lines.append(f"- {tier}: {shown}")
    return lines


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/cliniq-bench")
    for name, render in (
        ("ingest.json", ingest_table),
        ("quality.json", quality_table),
        ("quality-legacy.json", quality_table),
        ("latency.json", latency_table),
    ):
        data = _load(directory, name)
        print(f"\n### {name}\n")
        print("\n".join(render(data)) if data else f"(no {directory / name}: run make bench)")


if __name__ == "__main__":
    main()
