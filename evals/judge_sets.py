"""Labelled claim-versus-evidence sets for the 3-way support judge, with fixed splits.

One place says how each public set becomes (claim, passage, label) pairs and which part is
train, dev or test, so the training script and the benchmark can never disagree about a split.
Sets without an official split are split by a stable hash of their group (a claim, a premise, a
document), never by row. Standard library only: the training stage that runs on an accelerator
machine reads the pairs this module writes, not this module.

Labels: 0 supported, 1 contradicted, 2 not enough information.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets" / "faithfulness"
PERTURBATIONS = REPO_ROOT / "evals" / "data" / "perturbations.jsonl"

SUPPORTED, CONTRADICTED, NEI = 0, 1, 2
SUMMEDITS_DOMAINS = (
    "ectsum",
    "news",
    "podcast",
    "qmsumm",
    "sales_call",
    "sales_email",
    "samsum",
    "scitldr",
)


class SetMissingError(FileNotFoundError):
    """A labelled set is not where it should be."""


@dataclass(frozen=True)
class Pair:
    claim: str
    passage: str
    label: int
    source: str  # a LOADERS key (summedits:<domain>) or corpus
    split: str  # train | dev | test
    group: str  # pairs sharing a group share a split
    unit: str = ""  # the unit a metric aggregates over (a WiCE claim id); "" = the pair
    kind: str = ""  # perturbation kind, rationale-only pair, ...

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a group key (the same on every machine and run)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def _split3(key: str, train: float, dev: float) -> str:
    b = bucket(key)
    return "train" if b < train else "dev" if b < train + dev else "test"


def _require(path: Path) -> Path:
    if not path.exists():
        raise SetMissingError(
            f"labelled data not found: {path} "
            "(see ../shared/datasets/README.md, or pass --data-dir)"
        )
    return path


def _jsonl(path: Path) -> list[dict]:
    with _require(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_DETOK = re.compile(r" ([.,!?;:)]|'s|n't)")


def _detok(text: str) -> str:
    return _DETOK.sub(r"\1", text.strip()).replace("( ", "(")


# ------------------------------------------------------------------ SNLI (e-SNLI dev/test)

_SNLI = {"entailment": SUPPORTED, "contradiction": CONTRADICTED, "neutral": NEI}


def load_snli(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """``dev``: SNLI dev, 90% train / 10% dev by premise; ``test``: the whole test split."""
    name = "dev" if split in ("train", "dev") else "test"
    folder = Path(data_dir) / "esnli"
    lines = [
        _require(folder / f"{part}.{name}").read_text(encoding="utf-8").splitlines()
        for part in ("s1", "s2", "labels")
    ]
    out = []
    for premise, hypothesis, label in zip(*lines, strict=True):
        if label.strip() not in _SNLI:
            continue
        group = premise.strip()
        part = "test" if name == "test" else ("dev" if bucket("snli" + group) < 0.1 else "train")
        if part == split:
            out.append(
                Pair(_detok(hypothesis), _detok(premise), _SNLI[label.strip()], "snli", part, group)
            )
    return out


# ------------------------------------------------------------------ Citation-Integrity

_CITE_MARK = re.compile(r"\s*\[[^\[\]]*<\|[a-z_]*cit\|>[^\[\]]*\]|<\|[a-z_]*cit\|>")
_CI = {"SUPPORT": SUPPORTED, "REFUTE": CONTRADICTED}


def citint_claim(text: str) -> str:
    """The citing sentence without its citation markers ([<|cit|>], [<|multi_cit|>, 7])."""
    return re.sub(r"\s+", " ", _CITE_MARK.sub("", text)).strip()


def load_citint(
    split: str, data_dir: Path = DEFAULT_DATA_DIR, rationales: bool = False
) -> list[Pair]:
    """One pair per citing sentence: the sentence against its cited abstract (the first cited
    document with a label, else the first cited one: not enough information). With
    ``rationales`` (training), the labelled sentences alone are added as a second pair."""
    folder = Path(data_dir) / "citation_integrity"
    corpus = {d["doc_id"]: d["abstract"] for d in _jsonl(folder / "corpus.jsonl")}
    out = []
    for row in _jsonl(folder / f"claims_{split}.jsonl"):
        claim = citint_claim(row["claim"])
        evidence = row.get("evidence") or {}
        doc = next(iter(evidence), None)
        if doc is None and row.get("cited_doc_ids"):
            doc = str(row["cited_doc_ids"][0])
        if doc is None or int(doc) not in corpus:
            continue
        abstract = corpus[int(doc)]
        sets = evidence.get(doc) or []
        label = _CI.get(sets[0]["label"], NEI) if sets else NEI
        group = f"citint-{row['id']}"
        out.append(Pair(claim, " ".join(abstract), label, "citint", split, group))
        if rationales and sets:
            idx = sorted({i for s in sets for i in s["sentences"] if i < len(abstract)})
            if idx:
                text = " ".join(abstract[i] for i in idx)
                out.append(Pair(claim, text, label, "citint", split, group, kind="rationale"))
    return out


# ------------------------------------------------------------------ CLIMATE-FEVER

_CF = {"SUPPORTS": SUPPORTED, "REFUTES": CONTRADICTED, "NOT_ENOUGH_INFO": NEI}


def load_climate_fever(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Claim-evidence pairs; claims split 70 / 10 / 20 (train / dev / test) by claim id."""
    out = []
    for row in _jsonl(Path(data_dir) / "climate_fever" / "climate-fever.jsonl"):
        part = _split3("cf" + str(row["claim_id"]), 0.7, 0.1)
        if part != split:
            continue
        for ev in row["evidences"]:
            if ev.get("evidence_label") in _CF:
                out.append(
                    Pair(
                        row["claim"].strip(),
                        ev["evidence"].strip(),
                        _CF[ev["evidence_label"]],
                        "climate_fever",
                        part,
                        f"cf-{row['claim_id']}",
                        unit=str(row["claim_id"]),
                    )
                )
    return out


# ------------------------------------------------------------------ SummEdits


def load_summedits(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """(document, summary) pairs of 8 domains; documents split 40 / 10 / 50 within each."""
    out = []
    for domain in SUMMEDITS_DOMAINS:
        path = _require(Path(data_dir) / "summedits" / f"summedits_{domain}.json")
        for row in json.loads(path.read_text(encoding="utf-8")):
            doc = str(row["doc"]).strip()
            group = f"se-{domain}-{hashlib.sha1(doc.encode()).hexdigest()[:12]}"
            part = _split3(group, 0.4, 0.1)
            if part == split and str(row.get("summary", "")).strip():
                label = SUPPORTED if str(row["label"]) == "1" else CONTRADICTED
                out.append(
                    Pair(
                        str(row["summary"]).strip(), doc, label, f"summedits:{domain}", part, group
                    )
                )
    return out


# ------------------------------------------------------------------ WiCE and HealthVer

_WICE = {"supported": SUPPORTED, "partially_supported": NEI, "not_supported": NEI}
_HV = {"Supports": SUPPORTED, "Refutes": CONTRADICTED, "Neutral": NEI}


def load_wice(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Oracle-chunk rows (about 3 per claim). ``train``/``dev``: WiCE dev split 80 / 20 by claim;
    ``test``: the test split."""
    name = "test" if split == "test" else "dev"
    out = []
    for r in _jsonl(Path(data_dir) / "wice" / f"oracle_chunks_claim_{name}.jsonl"):
        cid = r["meta"]["id"]
        part = "test" if name == "test" else ("dev" if bucket("wice" + cid) < 0.2 else "train")
        if part == split:
            passage = "\n".join(r["evidence"])
            out.append(Pair(r["claim"], passage, _WICE[r["label"]], "wice", part, cid, unit=cid))
    return out


def load_healthver(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """``train``/``dev``: HealthVer dev split 80 / 20 by claim; ``test``: the test split."""
    name = "test" if split == "test" else "dev"
    path = _require(Path(data_dir) / "healthver" / f"healthver_{name}.csv")
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            claim = r["claim"].strip()
            part = "test" if name == "test" else ("dev" if bucket("hv" + claim) < 0.2 else "train")
            if part == split and r["label"] in _HV:
                out.append(
                    Pair(claim, r["evidence"].strip(), _HV[r["label"]], "healthver", part, claim)
                )
    return out


# ------------------------------------------------------------------ corpus perturbations


def load_perturbations(path: Path = PERTURBATIONS, half: str | None = None) -> list[Pair]:
    """The perturbation set (scripts/build_perturbations.py); ``half`` = train | test keeps one
    half of its source sentences (the learned judge trains on the train half only)."""
    out = []
    for r in _jsonl(Path(path)):
        if half is None or r["half"] == half:
            label = SUPPORTED if r["kind"] == "control" else CONTRADICTED
            out.append(
                Pair(
                    r["claim"],
                    r["passage"],
                    label,
                    "corpus",
                    r["half"],
                    r["source_id"],
                    kind=r["kind"],
                )
            )
    return out


# ------------------------------------------------------------------ NLI sets with pairs.jsonl

_PJ = {"supported": SUPPORTED, "contradicted": CONTRADICTED, "nei": NEI, "not_supported": NEI}


def _pairs(folder: str, data_dir: Path, name: str = "pairs.jsonl") -> list[dict]:
    """A set's normalised ``pairs.jsonl`` (premise = evidence, hypothesis = claim)."""
    return _jsonl(Path(data_dir) / folder / name)


def _pair(r: dict, source: str, split: str, group: str, kind: str = "", unit: str = "") -> Pair:
    return Pair(
        r["hypothesis"].strip(),
        r["premise"].strip(),
        _PJ[r["label"]],
        source,
        split,
        group,
        unit=unit,
        kind=kind,
    )


def load_mnli(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """MultiNLI dev-matched split in halves by premise: ``test`` is the held-out half; the
    other half is 80 / 20 ``train`` / ``dev`` (by premise too)."""
    out = []
    for r in _pairs("mnli_dev_matched", data_dir):
        group = r["premise"].strip()
        b = bucket("mnli" + group)
        part = "test" if b < 0.5 else "dev" if b < 0.6 else "train"
        if part == split:
            out.append(_pair(r, "mnli", part, "mnli-" + group))
    return out


def load_check_covid(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Check-COVID claims against their evidence sentences, official train / dev / test. Train
    leaves out claims marked as near duplicates of a HealthVer test claim and those whose
    abstract shares a sentence with a HealthVer test passage."""
    out = []
    for r in _pairs("check_covid", data_dir):
        if r["split"] != split:
            continue
        if split == "train" and (
            r.get("near_dup_healthver_test") or r.get("healthver_test_shared_abstract")
        ):
            continue
        group = "cc-" + r["id"].rsplit("_", 1)[0]
        out.append(_pair(r, "check_covid", split, group, kind=r.get("claim_type", "")))
    return out


def load_cad(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Counterfactually augmented SNLI, official train / dev / test (dev and test are built on
    SNLI dev and test pairs)."""
    return [
        _pair(r, "cad", split, f"cad-{r['premise'].strip()}")
        for r in _pairs("counterfactual_nli", data_dir)
        if r["split"] == split
    ]


def load_fm2(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Fool Me Twice: the upstream dev split 85 / 15 ``train`` / ``dev`` by Wikipedia page; the
    upstream test split is ``test``. ``kind`` tells gold pairs from derived (silver) nei ones."""
    out = []
    for r in _pairs("fool_me_twice", data_dir):
        group = "fm2-" + r["wikipedia_page"]
        part = "test" if r["split"] == "test" else "dev" if bucket(group) < 0.15 else "train"
        if part == split:
            out.append(_pair(r, "fm2", part, group, kind=r.get("label_source", "")))
    return out


def load_fever_sym(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """FEVER-Symmetric v0.2: upstream dev 85 / 15 ``train`` / ``dev`` by FEVER id (the four
    pairs of a set stay together); upstream test is ``test``."""
    out = []
    for r in _pairs("fever_symmetric", data_dir):
        group = "fs-" + str(r["group"])
        part = "test" if r["split"] == "test" else "dev" if bucket(group) < 0.15 else "train"
        if part == split:
            kind = "generated" if r.get("generated") else "original"
            out.append(_pair(r, "fever_sym", part, group, kind=kind))
    return out


def load_negation_nli(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Negation NLI, MNLI and SNLI parts (three-way), split 50 / 10 / 40 ``train`` / ``dev`` /
    ``test`` by base pair (its three negated versions stay together). The SNLI part is built
    on SNLI dev pairs. ``kind`` = what was negated."""
    out = []
    for r in _pairs("negation_nli", data_dir):
        group = f"neg-{r['subset']}-{r['group']}"
        part = _split3(group, 0.5, 0.1)
        if part == split:
            out.append(_pair(r, "negation_nli", part, group, kind=f"{r['subset']}:{r['negated']}"))
    return out


def load_breaking_nli(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """Breaking NLI (one word of an SNLI premise replaced), split 50 / 10 / 40 by premise.
    87% of it is contradicted: report per-class recall, not accuracy. ``kind`` = category."""
    out = []
    for r in _pairs("breaking_nli", data_dir):
        group = "bnli-" + r["premise"].strip()
        part = _split3(group, 0.5, 0.1)
        if part == split:
            out.append(_pair(r, "breaking_nli", part, group, kind=r.get("category", "")))
    return out


def load_med(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """MED (monotonicity), two-way only (not entailed = ``NEI`` here, ``kind`` "2way"): it
    cannot train a three-way judge, so all of it is ``test`` (supported vs the rest)."""
    if split != "test":
        return []
    return [
        _pair(r, "med", "test", r["id"], kind="2way")
        for r in _pairs("med", data_dir, "pairs_2way.jsonl")
    ]


def load_anli(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[Pair]:
    """ANLI dev rounds 1-3. NON-COMMERCIAL (CC BY-NC 4.0): evaluation only, so every pair is
    ``test`` and asking for a training part is an error. ``kind`` = the round."""
    if split != "test":
        raise ValueError(
            f"ANLI is licensed for non-commercial use (CC BY-NC 4.0): evaluation only, "
            f"no {split!r} part; leave it out of training data"
        )
    return [
        _pair(r, "anli", "test", r["id"], kind=r["split"])
        for r in _pairs("noncommercial/anli_dev", data_dir)
    ]


# Sets a shipped judge may train on (train parts) and be chosen on (dev parts).
TRAINABLE = (
    "snli",
    "citint",
    "climate_fever",
    "summedits",
    "wice",
    "healthver",
    "mnli",
    "check_covid",
    "cad",
    "fm2",
    "fever_sym",
    "negation_nli",
    "breaking_nli",
)
EVAL_ONLY = ("med", "anli")

LOADERS = {
    "snli": load_snli,
    "citint": load_citint,
    "climate_fever": load_climate_fever,
    "summedits": load_summedits,
    "wice": load_wice,
    "healthver": load_healthver,
    "mnli": load_mnli,
    "check_covid": load_check_covid,
    "cad": load_cad,
    "fm2": load_fm2,
    "fever_sym": load_fever_sym,
    "negation_nli": load_negation_nli,
    "breaking_nli": load_breaking_nli,
    "med": load_med,
    "anli": load_anli,
}
