"""Answer latency on questions the process has not seen, verification included, model loaded.

    .venv/bin/python scripts/bench_answer.py [--tiers bundled,1k,10k,100k] [--rounds 2]

Each tier is an index; each (tier, round) is a fresh process that loads the assistant (model,
judge, index, BM25) before timing starts and then asks every question once: the first time that
process sees it. Retrieval alone (hybrid, the default settings) is timed on the same question
right after, with the question's cached query vector dropped, so it pays its own embedding.
Rounds alternate the tiers (bundled, 1k, 10k, 100k, bundled, ...) and the percentiles pool the
rounds; each tier's p95 is also given as a ratio of the bundled tier's p95 in the same round.

Tiers: `bundled` is corpus/ alone. 1k and 10k add the shortest prefix of MedQuAD records (file
order) that reaches that many chunks; 100k is every MedQuAD answer and the 1,000 PubMedQA
abstracts. All three are chunked at 64 tokens without overlap, so that the shared data reaches
100,000 chunks (102,806 with the corpus). The 100k
index is embedded once (42 minutes with int8 on a busy 2-core machine) and kept under --work; the
smaller tiers take their vectors from its embedding cache. Questions: the bundled suite's
single-turn questions (evals/suites/rls.yaml) and 20 MedQuAD questions (seed 3).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    DEFAULT_WORK,
    PUBMEDQA,
    ROOT,
    bench_env,
    medquad_records,
    percentile,
    run_process,
    write_jsonl,
)

TIERS = {"bundled": 0, "1k": 1_000, "10k": 10_000, "100k": 100_000}
SCALE_CHUNKING = {"CLINIQ_CHUNKING__MAX_TOKENS": "64", "CLINIQ_CHUNKING__OVERLAP_TOKENS": "0"}


def questions() -> list[tuple[str, str]]:
    """(question set, question): the bundled suite's first turns, then 20 MedQuAD questions."""
    import yaml

    suite = yaml.safe_load((ROOT / "evals" / "suites" / "rls.yaml").read_text())
    cases = suite["cases"]
    out = [("suite", c["user_input"]) for c in cases if isinstance(c.get("user_input"), str)]
    medquad = random.Random(3).sample(medquad_records(), 20)
    return out + [("medquad", r["question"]) for r in medquad]


def tier_inputs(tier: str, work: Path) -> list[Path]:
    """Files for a tier: corpus/ plus enough MedQuAD documents for about `TIERS[tier]` chunks."""
    target = TIERS[tier]
    if target == 0:
        return [ROOT / "corpus"]
    records = medquad_records()
    if target >= 100_000:
        return [ROOT / "corpus", write_jsonl(records, work / "medquad-all.jsonl"), PUBMEDQA]
    # The shortest prefix of MedQuAD records (file order) whose chunks, with the corpus's,
    # reach the tier's size (bisection; chunking is cheap next to embedding).
    corpus_chunks = _chunk_count([ROOT / "corpus"])
    lo, hi = 1, len(records)
    while lo < hi:
        mid = (lo + hi) // 2
        path = write_jsonl(records[:mid], work / f"medquad-{tier}.jsonl")
        if corpus_chunks + _chunk_count([path]) >= target:
            hi = mid
        else:
            lo = mid + 1
    return [ROOT / "corpus", write_jsonl(records[:lo], work / f"medquad-{tier}.jsonl")]


def _chunk_count(paths: list[Path]) -> int:
    from ingest.chunking import chunk_document
    from ingest.loaders import iter_files, load_file_result
    from ingest.settings import ChunkingSettings

    chunking = ChunkingSettings(max_tokens=64, overlap_tokens=0)
    docs = [d for f in iter_files(paths) for d in load_file_result(f).documents]
    return sum(len(chunk_document(d, chunking)) for d in docs)


def seed_cache(src: Path, dst: Path) -> None:
    """Give a new index the 100k index's embedding cache: the same inputs are not embedded
    again (the cache is keyed by backend and input text)."""
    if not src.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    from ingest.docstore import DocStore

    DocStore(dst).close()  # creates the schema
    with sqlite3.connect(dst) as conn:
        conn.execute("ATTACH DATABASE ? AS big", (str(src),))
        conn.execute("INSERT OR IGNORE INTO embeddings SELECT * FROM big.embeddings")
        conn.commit()
        conn.execute("DETACH DATABASE big")


def build(tier: str, work: Path, env: dict[str, str]) -> Path:
    index = work / f"index-{tier}"
    tier_env = {**env, **(SCALE_CHUNKING if TIERS[tier] else {})}
    if TIERS[tier] and tier != "100k":
        seed_cache(work / "index-100k" / "manifest.sqlite3", index / "manifest.sqlite3")
    paths = [str(p) for p in tier_inputs(tier, work)]
    cliniq = str(Path(sys.executable).with_name("cliniq"))
    got = run_process([cliniq, "ingest", *paths, "--index", str(index)], tier_env)
    with sqlite3.connect(index / "manifest.sqlite3") as conn:
        chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    print(
        f"  index {tier}: {chunks:,} chunks ({got.wall_s:.0f} s, peak RSS {got.peak_rss_mb:.0f} MB)"
    )
    return index


def measure(index: Path, out: Path, limit: int = 0) -> None:
    """Child process: load everything, then time each question once."""
    import ingest  # noqa: F401
    from assistant.conversation import Session
    from assistant.engine import Assistant
    from assistant.retrieve import Retriever
    from ingest.settings import Settings
    from ingest.store import Index

    settings = Settings()
    settings.store.index_dir = index
    started = time.perf_counter()
    assistant = Assistant(settings)
    # Model loaded: the judge's encoder too, and both indexes' tables.
    assistant.verifier.warm_up()
    assistant.index.warm_up()
    retriever = Retriever(Index.open(settings, assistant.embedder), settings.retrieval)
    retriever.index.warm_up()
    startup = time.perf_counter() - started
    rows = []
    asked = questions()
    if limit:
        asked = [q for name in ("suite", "medquad") for q in asked if q[0] == name]
        asked = [q for q in asked if q[0] == "suite"][:limit] + [
            q for q in asked if q[0] == "medquad"
        ][:limit]
    for qset, question in asked:
        t = time.perf_counter()
        answer = assistant.ask(question, session=Session())
        total = (time.perf_counter() - t) * 1000
        for embedder in (assistant.embedder, retriever.index.embedder):
            embedder.forget([question])
        t = time.perf_counter()
        retriever.retrieve(question)
        retrieval = (time.perf_counter() - t) * 1000
        rows.append(
            {
                "set": qset,
                "question": question,
                "answer_ms": total,
                "retrieval_ms": retrieval,
                "steps": answer.timings_ms,
            }
        )
    # Then every question again, each with every memo emptied first (query vectors, the
    # judge's encoded sentences and the names it found, the profile's readings of passages):
    # what an answer costs when none of its passages was cited before.
    for row in rows:
        assistant.embedder.clear()
        assistant.verifier.clear()
        assistant.sources.profile.forget()
        t = time.perf_counter()
        assistant.ask(row["question"], session=Session())
        row["cold_ms"] = (time.perf_counter() - t) * 1000
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"startup_s": startup, "rows": rows, "peak_rss_mb": rss}))


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiers", default="bundled,1k,10k,100k")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "latency")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="questions per set (a quick look)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.out, args.limit)
        return

    tiers = args.tiers.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    print("building or reusing the indexes (100k first: the others reuse its vectors)")
    order = sorted(tiers, key=lambda t: -TIERS[t])
    indexes = {t: build(t, args.work, env) for t in order}
    results: dict[str, list[dict]] = {t: [] for t in tiers}
    for rnd in range(args.rounds):
        for tier in tiers:
            out = args.work / f"measure-{tier}-{rnd}.json"
            cmd = [sys.executable, __file__, "--measure", str(indexes[tier]), "--out", str(out)]
            cmd += ["--limit", str(args.limit)]
            run_process(cmd, env)
            results[tier].append(json.loads(out.read_text()))
            print(f"  round {rnd + 1} {tier}: done")

    asked = len(next(iter(results.values()))[0]["rows"]) if args.rounds else 0
    summary: dict = {"questions": asked, "rounds": args.rounds, "tiers": {}}
    print(f"\n{asked} questions x {args.rounds} rounds, each a fresh process")
    print(
        f"{'tier':<9}{'answer p50/p95/p99 ms':>24}{'retrieval p50/p95/p99 ms':>28}"
        f"{'p95 / bundled':>15}{'RSS MB':>8}{'cold p50/p95/p99 ms':>24}"
    )
    for tier in tiers:
        rows = [r for run in results[tier] for r in run["rows"]]
        ans = stats([r["answer_ms"] for r in rows])
        cold = stats([r["cold_ms"] for r in rows])
        ret = stats([r["retrieval_ms"] for r in rows])
        ratio = None
        if "bundled" in results and tier != "bundled":
            ratio = statistics.median(
                percentile([r["answer_ms"] for r in run["rows"]], 0.95)
                / percentile([r["answer_ms"] for r in base["rows"]], 0.95)
                for run, base in zip(results[tier], results["bundled"], strict=True)
            )
        rss = statistics.median(run["peak_rss_mb"] for run in results[tier])
        with sqlite3.connect(indexes[tier] / "manifest.sqlite3") as conn:
            chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        by_set = {
            name: stats([r["answer_ms"] for r in rows if r["set"] == name])
            for name in sorted({r["set"] for r in rows})
        }
        summary["tiers"][tier] = {
            "chunks": chunks,
            "answer_ms_by_set": by_set,
            "answer_ms": ans,
            "cold_ms": cold,
            "retrieval_ms": ret,
            "p95_vs_bundled": ratio and round(ratio, 2),
            "peak_rss_mb": round(rss),
            "disk_bytes": _disk(indexes[tier]),
        }
        shown = f"{ratio:.2f}x" if ratio else "-"
        print(
            f"{tier:<9}{ans['p50']:>8.0f}/{ans['p95']:>5.0f}/{ans['p99']:>6.0f}"
            f"{ret['p50']:>12.1f}/{ret['p95']:>6.1f}/{ret['p99']:>6.1f}{shown:>15}{rss:>8.0f}"
            f"{cold['p50']:>10.0f}/{cold['p95']:>5.0f}/{cold['p99']:>6.0f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))


def _disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


if __name__ == "__main__":
    main()
