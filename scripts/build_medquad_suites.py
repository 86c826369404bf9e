"""Build the general MedQuAD suites (held-out ``medquad_general`` and ``medquad_dev``).

    .venv/bin/python scripts/build_medquad_suites.py            # rewrite both suites
    .venv/bin/python scripts/build_medquad_suites.py --check    # exit 1 if a file differs

Both suites follow one recipe over ``medquad_answered_collections_1-9.jsonl`` (MedQuAD, Ben
Abacha & Demner-Fushman 2019, CC BY 4.0) and never share a condition: every condition is put on
one side by a hash of its name, and a condition (by name or UMLS CUI) chosen for one suite is
kept out of the other's index. Each suite defines its own index, by document id:

- covered conditions: one page each (quotas per NIH collection, so common conditions and the
  genetics pages are both there); from each, up to three questions of different kinds, asked as
  the page wrote them, plus a clinician-style rewording of one of them (templates per MedQuAD
  ``qtype``, shorthand or a common misspelling where one is natural);
- distractors: several hundred pages of other conditions, disjoint between the suites;
- out-of-index conditions: pages deliberately left out, whose questions must be refused. Their
  name appears in no indexed page, so "the index does not cover it" is a fact, not a guess.

A question's reference answer is its page's answer (``reference_record``), read at run time;
only questions whose answer is 200-2,000 characters are used, so a good answer can hold it. No
MedQuAD answer text is written to the suites. Output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evals.suite import parse_suite  # noqa: E402
from ingest.loaders.medquad import clean_answer, clean_question, medquad_id  # noqa: E402

DATA_FILE = "medquad_answered_collections_1-9.jsonl"
SOURCE = REPO_ROOT.parent / "shared" / "datasets" / "medquad" / DATA_FILE
SUITES_DIR = REPO_ROOT / "evals" / "suites"
#: Path of the data as the suites name it (relative to evals/suites/).
SOURCE_REF = "../../../shared/datasets/medquad/" + DATA_FILE
SUITES = ("medquad_general", "medquad_dev")  # side 0, side 1 of the condition hash

REFERENCE_CHARS = (200, 2000)
COVERED_PAGE_CHARS = 25000  # a covered page's whole text, so ingest stays small
DISTRACTOR_PAGE_CHARS = 5000
DISTRACTORS = 300
OUT_OF_INDEX = 18
QUESTIONS_PER_CONDITION = 2
#: Covered conditions per suite, by collection (the issue's kinds live in different ones).
QUOTAS = {
    "5_NIDDK_QA": 7,
    "8_NHLBI_QA_XML": 8,
    "7_SeniorHealth_QA": 5,
    "9_CDC_QA": 3,
    "6_NINDS_QA": 4,
    "1_CancerGov_QA": 2,
    "3_GHR_QA": 8,
    "2_GARD_QA": 4,
    "4_MPlus_Health_Topics_QA": 4,
}

#: MedQuAD qtype -> (kind tag, clinician-style rewording of a question about {x}).
KINDS: dict[str, tuple[str, str]] = {
    "causes": ("causes", "Aetiology of {x}?"),
    "susceptibility": ("risk-factors", "Risk factors for {x}?"),
    "symptoms": ("symptoms", "{x}: presenting signs and symptoms?"),
    "exams and tests": ("diagnosis", "Workup for suspected {x}?"),
    "treatment": ("treatment", "{x}: first-line management?"),
    "prevention": ("prevention", "How can {x} be prevented?"),
    "outlook": ("prognosis", "Prognosis of {x}?"),
    "information": ("definition", "{x} - definition and overview?"),
    "inheritance": ("inheritance", "Inheritance pattern of {x}?"),
    "genetic changes": ("genetics", "Which genes are implicated in {x}?"),
    "frequency": ("frequency", "Prevalence of {x}?"),
    "complications": ("complications", "Complications of {x}?"),
}

#: How clinicians write some condition names (shorthand, British spelling, a common misspelling).
#: Used in rewordings only, and only for a condition the recipe picked.
SHORTHAND = {
    "high blood pressure": "HTN",
    "hypertension": "HTN",
    "diabetes": "diabetis",
    "copd": "COPD flares",
    "chronic obstructive pulmonary disease": "COPD",
    "heart attack": "MI",
    "deep vein thrombosis": "DVT",
    "pulmonary embolism": "PE",
    "atrial fibrillation": "AFib",
    "heart failure": "CHF",
    "coronary heart disease": "CHD",
    "anemia": "anaemia",
    "hemolytic anemia": "haemolytic anaemia",
    "urinary tract infection": "UTI",
    "gastroesophageal reflux": "GERD",
    "celiac disease": "coeliac disease",
    "irritable bowel syndrome": "IBS",
    "kidney stones": "nephrolithiasis",
    "acute respiratory distress syndrome": "ARDS",
    "disseminated intravascular coagulation": "DIC",
    "immune thrombocytopenia": "ITP",
    "thrombotic thrombocytopenic purpura": "TTP",
    "pulmonary hypertension": "pulm HTN",
    "rheumatoid arthritis": "RA",
    "osteoarthritis": "OA",
    "multiple sclerosis": "MS",
    "attention deficit-hyperactivity disorder": "ADHD",
    "age-related macular degeneration": "AMD",
    "chronic kidney disease": "CKD",
    "kidney disease": "CKD",
    "stroke": "CVA",
    "shingles": "zoster",
    "hepatitis c": "HCV",
    "lupus": "SLE",
}
#: Common conditions (every SHORTHAND one, and these): preferred, within each collection's quota,
#: so that each suite has the everyday conditions a clinician asks about, not only rare ones.
COMMON = set(SHORTHAND) | {
    "asthma",
    "gout",
    "glaucoma",
    "osteoporosis",
    "migraine",
    "psoriasis",
    "pneumonia",
    "obesity",
    "hypothyroidism",
    "insomnia",
    "sleep apnea",
    "gastritis",
    "diarrhea",
}
#: Page topics that are not a condition (a procedure, a diet, a health topic).
NOT_A_CONDITION = re.compile(
    r"(?i)^(surviving|quitting|exercise|healthy|taking|caring|living|talking|managing|"
    r"preventing|understanding|eating|choosing)\b|\b(health|diet|safety|medicines|page|issues|"
    r"section|tests?|surgery|transplant\w*|therapy|vaccines?|injuries)\b"
)

HEADER = """\
# Generated by scripts/build_medquad_suites.py from MedQuAD (Ben Abacha & Demner-Fushman,
# BMC Bioinformatics 2019;20:511; CC BY 4.0), ../shared/datasets/medquad/
# medquad_answered_collections_1-9.jsonl. Do not edit by hand. Documents and reference answers
# are named by id and read from the data at run time; the suite is skipped when it is absent.
"""
FRESH_DESCRIPTION = (
    "One-off suite of conditions neither committed suite uses (scripts/build_medquad_suites.py "
    "--fresh SALT): a fresh measure of an engine tuned against the committed suites."
)
DESCRIPTIONS = {
    "medquad_general": (
        "General medical questions (MedQuAD, NIH pages) over an index of the covered pages and "
        "several hundred others: the held-out measure of how the engine does on a corpus it was "
        "not written for. Do not tune against it; tune against medquad_dev."
    ),
    "medquad_dev": (
        "Development twin of medquad_general: the same recipe over disjoint conditions and "
        "distractors. Tune against this one."
    ),
}


@dataclass
class Page:
    collection: str
    doc_id: str
    focus: str
    cuis: frozenset[str]
    records: list[dict[str, Any]] = field(default_factory=list)
    chars: int = 0

    @property
    def id(self) -> str:
        return medquad_id(self.collection, self.doc_id)

    @property
    def name(self) -> str:
        """The condition's name: 'Parasites - Lice - Head Lice (Pediculosis)' -> 'Head Lice'."""
        name = re.sub(r"\s*\([^)]*\)\s*$", "", self.focus).strip() or self.focus
        return name.split(" - ")[-1].strip() or name

    @property
    def key(self) -> str:
        return condition_key(self.name)

    @property
    def disorder(self) -> bool:
        """UMLS says it is a disorder, or the page has no UMLS annotation (the CDC pages)."""
        groups = {r.get("semantic_group") or "" for r in self.records}
        return "Disorders" in groups or groups == {""}


def condition_key(name: str) -> str:
    name = re.sub(r"\s*\([^)]*\)\s*$", "", name)
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def stable(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


def side_of(key: str, salt: str = "") -> int:
    return stable(f"side:{salt}" + key) % 2


def clean_focus(focus: str) -> bool:
    """A page about one named condition: not 'What I need to know about ...', not a topic list."""
    words = focus.split()
    return (
        bool(focus)
        and not NOT_A_CONDITION.search(focus)
        and len(words) <= 6
        and ":" not in focus
        and not re.match(r"(?i)(what|how|why|when|prevent|treatment|\d)", focus)
        and not re.search(r"(?i)\b(and|or|for|your|in children|in older)\b", focus)
    )


def eligible(rec: dict[str, Any]) -> bool:
    n = len(clean_answer(rec.get("answer") or ""))
    return rec["qtype"] in KINDS and REFERENCE_CHARS[0] <= n <= REFERENCE_CHARS[1]


def load_pages(source: Path) -> dict[str, Page]:
    if not source.is_file():
        raise FileNotFoundError(
            f"MedQuAD file not found: {source} (see ../shared/datasets/README.md)"
        )
    pages: dict[str, Page] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        key = medquad_id(rec["collection"], str(rec["doc_id"]))
        page = pages.get(key)
        if page is None:
            page = pages[key] = Page(
                rec["collection"],
                str(rec["doc_id"]),
                " ".join((rec.get("focus") or "").split()),
                frozenset(),
            )
        page.cuis = page.cuis | frozenset(
            c for c in rec.get("cuis") or [] if isinstance(c, str) and c.startswith("C")
        )
        page.chars += len(clean_answer(rec.get("answer") or ""))
        page.records.append(rec)
    return {k: p for k, p in pages.items() if p.chars}


def page_text(page: Page) -> str:
    parts = [page.focus]
    for rec in page.records:
        parts += [rec.get("question") or "", clean_answer(rec.get("answer") or "")]
    return re.sub(r"\s+", " ", " ".join(parts).lower())


class Reserved:
    """Conditions taken by either suite (by name key and CUI): kept out of every index."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.cuis: set[str] = set()

    def add(self, page: Page) -> None:
        self.keys.add(page.key)
        self.cuis |= page.cuis

    def clashes(self, page: Page) -> bool:
        return page.key in self.keys or bool(page.cuis & self.cuis)


def pick_questions(page: Page, kind_counts: Counter[str]) -> list[dict[str, Any]]:
    """Up to three records of different kinds, the kinds least used so far first."""
    by_kind: dict[str, dict[str, Any]] = {}
    seen_q: set[str] = set()
    for rec in page.records:
        q = clean_question(rec["question"]).lower()
        if eligible(rec) and rec["qtype"] not in by_kind and q not in seen_q:
            by_kind[rec["qtype"]] = rec
            seen_q.add(q)
    order = sorted(by_kind, key=lambda k: (kind_counts[KINDS[k][0]], stable(page.id + k)))
    chosen = [by_kind[k] for k in order[:QUESTIONS_PER_CONDITION]]
    for rec in chosen:
        kind_counts[KINDS[rec["qtype"]][0]] += 1
    return chosen


def reword(page: Page, rec: dict[str, Any]) -> str:
    name = page.name
    short = SHORTHAND.get(condition_key(name))
    if short is None:
        m = re.search(r"\(([A-Z][A-Za-z0-9-]{1,9})\)\s*$", page.focus)
        short = m.group(1) if m else name
    return KINDS[rec["qtype"]][1].format(x=short)


def case_for(suite: str, page: Page, rec: dict[str, Any], *, covered: bool, reworded: bool):
    kind = KINDS[rec["qtype"]][0]
    question = reword(page, rec) if reworded else clean_question(rec["question"])
    short = re.sub(r"[^A-Za-z0-9]+", "", page.collection.split("_")[1])[:8].lower()
    case: dict[str, Any] = {
        "id": f"{short}-{rec['qid']}" + ("-r" if reworded else ""),
        "tags": [
            "medquad",
            kind,
            "reworded" if reworded else "page-question",
            "covered" if covered else "out-of-index",
        ],
        "description": f"{page.focus} ({page.collection}); MedQuAD {rec['qtype']}",
        "user_input": question,
        "answerable": covered,
    }
    if covered:
        case["answering_document"] = page.id
        # No other page of the condition is indexed: citing any other page is foreign.
        case["acceptable_documents"] = [page.id]
        case["reference_record"] = f"{rec['collection']}/{rec['qid']}"
    return case


def build_all(
    source: Path = SOURCE,
    *,
    salt: str = "",
    names: tuple[str, ...] = SUITES,
    reserved: Reserved | None = None,
) -> dict[str, dict[str, Any]]:
    """The suites, one per side of the condition hash. With `salt` and a `reserved` set that
    already holds every condition of the committed suites, a one-off suite of conditions none
    of them uses: a fresh measure of an engine tuned on the others."""
    pages = load_pages(source)
    ordered = sorted(pages.values(), key=lambda p: stable(salt + p.id))
    reserved = reserved if reserved is not None else Reserved()
    SUITES = names

    # 1. covered conditions, per suite and collection quota
    covered: dict[str, list[Page]] = {s: [] for s in SUITES}
    common_first = sorted(ordered, key=lambda p: p.key not in COMMON)  # stable: hash order within
    for side, suite in enumerate(SUITES):
        taken: Counter[str] = Counter()
        for page in common_first:
            if (
                side_of(page.key, salt) != side
                or not page.disorder
                or taken[page.collection] >= QUOTAS.get(page.collection, 0)
                or not clean_focus(page.focus)
                or page.chars > COVERED_PAGE_CHARS
                or reserved.clashes(page)
                or sum(eligible(r) for r in page.records) < 1
            ):
                continue
            covered[suite].append(page)
            taken[page.collection] += 1
            reserved.add(page)

    # 2. candidates for out-of-index conditions (more than needed; reserved from every index)
    candidates: dict[str, list[Page]] = {s: [] for s in SUITES}
    for side, suite in enumerate(SUITES):
        for page in ordered:
            if len(candidates[suite]) >= OUT_OF_INDEX * 4:
                break
            if (
                side_of(page.key, salt) == side
                and page.disorder
                and clean_focus(page.focus)
                and not reserved.clashes(page)
                and any(eligible(r) for r in page.records)
            ):
                candidates[suite].append(page)
                reserved.add(page)

    # 3. distractors: pages of other conditions, disjoint between the suites
    distractors: dict[str, list[Page]] = {s: [] for s in SUITES}
    used_keys: set[str] = set()
    for side, suite in enumerate(SUITES):
        for page in ordered:
            if len(distractors[suite]) >= DISTRACTORS:
                break
            if (
                side_of(page.key, salt) == side
                and page.chars <= DISTRACTOR_PAGE_CHARS
                and page.focus
                and not reserved.clashes(page)
                and page.key not in used_keys
            ):
                distractors[suite].append(page)
                used_keys.add(page.key)

    # 4. out-of-index conditions that no indexed page mentions
    out: dict[str, dict[str, Any]] = {}
    for suite in SUITES:
        indexed = covered[suite] + distractors[suite]
        corpus = " \n ".join(page_text(p) for p in indexed)
        absent: list[Page] = []
        for page in candidates[suite]:
            names = {page.name.lower()}
            short = SHORTHAND.get(condition_key(page.name))
            if short:
                names.add(short.lower())
            if not any(re.search(rf"\b{re.escape(n)}\b", corpus) for n in names):
                absent.append(page)
            if len(absent) == OUT_OF_INDEX:
                break
        if len(absent) < OUT_OF_INDEX:
            raise ValueError(f"{suite}: only {len(absent)} out-of-index conditions qualify")

        kind_counts: Counter[str] = Counter()
        cases: list[dict[str, Any]] = []
        for page in covered[suite]:
            recs = pick_questions(page, kind_counts)
            for i, rec in enumerate(recs):
                cases.append(case_for(suite, page, rec, covered=True, reworded=False))
                if i == 0:
                    cases.append(case_for(suite, page, rec, covered=True, reworded=True))
        absent_kinds: Counter[str] = Counter()
        for i, page in enumerate(absent):
            recs = sorted((r for r in page.records if eligible(r)), key=lambda r: r["qid"])
            rec = min(recs, key=lambda r: absent_kinds[KINDS[r["qtype"]][0]])
            absent_kinds[KINDS[rec["qtype"]][0]] += 1
            cases.append(case_for(suite, page, rec, covered=False, reworded=bool(i % 2)))
        documents = sorted(p.id for p in indexed)
        out[suite] = {
            "name": suite,
            "description": DESCRIPTIONS.get(suite, FRESH_DESCRIPTION),
            "index": {"medquad": SOURCE_REF, "documents": documents},
            "cases": cases,
        }
    return out


def _document_keys(data: dict[str, Any], source: Path) -> set[str]:
    """Condition keys of every page a built suite indexes (distractors too)."""
    pages = load_pages(source)
    wanted = set(data["index"]["documents"])
    return {p.key for p in pages.values() if p.id in wanted}


def summary(data: dict[str, Any]) -> str:
    cases = data["cases"]
    covered = [c for c in cases if c["answerable"]]
    conditions = {c["answering_document"] for c in covered}
    kinds = Counter(c["tags"][1] for c in covered)
    reworded = sum("reworded" in c["tags"] for c in covered)
    return (
        f"{data['name']}: {len(cases)} questions; {len(covered)} covered over {len(conditions)} "
        f"conditions ({reworded} reworded); {len(cases) - len(covered)} out-of-index; "
        f"{len(data['index']['documents'])} indexed documents; kinds: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )


def render(data: dict[str, Any]) -> str:
    parse_suite(data, f"{data['name']} (generated)")  # never write an invalid suite
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out-dir", type=Path, default=SUITES_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    parser.add_argument(
        "--fresh",
        metavar="SALT",
        help="write only a one-off suite 'medquad_fresh' of conditions neither committed suite "
        "uses, drawn with this salt (not committed: it stays unseen until measured)",
    )
    args = parser.parse_args(argv)
    if args.fresh:
        reserved = Reserved()
        for data in build_all(args.source, reserved=reserved).values():
            reserved.keys.update(_document_keys(data, args.source))
        built = build_all(args.source, salt=args.fresh, names=("medquad_fresh",), reserved=reserved)
    else:
        built = build_all(args.source)
    status = 0
    for name, data in built.items():
        text = render(data)
        path = args.out_dir / f"{name}.yaml"
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                print(
                    f"{path} is out of date: run scripts/build_medquad_suites.py", file=sys.stderr
                )
                status = 1
            else:
                print(f"{path} is up to date")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(summary(data))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
