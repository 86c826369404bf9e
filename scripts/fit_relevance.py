"""Fit the relevance weights of units and the document margin (assistant/data/relevance.json).

Development parts only (`evals.split`, salt in `evals.split.SALT`) of libraries of different
publishers and shapes (`--libraries`, default medquad,guidelines,mixed):

- medquad: MedQuAD (NIH/NLM pages) on its own index, `evals/suites/medquad_dev.yaml`, its
  covered and uncovered cases;
- guidelines: the bundled guideline library (`corpus/`), the single questions of
  `evals/suites/rls.yaml`: a unit holds the answer when it names one of the case's expected facts;
- mixed: the development side of the mixed library of `scripts/library_eval.py` (COVID-QA
  articles, PubMedQA abstracts, MedQuAD pages with 2,000 distractors and a guideline pool in one
  index, as a real library is), at most `--limit` questions per set and role;
- covid_qa, pubmedqa: each indexed on its own (a salted share of the development documents is
  left out of the index; only covered questions are used).

Units: a pairwise logistic regression (learning to rank) over `assistant.relevance.UNIT_FEATURES`
of which of two units of one question's retrieved passages holds the answer (COVID-QA: the gold
span; MedQuAD: a unit of the answering page inside its reference answer), Platt-scaled into a
probability. The document margin: the one that best
keeps the answering document among the documents within it on covered questions, each other
document within it counting against (a twentieth of a lost one).

    PYTHONPATH=. .venv/bin/python scripts/fit_relevance.py --work /tmp/fit --limit 150 --write
    PYTHONPATH=. .venv/bin/python scripts/fit_relevance.py --work /tmp/fit --refit --write
    PYTHONPATH=. .venv/bin/python scripts/fit_relevance.py --work /tmp/fit-documents \
        --libraries mixed --limit 150 --documents --write   # the document weights alone

Documents: a conditional logit of which of a question's documents answers, over its best unit's
logit and what retrieval says of the whole document (`assistant.relevance.DOCUMENT_FEATURES`),
each question weighing the same; reported leaving each library out in turn.

Whether the sources answer at all is decided by `assistant.coverage`, not fitted here.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))

from assistant.conversation import Session  # noqa: E402
from assistant.engine import Assistant  # noqa: E402
from assistant.evidence import retrieve_passages, score_question  # noqa: E402
from assistant.relevance import (  # noqa: E402
    DOCUMENT_FEATURES,
    UNIT_FEATURES,
    WEIGHTS_PATH,
    document_features,
    logit,
)
from assistant.understand import understand  # noqa: E402
from evals.split import side, split  # noqa: E402
from ingest.pipeline import ingest_paths  # noqa: E402
from ingest.settings import Settings  # noqa: E402

LEFT_OUT = "left-out"  # the set name under which a development document is left out of the index


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def _assistant(index_dir: Path, corpus: list[Path]) -> Assistant:
    settings = Settings()
    settings.store.index_dir = index_dir
    settings.lexicon_dir = ROOT / "corpus" / "lexicon"
    ingest_paths(corpus, settings)  # incremental: an unchanged library takes seconds
    return Assistant(settings)


# -- the three libraries ----------------------------------------------------------------------


def medquad_cases(work: Path, limit: int) -> tuple[Assistant, list[dict]]:
    from evals.suite import load_suite, materialize_index

    suite = load_suite(ROOT / "evals" / "suites" / "medquad_dev.yaml")
    directory, references = materialize_index(suite, work / "medquad-data")
    assistant = _assistant(work / "medquad-index", [directory])
    cases = []
    for case in suite.cases:
        cases.append(
            {
                "set": "medquad",
                "question": case.user_input,
                "covered": bool(case.answerable),
                "document": case.answering_document,
                "gold": references.get(case.reference_record or "", ""),
                "kind": "reference",
            }
        )
    return assistant, cases[:limit]


def guideline_cases(work: Path, limit: int) -> tuple[Assistant, list[dict]]:
    """The bundled guideline library (corpus/) with its suite's single questions: a unit holds
    the answer when it names one of the case's expected facts."""
    from evals.suite import load_suite

    suite = load_suite(ROOT / "evals" / "suites" / "rls.yaml")
    assistant = _assistant(work / "guideline-index", [ROOT / "corpus"])
    cases = []
    for case in suite.cases:
        if case.turns or case.answerable is None:
            continue
        cases.append(
            {
                "set": "guidelines",
                "question": case.user_input,
                "covered": bool(case.answerable),
                "document": (case.expected_documents or [None])[0],
                "documents": list(case.expected_documents),
                "gold": [list(fact) for fact in case.must_include],
                "kind": "facts",
            }
        )
    return assistant, cases[:limit]


def covid_cases(work: Path, limit: int) -> tuple[Assistant, list[dict]]:
    articles = SHARED / "covid_qa" / "articles"
    rows = [json.loads(line) for line in (SHARED / "covid_qa" / "questions.jsonl").open()]
    docs = sorted(p.name for p in articles.glob("*.txt"))
    dev_docs = split("covid_qa", docs, key=lambda d: d)["dev"]
    indexed = [d for d in dev_docs if side(LEFT_OUT, d) == "dev"]
    corpus = work / "covid-data"
    corpus.mkdir(parents=True, exist_ok=True)
    for name in indexed:
        target = corpus / name
        if not target.exists():
            target.write_text((articles / name).read_text())
    assistant = _assistant(work / "covid-index", [corpus])
    ids = {name: assistant_doc_id(assistant, corpus / name) for name in indexed}
    cases = []
    for row in rows:
        name = Path(row["document"]).name
        if name not in dev_docs:
            continue
        cases.append(
            {
                "set": "covid_qa",
                "question": row["question"],
                "covered": name in indexed,
                "document": ids.get(name),
                "gold": row["answer"],
                "kind": "span",
            }
        )
    random.Random(7).shuffle(cases)
    return assistant, cases[:limit]


def mixed_cases(work: Path, limit: int, index: Path | None = None) -> tuple[Assistant, list[dict]]:
    """The development side of the mixed library (`scripts/library_eval.py`): every set in one
    index with thousands of distractor pages, as a real library is; at most `limit` questions
    per set and role. The index is built by that script and only read here."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import library_eval as le

    index = index or le.DEFAULT_INDEX
    if not (index / "library.json").is_file():
        raise SystemExit(f"{index}: no mixed library; build it with scripts/library_eval.py")
    sets = json.loads(le.SETS_FILE.read_text())
    questions = le.limited(le.load_questions(sets, list(le.SETS), ["dev"]), limit)
    assistant = Assistant(le.settings_for(index))
    cases = []
    for q in questions:
        if not q.covered and q.set.startswith("medquad"):
            # MedQuAD's uncovered questions are measured on its own index, where no other page
            # is on their condition; here PubMedQA and COVID-QA documents may be (titles on
            # congenital adrenal hyperplasia or concussion), so "uncovered" would be wrong.
            continue
        if q.span:
            gold, kind = q.span, "span"
        elif q.facts:
            gold, kind = q.facts, "facts"
        else:
            gold, kind = q.reference or "", "reference"
        cases.append(
            {
                "set": f"mixed-{q.set}",
                "question": q.question,
                "covered": q.covered,
                "document": q.answering,
                "documents": list(q.acceptable),
                "gold": gold,
                "kind": kind,
            }
        )
    return assistant, cases


def assistant_doc_id(assistant: Assistant, path: Path) -> str | None:
    for doc in assistant.index.docstore.documents():
        if Path(doc.source_path).name == path.name:
            return doc.id
    return None


def pubmed_cases(work: Path, limit: int) -> tuple[Assistant, list[dict]]:
    data = json.loads((SHARED / "pubmedqa" / "ori_pqal.json").read_text())
    dev = split("pubmedqa", list(data), key=lambda k: k)["dev"]
    indexed = [k for k in dev if side(LEFT_OUT, k) == "dev"]
    corpus = work / "pubmed-data"
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / "abstracts.json"
    if not target.exists():
        # The conclusion is the reference, never indexed.
        target.write_text(json.dumps({k: {**data[k], "LONG_ANSWER": ""} for k in indexed}))
    assistant = _assistant(work / "pubmed-index", [corpus])
    cases = [
        {
            "set": "pubmedqa",
            "question": data[k]["QUESTION"],
            "covered": k in indexed,
            "document": f"pubmed-{k}",
            "gold": data[k]["LONG_ANSWER"],
            "kind": "reference",
        }
        for k in dev
    ]
    random.Random(7).shuffle(cases)
    return assistant, cases[:limit]


# -- features ---------------------------------------------------------------------------------


def _unit_label(case: dict, text: str, document: str) -> int:
    if case["kind"] == "facts":
        wanted = case["documents"]
        lowered = text.lower()
        named = any(p.lower() in lowered for fact in case["gold"] for p in fact)
        return int(named and (not wanted or document in wanted))
    if case["kind"] == "span":
        return int(_norm(case["gold"]) in _norm(text))
    return int(
        document == case["document"] and len(text) > 30 and _norm(text) in _norm(case["gold"])
    )


def collect(assistant: Assistant, cases: list[dict]) -> list[dict]:
    rows = []
    for n, case in enumerate(cases, start=1):
        if n % 100 == 0:
            print(f"  {n}/{len(cases)}", file=sys.stderr, flush=True)
        u = understand(case["question"], Session(), assistant.sources)
        passages = retrieve_passages(u, assistant.sources)
        scored = score_question(u, passages, assistant.sources)
        units = [
            {
                "features": unit.features.tolist(),
                "label": _unit_label(case, unit.quote.full_text, unit.document_id),
                "document": unit.document_id,
                "quotable": unit.quote.chunk.recommendation is None,
            }
            for unit in scored.units
        ]
        best: dict[str, float] = {}
        for unit in scored.units:
            best[unit.document_id] = max(best.get(unit.document_id, 0.0), unit.score)
        features = document_features(scored, passages)
        rows.append(
            {
                **case,
                "units": units,
                # per document: its best unit's logit, then DOCUMENT_FEATURES
                "documents_seen": {d: [logit(s), *features[d]] for d, s in best.items()},
            }
        )
    return rows


# -- fitting ----------------------------------------------------------------------------------


def fit_units(rows: list[dict], pairs_per_question: int = 60) -> tuple[np.ndarray, float]:
    """Learning to rank: a logistic regression on differences of a unit that holds the answer
    and one that does not, of the same question (each library weighs the same), then Platt
    scaling of its score, so the score is the probability that a unit holds the answer."""
    from sklearn.linear_model import LogisticRegression

    diffs, labels, weights = [], [], []
    # PubMedQA's reference is the abstract's conclusion, which is not indexed: no unit holds it.
    libraries = sorted({r["set"] for r in rows if not r["set"].endswith("pubmedqa")})
    for name in libraries:
        rng = np.random.default_rng(0)
        part: list[tuple[np.ndarray, int]] = []
        for row in rows:
            if row["set"] != name or not row["covered"]:
                continue
            units = [u for u in row["units"] if u["quotable"]]
            pos = [np.array(u["features"]) for u in units if u["label"]]
            neg = [np.array(u["features"]) for u in units if not u["label"]]
            if not pos or not neg:
                continue
            for _ in range(pairs_per_question):
                p, n = pos[rng.integers(len(pos))], neg[rng.integers(len(neg))]
                part += [(p - n, 1), (n - p, 0)]
        diffs += [d for d, _ in part]
        labels += [y for _, y in part]
        weights += [1.0 / len(part)] * len(part)
    w = _bounded_logistic(np.array(diffs), np.array(labels), np.array(weights))
    scores, truth = [], []
    for row in rows:
        if row["set"] in libraries and row["covered"]:
            for u in row["units"]:
                if u["quotable"]:
                    scores.append(float(np.dot(w, u["features"])))
                    truth.append(u["label"])
    platt = LogisticRegression(C=1.0, max_iter=1000)
    platt.fit(np.array(scores).reshape(-1, 1), np.array(truth))
    a = float(platt.coef_[0][0])
    return w * a, float(platt.intercept_[0])


def _bounded_logistic(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 0.01
) -> np.ndarray:
    """Weighted logistic regression without intercept whose weights cannot turn a sign the
    feature's meaning fixes: more similar, more shared words, a better-ranked passage or a
    closer neighbour never count against a unit (only `position` is free). Without the bound,
    correlated features (cosine and token match) trade signs between libraries."""
    from scipy.optimize import minimize

    free = {UNIT_FEATURES.index("position")}
    bounds = [(None, None) if i in free else (0.0, None) for i in range(x.shape[1])]
    sign = 2 * y - 1

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (x @ w)
        value = float(np.sum(weights * np.logaddexp(0, -margin))) + l2 * float(w @ w)
        grad = -(x.T @ (weights * sign * _sigmoid(-margin))) + 2 * l2 * w
        return value, grad

    result = minimize(loss, np.full(x.shape[1], 0.1), jac=True, bounds=bounds, method="L-BFGS-B")
    return result.x


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def unit_scores(row: dict, coef: np.ndarray, bias: float) -> list[tuple[str, float]]:
    return [
        (u["document"], float(_sigmoid(np.dot(coef, u["features"]) + bias))) for u in row["units"]
    ]


def choose_margin(rows: list[dict], coef: np.ndarray, bias: float) -> tuple[float, dict]:
    """Over covered questions: how often the answering document is among the documents within
    the margin, and how many others come with it."""
    report = {}
    for margin in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0):  # on the logit scale, as close_documents
        hit, extra, n = 0, 0, 0
        for row in rows:
            if not row["covered"] or not row["document"]:
                continue
            best: dict[str, float] = {}
            for doc, s in unit_scores(row, coef, bias):
                best[doc] = max(best.get(doc, 0.0), s)
            if not best:
                continue
            top = logit(max(best.values()))
            chosen = {d for d, s in best.items() if logit(s) >= top - margin}
            n += 1
            hit += row["document"] in chosen
            extra += len(chosen - {row["document"]})
        report[margin] = {
            "answering_document_kept": round(hit / n, 3),
            "others": round(extra / n, 2),
        }
    # Each other document cited is a possible foreign citation: one costs a twentieth of a
    # question whose answering document is lost.
    margin = max(
        report, key=lambda m: report[m]["answering_document_kept"] - 0.05 * report[m]["others"]
    )
    return margin, report


def _document_rows(rows: list[dict]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(library, features of each document seen, which of them may answer) per covered
    question whose answering document was seen."""
    out = []
    for row in rows:
        seen = row.get("documents_seen") or {}
        gold = set(row.get("documents") or []) | ({row["document"]} if row["document"] else set())
        if not row["covered"] or not seen or not gold & set(seen):
            continue
        x = np.array(list(seen.values()), dtype=float)
        y = np.array([d in gold for d in seen], dtype=float)
        out.append((row["set"], x, y))
    return out


def _fit_choice(data: list[tuple[str, np.ndarray, np.ndarray]], l2: float = 0.01) -> np.ndarray:
    """Conditional logit (which of a question's documents answers), on standardized features,
    each question weighing the same; returned on the raw scale over the best unit's weight, so a
    document's relevance stays on the unit logit's scale."""
    stacked = np.vstack([x for _, x, _ in data])
    mu, sd = stacked.mean(0), stacked.std(0) + 1e-6
    w = np.zeros(stacked.shape[1])
    w[0] = 1.0
    for _ in range(400):
        grad = np.zeros_like(w)
        for _, x, y in data:
            z = (x - mu) / sd
            s = z @ w
            p = np.exp(s - s.max())
            grad += z.T @ (p / p.sum() - y / y.sum())
        w -= 0.1 * (grad / len(data) + l2 * w)
    raw = w / sd
    return raw[1:] / raw[0]


def _chosen(data: list[tuple[str, np.ndarray, np.ndarray]], w: np.ndarray | None) -> dict:
    """Per library: how often the top document is one that may answer."""
    hits: dict[str, list[float]] = {}
    for name, x, y in data:
        score = x[:, 0] if w is None else x[:, 0] + x[:, 1:] @ w
        hits.setdefault(name, []).append(float(y[int(np.argmax(score))]))
    return {name: round(sum(h) / len(h), 3) for name, h in sorted(hits.items())}


def fit_documents(rows: list[dict]) -> tuple[np.ndarray, dict]:
    """The document weights, and how often each library's top document may answer: by the
    best unit alone, by the weights fitted on the other libraries, and by the weights fitted
    on all (what ships)."""
    data = _document_rows(rows)
    names = sorted({name for name, _, _ in data})
    held_out: dict[str, float] = {}
    for name in names:
        w = _fit_choice([d for d in data if d[0] != name])
        held_out.update(_chosen([d for d in data if d[0] == name], w))
    w = _fit_choice(data)
    report = {"best unit": _chosen(data, None), "other libraries' fit": held_out}
    report["all"] = _chosen(data, w)
    return w, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cliniq-fit"))
    parser.add_argument("--limit", type=int, default=300, help="questions per library")
    parser.add_argument("--write", action="store_true", help=f"write {WEIGHTS_PATH}")
    parser.add_argument("--refit", action="store_true", help="reuse collected features")
    parser.add_argument("--add", default="", help="with --refit: collect these libraries again")
    parser.add_argument(
        "--libraries",
        default="medquad,guidelines,mixed",
        help="comma-separated: medquad, guidelines, mixed (one index of every set, built by "
        "scripts/library_eval.py), covid_qa, pubmedqa (each indexed on its own)",
    )
    parser.add_argument("--mixed-index", type=Path, help="the mixed library's index")
    parser.add_argument(
        "--documents",
        action="store_true",
        help="fit only the document weights over the unit weights in use; --write then "
        "replaces only them",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "features.json"
    builders = {
        "medquad": medquad_cases,
        "covid_qa": covid_cases,
        "pubmedqa": pubmed_cases,
        "guidelines": guideline_cases,
        "mixed": lambda work, limit: mixed_cases(work, limit, args.mixed_index),
    }

    def gather(name: str) -> list[dict]:
        assistant, cases = builders[name](args.work, args.limit)
        print(f"{name}: {len(cases)} questions", file=sys.stderr, flush=True)
        return collect(assistant, cases)

    def of(name: str, row: dict) -> bool:
        return row["set"] == name or row["set"].startswith(f"{name}-")

    if args.refit and cache.exists():
        rows = json.loads(cache.read_text())
        for name in filter(None, args.add.split(",")):
            rows = [r for r in rows if not of(name, r)] + gather(name)
        cache.write_text(json.dumps(rows))
    else:
        rows = []
        for name in filter(None, args.libraries.split(",")):
            rows.extend(gather(name))
        cache.write_text(json.dumps(rows))

    if args.documents:
        weights, report = fit_documents(rows)
        result = json.loads(WEIGHTS_PATH.read_text())
        result["document"] = dict(zip(DOCUMENT_FEATURES, map(float, weights), strict=True))
        result["document_fit"] = report
        print(json.dumps({k: result[k] for k in ("document", "document_fit")}, indent=2))
        if args.write:
            WEIGHTS_PATH.write_text(json.dumps(result, indent=2) + "\n")
        return
    unit_coef, unit_bias = fit_units(rows)
    margin, margins = choose_margin(rows, unit_coef, unit_bias)
    # Over the best-unit logits of the weights in use when the features were collected.
    doc_w, doc_report = fit_documents(rows)
    result = {
        "about": "Fitted by scripts/fit_relevance.py on development parts (evals.split) of "
        "MedQuAD, COVID-QA, PubMedQA and guidelines; see docs/answering.md.",
        "unit": dict(zip(UNIT_FEATURES, map(float, unit_coef), strict=True)),
        "unit_intercept": unit_bias,
        "document_margin": margin,
        "document": dict(zip(DOCUMENT_FEATURES, map(float, doc_w), strict=True)),
        "document_fit": doc_report,
        "fit": {
            "questions": {
                name: {
                    "covered": sum(1 for r in rows if r["set"] == name and r["covered"]),
                    "uncovered": sum(1 for r in rows if r["set"] == name and not r["covered"]),
                }
                for name in sorted({r["set"] for r in rows})
            },
            "margins": {str(k): v for k, v in margins.items()},
        },
    }
    print(json.dumps(result, indent=2))
    if args.write:
        WEIGHTS_PATH.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
