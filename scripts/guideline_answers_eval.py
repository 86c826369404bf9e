"""Recommendation questions answered from one index of every shared guideline: is each answered
under *From the Guidelines* from the right guideline, with its grade, strongest first, with a
page (or recommendation id), and without citing a guideline on another subject?

Questions live in `evals/data/guideline_questions.yaml`. Build the index first:

    cliniq ingest ../shared/guidelines/*.pdf ../shared/guidelines/*.json \
        ../shared/guidelines/pool/*.pdf --index /tmp/pool-index
    PYTHONPATH=$PWD .venv/bin/python scripts/guideline_answers_eval.py --index /tmp/pool-index \
        [--show 3 --out answers.md]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from assistant.cli import build_settings
from assistant.engine import Assistant
from assistant.render import to_markdown
from assistant.types import Answer, Section
from ingest.grading import certainty_rank, is_graded
from ingest.loaders._common import path_document_id
from ingest.types import RecommendationKind

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "evals" / "data" / "guideline_questions.yaml"
FOR_GROUPS = ("recommended", "suggested")


def _doc_ok(doc_id: str, title: str, files: list[str], record: str | None, shared: Path) -> bool:
    for file in files:
        if file.endswith(".json"):
            if doc_id.startswith("uspstf-") and record and record.lower() in title.lower():
                return True
        elif doc_id == path_document_id(shared / file):
            return True
    return False


def _sections(section: Section) -> list[Section]:
    return [section, *(s for sub in section.subsections for s in _sections(sub))]


def judge(answer: Answer, entry: dict, shared: Path) -> dict[str, bool]:
    files = [entry["file"]]
    record = entry.get("record")
    chunks = {p.chunk.id: p.chunk for p in answer.passages}
    refs = {r.number: r for r in answer.references}
    target = {
        n
        for n, r in refs.items()
        if _doc_ok(r.document.id, r.document.title, files, record, shared)
    }
    allowed = files + list(entry.get("also") or [])
    terms = [t.lower() for t in entry.get("subject") or []]

    def about_subject(number: int) -> bool:
        ref = refs[number]
        if _doc_ok(ref.document.id, ref.document.title, allowed, record, shared):
            return True
        cited = [
            chunks[c.chunk_id].text
            for s in answer.all_sentences()
            for c in s.citations
            if c.number == number and c.chunk_id in chunks
        ]
        text = " ".join([ref.document.title, *cited]).lower()
        return any(re.search(rf"\b{re.escape(t)}", text) for t in terms)

    on_subject = all(about_subject(n) for n in refs)
    guidelines = next((s for s in answer.sections if s.key == "guidelines"), None)
    in_guidelines = graded = located = False
    ordered = True
    if guidelines is not None:
        previous_first: int | None = None
        for section in _sections(guidelines):
            ranks = []
            for sentence in section.sentences:
                recs = [
                    chunks[c.chunk_id].recommendation
                    for c in sentence.citations
                    if c.chunk_id in chunks and chunks[c.chunk_id].recommendation is not None
                ]
                if not recs:
                    continue
                ranks.append(max(r.strength_rank for r in recs))  # type: ignore[union-attr]
                if any(c.number in target for c in sentence.citations):
                    in_guidelines = True
                    graded = graded or any(
                        is_graded(r.strength)
                        or r.kind is not RecommendationKind.recommendation
                        or certainty_rank(r.certainty) > 0  # graded by its evidence alone
                        for r in recs  # type: ignore[union-attr]
                    )
            if ranks != sorted(ranks, reverse=True):
                ordered = False
            # The strength groups in favour in order: strong, then conditional ("against",
            # good practice and unconfirmed grades are groups of their own, shown after them).
            if ranks and section.key in FOR_GROUPS:
                if previous_first is not None and ranks[0] > previous_first:
                    ordered = False
                previous_first = ranks[0]
        located = any(answer.pages_cited(refs[n]) or answer.recs_cited(refs[n]) for n in target)
    ok = in_guidelines and graded and located and ordered and on_subject
    return {
        "in_guidelines": in_guidelines,
        "graded": graded,
        "located": located,
        "ordered": ordered,
        "on_subject": on_subject,
        "ok": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "guidelines")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="questions file")
    parser.add_argument("--show", type=int, default=0, help="write this many full answers")
    parser.add_argument("--out", type=Path, default=None, help="where to write them")
    args = parser.parse_args()
    entries = yaml.safe_load(args.questions.read_text())["questions"]
    assistant = Assistant(build_settings(args.index))
    shared = args.shared.resolve()
    passed = 0
    shown: list[str] = []
    counts: dict[str, int] = {}
    for entry in entries:
        answer = assistant.ask(entry["question"])
        result = judge(answer, entry, shared)
        passed += result["ok"]
        for key, value in result.items():
            counts[key] = counts.get(key, 0) + int(value)
        marks = " ".join(k for k, v in result.items() if not v and k != "ok") or "ok"
        print(f"{'PASS' if result['ok'] else 'FAIL'} [{entry['file']}] {entry['question']} {marks}")
        if (
            result["ok"]
            and len(shown) < args.show
            and all(entry["file"] not in s.split("\n", 1)[0] for s in shown)
        ):
            shown.append(f"### [{entry['file']}] {entry['question']}\n\n{to_markdown(answer)}")
    total = len(entries)
    print(
        f"answered as required: {passed}/{total} ({passed / total:.0%}); "
        + ", ".join(f"{k} {v}/{total}" for k, v in counts.items() if k != "ok")
    )
    if args.out and shown:
        args.out.write_text("\n\n".join(shown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
