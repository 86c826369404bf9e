"""Per-file table for guideline ingest: recommendations found / expected, grades right, and
whether title, organization and year were read right, for each side of the guideline split.

Expected values live in `evals/data/guidelines.yaml` (read from each document). Grades are
compared as counts per printed grade (found grade counts matched against the document's), since
that is how the expected values were counted.

    PYTHONPATH=$PWD .venv/bin/python scripts/guideline_eval.py --side dev [--cache DIR]
    PYTHONPATH=$PWD .venv/bin/python scripts/guideline_eval.py \
        --data evals/data/guidelines_fresh.yaml --shared FOLDER   # files of other publishers
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import yaml

from ingest.chunking import chunk_document
from ingest.grading import Grade
from ingest.loaders import load_file_result
from ingest.loaders.guideline import Extracted
from ingest.loaders.pdf import document_from_pages, extract_pages
from ingest.types import RecommendationKind

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "evals" / "data" / "guidelines.yaml"


def squash(text: object) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(text or "").lower())


def load_docs(path: Path, cache: Path | None):
    if path.suffix != ".pdf" or cache is None:
        return load_file_result(path).documents
    cached = cache / f"{path.name}.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
        raw = [(n, t.split("\n")) for n, t in data["pages"] if t.strip()]
        info = data["info"]
        tables = {
            int(n): [Extracted(**{**item, "grade": Grade(**item["grade"])}) for item in items]
            for n, items in data.get("tables", {}).items()
        }
    else:
        raw, info, _, tables = extract_pages(path, path.read_bytes())
        cache.mkdir(parents=True, exist_ok=True)
        pages = [[n, "\n".join(t)] for n, t in raw]
        found = {n: [asdict(item) for item in items] for n, items in tables.items()}
        cached.write_text(json.dumps({"info": info, "pages": pages, "tables": found}))
    return document_from_pages(path, raw, info, tables).documents


def grade_key(strength: str | None, certainty: str | None, scheme: str) -> str:
    """The printed grade in the form the expected counts use."""
    strength, certainty = strength or "", certainty or ""
    if scheme == "code":  # "1 (strong)" + "B (moderate quality)" -> "1B"
        return strength[:1] + certainty[:1]
    if scheme == "letter":  # "Grade B" -> "B", "I statement" -> "I"; "Evidence Category B"
        pattern = r"\b(?:grade\s+|evidence\s+category\s+)?([A-DI])\b(?:\s+statement)?"
        for text in (strength, certainty):
            if match := re.search(pattern, text if text != "not graded" else "", re.I):
                return match.group(1).upper()
        return ""
    if scheme == "strength":  # "Strong recommendation" -> "strong"
        return strength.split()[0].lower() if strength else ""
    return "graded" if strength and strength != "not graded" else "not graded"


def evaluate(entry: dict, shared: Path, cache: Path | None) -> dict:
    path = shared / entry["file"]
    docs = load_docs(path, cache)
    recs = [c.recommendation for d in docs for c in chunk_document(d) if c.recommendation]
    # Evidence conclusions ("Evidence statement: ...") are kept, but are not recommendations.
    recs = [r for r in recs if r.kind is not RecommendationKind.evidence_conclusion]
    expected = int(entry["recommendations"])
    scheme = entry.get("grade_scheme", "any")
    found = len(recs)
    want = Counter({str(k).lower(): int(v) for k, v in (entry.get("grades") or {}).items()})
    got = Counter(grade_key(r.strength, r.certainty, scheme).lower() for r in recs)
    right = sum(min(n, want[k]) for k, n in got.items()) if want else found
    doc = docs[0]
    multi = len(docs) > 1
    title_ok = multi or any(squash(t) and squash(t) in squash(doc.title) for t in entry["title"])
    org_ok = any(squash(o) == squash(doc.organization) for o in entry["organization"])
    year_ok = (multi and entry.get("year") is None) or doc.year == entry.get("year")
    return {
        "file": entry["file"],
        "found": found,
        "expected": expected,
        "grade_right": right,
        "title": title_ok,
        "org": org_ok,
        "year": year_ok,
        "got_title": doc.title,
        "got_org": doc.organization,
        "got_year": doc.year,
        "grades": dict(got.most_common(8)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["dev", "heldout", "known", "all"], default="dev")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "guidelines")
    parser.add_argument("--cache", type=Path, default=None, help="extracted PDF text cache")
    parser.add_argument("--only", default=None, help="a substring of the file names to run")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="expected values (a file without a split is run whole)",
    )
    args = parser.parse_args()
    data = yaml.safe_load(args.data.read_text())
    if not args.shared.is_dir():
        print(f"{args.shared} is absent: the shared guidelines are needed", file=sys.stderr)
        return 2
    entries = data["files"]
    if args.side in ("dev", "heldout") and "split" in data:
        entries = [e for e in entries if e["file"].split("/")[-1] in data["split"][args.side]]
    elif args.side == "known":
        entries = [e for e in entries if "/" not in e["file"]]
    if args.only:
        entries = [e for e in entries if args.only in e["file"]]
    rows = []
    print(f"{'file':46} {'found/exp':>10} {'recall':>7} {'grade ok':>9} title org year")
    for entry in entries:
        if entry.get("recommendations") is None:
            print(f"{entry['file']:46} (expected values not filled in)")
            continue
        row = evaluate(entry, args.shared, args.cache)
        rows.append(row)
        recall = min(row["found"], row["expected"]) / row["expected"] if row["expected"] else 1.0
        graded_ok = row["grade_right"] / row["found"] if row["found"] else 1.0
        marks = " ".join("yes" if row[k] else "NO " for k in ("title", "org", "year"))
        print(
            f"{row['file']:46} {row['found']:>4}/{row['expected']:<5} {recall:>7.0%} "
            f"{graded_ok:>9.0%} {marks}"
        )
        if args.verbose:
            print(
                f"    {row['got_title']!r} | {row['got_org']!r} | {row['got_year']}"
                f" | {row['grades']}"
            )
    if rows:
        meta = sum(r["title"] and r["org"] and r["year"] for r in rows)
        recall_ok = sum(
            (min(r["found"], r["expected"]) / r["expected"] if r["expected"] else 1.0) >= 0.9
            for r in rows
        )
        grade_ok = sum((r["grade_right"] / r["found"] if r["found"] else 1.0) >= 0.95 for r in rows)
        print(
            f"files: {len(rows)}; recall >= 90%: {recall_ok}; grades >= 95% right: {grade_ok}; "
            f"title+org+year right: {meta} ({meta / len(rows):.0%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
