"""Retrieval quality on MedQuAD and PubMedQA: every configuration beside its baseline, one run.

    .venv/bin/python scripts/bench_retrieval.py [--backends onnx,auto] [--json OUT.json]

Protocols (docs/benchmarks.md):

- MedQuAD: the seed-0 sample of 3,000 non-empty records is indexed with its questions withheld
  (each answer under a blank heading; the page's focus stays its title), then 500 of those
  records' questions (seed 1) are asked; a hit is the record's own document (collection +
  doc id). A second, disjoint 500 (seed 2, from the other 2,500) confirms tuned settings.
- PubMedQA (PQA-L): the 1,000 abstracts are indexed with their question withheld (the loader
  would make it the title), and each question must find its own abstract.

Document-level R@1, R@5 and MRR@10: the passages retrieved (top 30, no per-document cap) are
read as a ranking of distinct documents. Backends: `onnx` is the float32 reference (its vectors
are checked against torch's in the same run); `auto` is this machine's default. Indexes are
kept under --work and reused (the ingest is incremental), so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    DEFAULT_WORK,
    PUBMEDQA,
    medquad_sample,
    percentile,
    require,
    write_jsonl,
)

import ingest  # noqa: F401  (offline hub, pinned threads)
from assistant.retrieve import Retriever
from ingest.embedding import get_embedder, resolve_backend
from ingest.loaders.medquad import medquad_id
from ingest.pipeline import ingest_paths
from ingest.settings import RetrievalSettings, Settings
from ingest.store import Index


@dataclass
class Dataset:
    name: str
    path: Path
    queries: dict[str, list[tuple[str, str]]]  # query set name -> (question, gold document id)


def medquad_dataset(work: Path) -> Dataset:
    sample = medquad_sample()
    blind = [{**r, "question": ""} for r in sample]
    path = write_jsonl(blind, work / "medquad-3000-questions-withheld.jsonl")

    def gold(r: dict) -> str:
        doc_id = r.get("doc_id") or str(r.get("qid") or "").split("-")[0]
        return medquad_id(str(r.get("collection") or r.get("source") or "MedQuAD"), str(doc_id))

    dev = random.Random(1).sample(sample, 500)
    dev_ids = {id(r) for r in dev}
    rest = [r for r in sample if id(r) not in dev_ids]
    confirm = random.Random(2).sample(rest, 500)
    return Dataset(
        "MedQuAD",
        path,
        {
            "seed 1 (dev)": [(r["question"], gold(r)) for r in dev],
            "seed 2 (confirm)": [(r["question"], gold(r)) for r in confirm],
        },
    )


def pubmedqa_dataset(work: Path) -> Dataset:
    data = json.loads(require(PUBMEDQA).read_text())
    blind = {pmid: {**item, "QUESTION": f"PMID {pmid}"} for pmid, item in data.items()}
    path = work / "pubmedqa-questions-withheld.json"
    text = json.dumps(blind)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    queries = [(item["QUESTION"], f"pubmed-{pmid}") for pmid, item in data.items()]
    return Dataset("PubMedQA", path, {"all 1,000": queries})


# name -> (mode, retrieval settings overrides)
CONFIGS: dict[str, tuple[str, dict]] = {
    "BM25": ("bm25", {}),
    "dense": ("dense", {}),
    "hybrid RRF (k=60, default)": ("hybrid", {"fusion": "rrf"}),
    "hybrid score fusion (weight 0.2)": ("hybrid", {"fusion": "score"}),
    "hybrid RRF + token rerank": ("hybrid", {"fusion": "rrf", "rerank": "tokens"}),
    "hybrid score fusion + token rerank": ("hybrid", {"fusion": "score", "rerank": "tokens"}),
}


def evaluate(index: Index, queries: list[tuple[str, str]], mode: str, overrides: dict) -> dict:
    retriever = Retriever(index, RetrievalSettings(**overrides))
    r1 = r5 = mrr = 0.0
    times = []
    for question, gold in queries:
        started = time.perf_counter()
        passages = retriever.retrieve(question, k=30, mode=mode, diversify=False)  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
        docs: list[str] = []
        for p in passages:
            if p.chunk.document.id not in docs:
                docs.append(p.chunk.document.id)
        if docs[:1] == [gold]:
            r1 += 1
        if gold in docs[:5]:
            r5 += 1
        if gold in docs[:10]:
            mrr += 1 / (docs.index(gold) + 1)
    n = len(queries)
    return {
        "R@1": round(r1 / n, 3),
        "R@5": round(r5 / n, 3),
        "MRR@10": round(mrr / n, 3),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
    }


def build(dataset: Dataset, backend: str, work: Path) -> Index:
    settings = Settings()
    settings.embedding.backend = backend  # type: ignore[assignment]
    settings.store.index_dir = work / f"index-{dataset.name.lower()}-{backend}"
    started = time.perf_counter()
    report = ingest_paths([dataset.path], settings)
    if report.chunks_embedded:
        print(
            f"  built {settings.store.index_dir.name}: {report.chunks_added} chunks, "
            f"{report.chunks_embedded} embedded in {time.perf_counter() - started:.0f} s"
        )
    return Index.open(settings)


def legacy_embedding_input(chunk) -> str:  # type: ignore[no-untyped-def]
    """The embedding input before titles were added (the baseline's)."""
    head = " > ".join(chunk.section_path[-2:]) or chunk.document.title
    return f"{head[:120]}\n{chunk.text}"


def legacy_lexical_text(title: str, section_path, text: str, doc_type: str = "") -> str:  # type: ignore[no-untyped-def]
    """The BM25 text before titles were added (the baseline's)."""
    return f"{' '.join(section_path)}\n{text}"


def build_legacy(dataset: Dataset, backend: str, work: Path) -> Index:
    """An index built the way cliniq built it before (no title in either input)."""
    import ingest.pipeline
    import ingest.store

    saved = ingest.pipeline.embedding_input, ingest.store.lexical_text
    ingest.pipeline.embedding_input = legacy_embedding_input
    ingest.store.lexical_text = legacy_lexical_text
    try:
        settings = Settings()
        settings.embedding.backend = backend  # type: ignore[assignment]
        settings.store.index_dir = work / f"index-{dataset.name.lower()}-{backend}-legacy-inputs"
        report = ingest_paths([dataset.path], settings)
        if report.chunks_embedded:
            print(f"  built {settings.store.index_dir.name}: {report.chunks_embedded} embedded")
        return Index.open(settings)
    finally:
        ingest.pipeline.embedding_input, ingest.store.lexical_text = saved


LEGACY_CONFIGS: dict[str, tuple[str, dict]] = {
    "before: BM25, no title": ("bm25", {}),
    "before: dense, no title": ("dense", {}),
    "before: hybrid RRF, no title": ("hybrid", {"fusion": "rrf"}),
}


def torch_agreement(index: Index, n: int = 200) -> float:
    """Min cosine between the onnx float32 vectors and torch's on the same inputs (this run)."""
    from ingest.settings import EmbeddingSettings
    from ingest.store import embedding_input

    chunks = index.get(sorted(index._served_kinds())[:n])
    texts = [embedding_input(c) for c in chunks]
    onnx = get_embedder(EmbeddingSettings(backend="onnx")).embed(texts, bulk=True)
    torch = get_embedder(EmbeddingSettings(backend="torch")).embed(texts, bulk=True)
    return float((onnx * torch).sum(axis=1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="auto,onnx", help="the default first, then fp32")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "quality")
    parser.add_argument("--datasets", default="medquad,pubmedqa")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--weights", default="", help="also score fusion at these lexical weights, e.g. 0.1,0.3"
    )
    parser.add_argument(
        "--only-weights", action="store_true", help="evaluate only the --weights configurations"
    )
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="only the baseline instead: inputs without titles, RRF (first backend)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    backends = []
    for name in args.backends.split(","):
        concrete = resolve_backend(Settings().embedding.model_copy(update={"backend": name}))
        if concrete not in backends:
            backends.append(concrete)
    print(
        f"backends: {', '.join(backends)} (auto on this machine: "
        f"{resolve_backend(Settings().embedding)})"
    )
    configs = {} if args.only_weights else dict(CONFIGS)
    for w in filter(None, args.weights.split(",")):
        configs[f"hybrid score fusion (weight {w})"] = (
            "hybrid",
            {"fusion": "score", "lexical_weight": float(w)},
        )
    makers = {"medquad": medquad_dataset, "pubmedqa": pubmedqa_dataset}
    datasets = [makers[key](args.work) for key in args.datasets.split(",")]
    out: dict = {"backends": backends, "results": {}}
    # Backend by backend, the default first: its figures are there even if a run is cut short.
    for backend in [] if args.legacy else backends:
        for dataset in datasets:
            print(f"\n## {dataset.name}, {backend}")
            index = build(dataset, backend, args.work)
            if backend == "onnx" and "fp32_torch_min_cosine" not in out:
                out["fp32_torch_min_cosine"] = round(torch_agreement(index), 6)
                print(
                    f"  onnx vs torch float32, min cosine on 200 chunks: "
                    f"{out['fp32_torch_min_cosine']}"
                )
            for qset, queries in dataset.queries.items():
                for config, (mode, overrides) in configs.items():
                    got = evaluate(index, queries, mode, overrides)
                    out["results"].setdefault(dataset.name, {}).setdefault(qset, {}).setdefault(
                        config, {}
                    )[backend] = got
                    print(
                        f"  {qset:<18}{config:<32}R@1 {got['R@1']:.3f}  "
                        f"R@5 {got['R@5']:.3f}  MRR@10 {got['MRR@10']:.3f}  "
                        f"p95 {got['p95_ms']:.0f} ms",
                        flush=True,
                    )
            index.close()
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(out, indent=1))
    if args.legacy:
        for dataset in datasets:
            print(f"\n## {dataset.name}, {backends[0]}, inputs without titles (before)")
            index = build_legacy(dataset, backends[0], args.work)
            for qset, queries in dataset.queries.items():
                for config, (mode, overrides) in LEGACY_CONFIGS.items():
                    got = evaluate(index, queries, mode, overrides)
                    out["results"].setdefault(dataset.name, {}).setdefault(qset, {})[config] = {
                        backends[0]: got
                    }
                    print(
                        f"  {qset:<18}{config:<32}R@1 {got['R@1']:.3f}  R@5 {got['R@5']:.3f}  "
                        f"MRR@10 {got['MRR@10']:.3f}",
                        flush=True,
                    )
            index.close()
            if args.json:
                args.json.write_text(json.dumps(out, indent=1))
    if len(backends) > 1:
        other, ref = backends[0], backends[-1]
        worst = 0.0
        for qsets in out["results"].values():
            for configs in qsets.values():
                for by_backend in configs.values():
                    if ref not in by_backend or other not in by_backend:
                        continue
                    for metric in ("R@1", "R@5", "MRR@10"):
                        worst = min(worst, by_backend[other][metric] - by_backend[ref][metric])
        out["largest_drop_points"] = round(-100 * worst, 1)
        print(f"\nlargest drop {other} vs {ref} over every figure: {-100 * worst:.1f} points")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
