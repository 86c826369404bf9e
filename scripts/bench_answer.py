"""Answer latency on the bundled corpus, per step, against a retrieval-only baseline.

    .venv/bin/python scripts/bench_answer.py [--repeat 5] [--index DIR]

Prints p50 / p95 per step for a fixed set of questions (the model is loaded and warm before
timing starts: the figures are per answer, not per process), and the ratio of a full answer to
hybrid retrieval alone, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ingest  # noqa: F401  (offline hub, pinned threads)
from assistant.conversation import Session
from assistant.engine import Assistant
from ingest.pipeline import ingest_paths
from ingest.settings import Settings

QUESTIONS = [
    "What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?",
    "What about patients on dialysis?",
    "Which iron preparations are recommended for restless legs syndrome?",
    "Is pramipexole still first-line for RLS?",
    "How is augmentation managed?",
    "What are the diagnostic criteria for restless legs syndrome?",
    "What is the first-line treatment for gout?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--index", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        settings.store.index_dir = args.index or Path(tmp) / "index"
        ingest_paths([Path("corpus")], settings)
        started = time.perf_counter()
        assistant = Assistant(settings)
        print(f"start-up (model, lexicon, index, judge): {time.perf_counter() - started:.2f} s")

        steps: dict[str, list[float]] = {}
        retrieval_only: list[float] = []
        for _ in range(args.repeat):
            session = Session()
            for question in QUESTIONS:
                t = time.perf_counter()
                assistant.retriever.retrieve(question)
                retrieval_only.append((time.perf_counter() - t) * 1000)
                answer = assistant.ask(question, session=session)
                for step, ms in answer.timings_ms.items():
                    steps.setdefault(step, []).append(ms)

    print(f"\n{len(QUESTIONS)} questions x {args.repeat} repeats (warm)")
    print(f"{'step':<14}{'p50 ms':>10}{'p95 ms':>10}")
    for step, values in steps.items():
        print(f"{step:<14}{percentile(values, 0.5):>10.1f}{percentile(values, 0.95):>10.1f}")
    base = statistics.median(retrieval_only)
    total = statistics.median(steps["total_ms"])
    print(f"{'retrieval only':<14}{base:>10.1f}{percentile(retrieval_only, 0.95):>10.1f}")
    print(f"\nfull answer / hybrid retrieval (medians): {total / base:.1f}x")


if __name__ == "__main__":
    main()
