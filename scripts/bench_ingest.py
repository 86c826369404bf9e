"""Ingest throughput and the cost of an unchanged re-run, in one run.

    .venv/bin/python scripts/bench_ingest.py [PATH ...] [--limit-docs N]

Default input: the MedQuAD JSONL in ../shared/datasets (16,412 records). Prints documents/s,
chunks/s, the share of time spent embedding, and the unchanged re-run's time as a ratio of the
first ingest. `--limit-docs` writes the first N documents' records to a temporary JSONL first,
for a quick look.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ingest  # noqa: F401  (offline hub, pinned threads)
from ingest.pipeline import ingest_paths
from ingest.settings import Settings

DEFAULT = Path("../shared/datasets/medquad/medquad_answered_collections_1-9.jsonl")


def first_documents(path: Path, limit: int, out: Path) -> Path:
    seen: list[tuple[str, str]] = []
    with path.open() as src, out.open("w") as dst:
        for line in src:
            record = json.loads(line)
            key = (record.get("collection"), record.get("doc_id"))
            if key not in seen:
                if len(seen) == limit:
                    continue
                seen.append(key)
            dst.write(line)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--limit-docs", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = args.paths
        if args.limit_docs:
            paths = [first_documents(paths[0], args.limit_docs, Path(tmp) / "subset.jsonl")]
        settings = Settings()
        settings.store.index_dir = Path(tmp) / "index"

        first = ingest_paths(paths, settings)
        docs, chunks, secs = first.documents_added, first.chunks_added, first.elapsed_s
        print(f"first ingest: {docs} documents, {chunks} chunks in {secs:.1f} s")
        print(f"  {docs / secs:.1f} documents/s, {chunks / secs:.1f} chunks/s")
        print(
            f"  embedding {first.embed_s:.1f} s ({first.embed_s / secs:.0%} of the time);"
            f" {first.chunks_embedded} embedded, {first.embeddings_reused} identical inputs reused"
        )
        if first.skipped or first.warnings:
            print(f"  skipped {len(first.skipped)} file(s), {len(first.warnings)} warning(s)")

        started = time.perf_counter()
        again = ingest_paths(paths, settings)
        wall = time.perf_counter() - started
        print(
            f"unchanged re-run: {wall:.2f} s, {again.documents_unchanged} unchanged, "
            f"{again.chunks_embedded} embedded ({wall / first.elapsed_s:.3%} of the first ingest)"
        )


if __name__ == "__main__":
    main()
