"""Build the corpus perturbation set: the bundled guidelines' own sentences, each altered the
ways a clinical answer goes wrong, with the untouched sentence kept as a control.

Sources are the recommendation statements (``recommendation`` blocks: statement plus remarks as
the passage) and the body sentences that recommend or suggest something (the sentence as the
passage). Every altered claim is cited to the unaltered passage, so a judge must flag it:

* ``direction``: recommends <-> recommends against, should <-> should not, consider <-> not use;
* ``direction+strength``: "suggests against" -> "strongly recommends" (and back);
* ``strength``: recommends <-> suggests, strong <-> conditional;
* ``number``: one number or range shifted (years and citations left alone);
* ``drug``: a drug swapped for a lexicon drug the passage does not name;
* ``population``: a patient group swapped for another lexicon population;
* ``option``: the advice attached to another option (drug, class, procedure, test) that the
  same guideline makes a recommendation about.

Names come from the lexicon (``corpus/lexicon``), never from this script. Each source sentence
falls in the ``train`` or ``test`` half by a stable hash: the learned judge may train on the
train half only, so the test half stays unseen. Deterministic (``--seed``).

    python scripts/build_perturbations.py          # writes evals/data/perturbations.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from assistant.support.terms import ClinicalTerms, load_terms  # noqa: E402

OUT = REPO_ROOT / "evals" / "data" / "perturbations.jsonl"
KINDS = ("direction", "direction+strength", "strength", "number", "drug", "population", "option")
_VERB = re.compile(r"\b(?:recommend|suggest|advise|should|consider)", re.I)
_QTY = re.compile(r"\d\s*(?:mg|ng/mL|µg/L|%|per hour|weeks?|months?|days?)\b")
_BLOCK = re.compile(r"```recommendation\n(.*?)```", re.S)


def _sub_first(pattern: str, repl: str, text: str, flags: int = re.I) -> str | None:
    new, n = re.subn(pattern, repl, text, count=1, flags=flags)
    return new if n and new != text else None


def flip_direction(text: str) -> str | None:
    for pattern, repl in (
        (r"\b(recommends|suggests|advises|recommended|suggested)\s+against\b", r"\1"),
        (r"\bshould not\b", "should"),
        (r"\bnot\s+(recommended|suggested)\b", r"\1"),
        (r"\bto consider\b", "not to use"),
        (r"\b(recommends|suggests)\b(?!\s+against)", r"\1 against"),
        (r"\b(is|are)\s+(recommended|suggested)\b", r"\1 not \2"),
        (r"\bshould\b(?!\s+not)", "should not"),
    ):
        new = _sub_first(pattern, repl, text)
        if new:
            return new
    return None


def flip_direction_strength(text: str) -> str | None:
    new = _sub_first(r"\bsuggests\s+against\b", "strongly recommends", text)
    return new or _sub_first(r"\brecommends\s+against\b", "suggests", text)


def flip_strength(text: str) -> str | None:
    for pattern, repl in (
        (r"\brecommends\b", "suggests"),
        (r"\bsuggests\b", "recommends"),
        (r"\bstrong\b", "conditional"),
        (r"\bconditional\b", "strong"),
    ):
        if re.search(rf"\b{repl}\b", text, re.I):
            continue  # the sentence already uses both words: a swap would not change a grade
        new = _sub_first(pattern, repl, text)
        if new:
            return new
    return None


_NUMBER = re.compile(r"(?<![\w.;(/])(\d+(?:\.\d+)?)(?:\s*(-|–|to)\s*(\d+(?:\.\d+)?))?(?![\w;:)/])")


def shift_number(text: str, rng: random.Random) -> str | None:
    candidates = []
    for m in _NUMBER.finditer(text):
        a = float(m.group(1))
        if 1900 <= a <= 2100 and not m.group(3):
            continue  # a year
        candidates.append(m)
    if not candidates:
        return None
    m = candidates[rng.randrange(len(candidates))]

    def fmt(x: float, like: str) -> str:
        return f"{x:.{len(like.split('.')[1])}f}" if "." in like else str(round(x))

    a = float(m.group(1))
    if m.group(3):
        b = float(m.group(3))
        width = max(b - a, 1.0)
        sep = m.group(2) if m.group(2) != "to" else " to "
        new = f"{fmt(b, m.group(1))}{sep}{fmt(b + width, m.group(3))}"
        new = new.replace("  ", " ")
    else:
        factor = rng.choice([0.5, 2.0, 3.0]) if a > 1 else 3.0
        new = fmt(a * factor if a * factor != a else a + 1, m.group(1))
        if new == m.group(1):
            new = fmt(a + 1, m.group(1))
    return text[: m.start()] + new + text[m.end() :]


def _find_term(text: str, names: dict[str, list[str]]) -> tuple[str, re.Match[str]] | None:
    """The first (longest at a position) lexicon term of ``names`` in ``text``."""
    best = None
    for cid, terms in names.items():
        for term in terms:
            m = re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text, re.I)
            if m and (
                best is None or (m.start(), -len(term)) < (best[1].start(), -len(best[1].group(0)))
            ):
                best = (cid, m)
    return best


def swap_term(
    text: str, passage: str, terms: ClinicalTerms, kind: str, pool: list[str], rng: random.Random
) -> str | None:
    """The first ``kind`` term of ``text`` replaced by a ``pool`` concept the passage lacks."""
    names = terms.names(kind)
    hit = _find_term(text, names)
    if hit is None:
        return None
    cid, m = hit
    present = (
        terms.find(passage, kind) | terms.find(passage, "drug") | terms.find(passage, "option")
    )
    choices = [c for c in pool if c != cid and c not in present and c in names]
    if not choices:
        return None
    other = choices[rng.randrange(len(choices))]
    canonical = _canonical(terms, other)
    return text[: m.start()] + canonical + text[m.end() :]


def _canonical(terms: ClinicalTerms, cid: str) -> str:
    from assistant.lexicon import Lexicon

    del terms
    return Lexicon.cached(_LEXICON_DIR).concept(cid).canonical


_LEXICON_DIR = REPO_ROOT / "corpus" / "lexicon"


def sources(corpus_dir: Path) -> list[dict]:
    """Recommendation statements and recommending body sentences, with their guideline."""
    import yaml

    out = []
    for path in sorted((corpus_dir / "guidelines").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        body = text.split("---", 2)[-1]
        for block in _BLOCK.findall(body):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and data.get("statement"):
                statement = " ".join(str(data["statement"]).split())
                remarks = " ".join(str(data.get("remarks") or "").split())
                out.append(
                    {
                        "doc": path.stem,
                        "claim": statement,
                        "passage": f"{statement} {remarks}".strip(),
                    }
                )
        prose = _BLOCK.sub("", body)
        for line in prose.splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "|", "-", "*", ">")):
                for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line):
                    if len(sentence) > 40 and (_VERB.search(sentence) or _QTY.search(sentence)):
                        out.append({"doc": path.stem, "claim": sentence, "passage": sentence})
    seen, unique = set(), []
    for s in out:
        if s["claim"] not in seen:
            seen.add(s["claim"])
            unique.append(s)
    return unique


def build(corpus_dir: Path, lexicon_dir: Path, seed: int) -> list[dict]:
    terms = load_terms(lexicon_dir)
    rng = random.Random(seed)
    srcs = sources(corpus_dir)
    options_by_doc: dict[str, set[str]] = {}
    for s in srcs:
        options_by_doc.setdefault(s["doc"], set()).update(terms.find(s["claim"], "option"))
    all_drugs = sorted(terms.names("drug"))
    populations = sorted(terms.names("population"))
    records = []
    for s in srcs:
        sid = hashlib.sha1(s["claim"].encode()).hexdigest()[:12]
        half = "train" if int(sid, 16) % 2 == 0 else "test"
        claim, passage = s["claim"], s["passage"]
        made = {
            "direction": flip_direction(claim),
            "direction+strength": flip_direction_strength(claim),
            "strength": flip_strength(claim),
            "number": shift_number(claim, rng),
            "drug": swap_term(claim, passage, terms, "drug", all_drugs, rng),
            "population": swap_term(claim, passage, terms, "population", populations, rng),
            "option": swap_term(
                claim, passage, terms, "option", sorted(options_by_doc[s["doc"]]), rng
            ),
        }
        base = {"source_id": sid, "doc": s["doc"], "half": half, "passage": passage}
        records.append({**base, "kind": "control", "claim": claim})
        for kind in KINDS:
            if made[kind] and made[kind] != claim:
                records.append({**base, "kind": kind, "claim": made[kind]})
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO_ROOT / "corpus")
    ap.add_argument("--lexicon", type=Path, default=_LEXICON_DIR)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    records = build(args.corpus, args.lexicon, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for r in records:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    print(f"{len(records)} records -> {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
