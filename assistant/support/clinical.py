"""Deterministic clinical checks: what a claim states must match what its cited text states.

Embeddings are blind to the details that matter most in a clinical answer: 300 mg and 600 mg,
"recommends" and "recommends against", two drugs of one class sit almost on top of each other in
vector space. These pure functions look for exactly those slips and name the rule that fired,
so a reader of a verdict sees why it failed. They are fast and need no model. Which names are
drugs, options and populations comes from the term lexicon (``assistant.support.terms``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from assistant.support.base import SupportLabel, SupportVerdict, clip01, judge_nonempty
from assistant.support.terms import ClinicalTerms, load_terms
from assistant.support.text import (
    best_overlap_sentence,
    content_stems,
    overlap_recall,
    split_sentences,
)

# --------------------------------------------------------------------------- quantities

_MASS = {"kg": 1e6, "g": 1e3, "mg": 1.0, "ug": 1e-3, "ng": 1e-6, "pg": 1e-9}
_MOLES = {"mol": 1e3, "mmol": 1.0, "umol": 1e-3, "nmol": 1e-6, "pmol": 1e-9}
_VOLUME = {"l": 1.0, "dl": 0.1, "ml": 1e-3, "ul": 1e-6}
_TIME = {"min": 1 / 1440, "h": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.4, "year": 365.25}
_OTHER = {"%": "%", "iu": "iu", "meq": "meq", "mmhg": "mmhg", "bpm": "bpm", "kcal": "kcal"}

_UNIT_ALIASES = {
    "mcg": "ug",
    "µg": "ug",
    "μg": "ug",
    "microgram": "ug",
    "micrograms": "ug",
    "milligram": "mg",
    "milligrams": "mg",
    "gram": "g",
    "grams": "g",
    "kilogram": "kg",
    "kilograms": "kg",
    "nanogram": "ng",
    "nanograms": "ng",
    "µmol": "umol",
    "μmol": "umol",
    "µl": "ul",
    "μl": "ul",
    "litre": "l",
    "liter": "l",
    "percent": "%",
    "per cent": "%",
    "units": "iu",
    "unit": "iu",
    "u": "iu",
    "hours": "h",
    "hour": "h",
    "hr": "h",
    "hrs": "h",
    "days": "day",
    "d": "day",
    "weeks": "week",
    "wk": "week",
    "wks": "week",
    "months": "month",
    "mo": "month",
    "years": "year",
    "yr": "year",
    "yrs": "year",
    "minutes": "min",
    "minute": "min",
    "mins": "min",
}

_UNIT_WORDS = sorted(
    set(_MASS) | set(_MOLES) | set(_VOLUME) | set(_TIME) | set(_OTHER) | set(_UNIT_ALIASES),
    key=len,
    reverse=True,
)
_UNIT_RE = "|".join(re.escape(u) for u in _UNIT_WORDS)
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+"
_QUANTITY = re.compile(
    rf"(?<![\w.])(?P<a>{_NUM})"
    rf"(?:\s*(?:-|–|—|to)\s*(?P<b>{_NUM}))?"
    rf"(?:\s*(?P<unit>(?:{_UNIT_RE})(?:\s*/\s*(?:{_UNIT_RE}|m2|m²|kg|dose))?)(?![A-Za-z]))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quantity:
    """A number as written, with its unit mapped to a dimension and a base-unit value."""

    text: str
    low: float
    high: float
    dimension: str  # "" for a bare number

    def matches(self, other: Quantity, rel_tol: float = 1e-6) -> bool:
        if self.dimension and other.dimension and self.dimension != other.dimension:
            return False
        lo, hi = other.low * (1 - rel_tol), other.high * (1 + rel_tol)
        if self.low == self.high:
            return lo <= self.low <= hi or math.isclose(self.low, other.low, rel_tol=rel_tol)
        return math.isclose(self.low, other.low, rel_tol=rel_tol) and math.isclose(
            self.high, other.high, rel_tol=rel_tol
        )


def _canonical_unit(unit: str) -> str:
    u = unit.lower().strip()
    return _UNIT_ALIASES.get(u, u)


def _dimension_and_factor(unit: str | None) -> tuple[str, float]:
    """Map 'ng/mL' to ('mass/volume', 1e-3) so that 75 ng/mL equals 75 µg/L."""
    if not unit:
        return "", 1.0
    parts = [p.strip() for p in re.split(r"/", unit)]
    num = _canonical_unit(parts[0])
    den = _canonical_unit(parts[1]) if len(parts) > 1 else None
    if num in _MASS:
        dim, factor = "mass", _MASS[num]
    elif num in _MOLES:
        dim, factor = "moles", _MOLES[num]
    elif num in _VOLUME:
        dim, factor = "volume", _VOLUME[num]
    elif num in _TIME:
        dim, factor = "time", _TIME[num]
    elif num in _OTHER:
        dim, factor = _OTHER[num], 1.0
    else:
        dim, factor = num, 1.0
    if den is None or den in _TIME or den == "dose":
        return dim, factor  # "300 mg/day" and "300 mg" state the same dose
    if den in _VOLUME:
        return f"{dim}/volume", factor / _VOLUME[den]
    return f"{dim}/{den}", factor


def _to_float(text: str) -> float:
    return float(text.replace(",", ""))


def extract_quantities(text: str) -> list[Quantity]:
    """Numbers in ``text``, with ranges ('300–600 mg') and units normalised to one base."""
    out: list[Quantity] = []
    for m in _QUANTITY.finditer(text):
        unit = m.group("unit")
        dim, factor = _dimension_and_factor(unit)
        a = _to_float(m.group("a")) * factor
        b = _to_float(m.group("b")) * factor if m.group("b") else a
        out.append(Quantity(m.group(0).strip(), min(a, b), max(a, b), dim))
    return out


# --------------------------------------------------------------------------- cues

_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|cannot|without|lack(?:s|ed|ing)?\s+of|absence\s+of|"
    r"fail(?:s|ed)?\s+to|unable\s+to|unlikely|"
    r"(?:do|does|did|is|are|was|were|has|have|had|should|could|would|can|will)n['’]t|won['’]t)\b",
    re.IGNORECASE,
)
_AGAINST = re.compile(
    r"\b(?:recommend(?:s|ed)?|suggest(?:s|ed)?|advise(?:s|d)?|argue(?:s|d)?|caution(?:s|ed)?)"
    r"\s+against\b|\bshould\s+not\b|\bshouldn['’]t\b|\bnot\s+(?:be\s+)?(?:recommended|suggested|"
    r"advised|indicated|used|prescribed|given)\b|\bdo\s+not\s+(?:use|give|prescribe|start)\b|"
    r"\bnot\s+to\s+(?:use|give|prescribe|start|offer|consider)\b|"
    r"\bavoid(?:s|ed|ing)?\b|\bcontraindicated\b|\bdiscourage(?:s|d)?\b",
    re.IGNORECASE,
)
_FOR = re.compile(
    r"\b(?:recommend(?:s|ed|ations?)?|suggest(?:s|ed)?|advise(?:s|d)?|should\s+(?:be\s+)?"
    r"(?:use|used|offer|offered|give|given|start|started|receive|considered?)|"
    r"favou?rs?|endorse(?:s|d)?|first[- ]line|indicated)\b",
    re.IGNORECASE,
)
_SUPERSEDED = re.compile(
    r"\b(?:superseded|withdrawn|retired|obsolete|no\s+longer\s+(?:recommended|suggested|advised|"
    r"endorsed|current|in\s+use|used|valid)|no\s+longer\s+(?:recommends|suggests|advises))\b",
    re.IGNORECASE,
)
_CONDITIONAL = re.compile(
    r"\b(?:conditional(?:ly)?|weak(?:ly)?|suggest(?:s|ed)?|may\s+be\s+considered|"
    r"could\s+be\s+considered|optional)\b",
    re.IGNORECASE,
)
_STRONG = re.compile(
    r"\b(?:strong(?:ly)?|recommend(?:s|ed)?|must|standard\s+of\s+care|first[- ]line)\b",
    re.IGNORECASE,
)
_INCREASE = re.compile(
    r"\b(?:increase(?:s|d)?|increasing|higher|rais(?:e|es|ed|ing)|elevat(?:e|es|ed|ing)|"
    r"improve(?:s|d)?|improving|greater|more\s+likely|rise|rises|rising|boost(?:s|ed)?)\b",
    re.IGNORECASE,
)
_DECREASE = re.compile(
    r"\b(?:decrease(?:s|d)?|decreasing|lower(?:s|ed)?|reduc(?:e|es|ed|ing|tion)|"
    r"diminish(?:es|ed)?|less\s+likely|declin(?:e|es|ed|ing)|worsen(?:s|ed)?|fall(?:s)?|"
    r"drop(?:s|ped)?)\b",
    re.IGNORECASE,
)


def negation_count(text: str) -> int:
    return len(_NEGATION.findall(text))


def recommendation_direction(text: str) -> str | None:
    """'superseded', 'against', 'for', or None when the sentence makes no recommendation."""
    if _SUPERSEDED.search(text):
        return "superseded"
    if _AGAINST.search(text):
        return "against"
    if _FOR.search(text):
        return "for"
    return None


def recommendation_strength(text: str) -> str | None:
    """'conditional' ('suggests', 'weak'), 'strong' ('recommends', 'strong'), or None."""
    if _CONDITIONAL.search(text):
        return "conditional"
    if _STRONG.search(text):
        return "strong"
    return None


def effect_direction(text: str) -> str | None:
    """'up', 'down' or None: the direction of an effect the sentence reports."""
    up, down = bool(_INCREASE.search(text)), bool(_DECREASE.search(text))
    if up == down:
        return None
    return "up" if up else "down"


# --------------------------------------------------------------------------- drugs


def default_terms() -> ClinicalTerms:
    """The lexicon's terms from the settings' lexicon directory (``CLINIQ_LEXICON_DIR``)."""
    from ingest.settings import Settings

    return load_terms(Settings().lexicon_dir)


def drug_names(
    text: str, extra: Iterable[str] = (), terms: ClinicalTerms | None = None
) -> set[str]:
    """Drugs in ``text``: lexicon drug concepts (by id), generic-name stems and the lexicon's
    outside-scope drug words, and ``extra`` names."""
    terms = default_terms() if terms is None else terms
    found = terms.find(text, "drug") | terms.drug_words(text)
    extra_set = {e.lower() for e in extra}
    found |= {t.lower() for t in re.findall(r"[A-Za-z][A-Za-z\-]+", text) if t.lower() in extra_set}
    return found


# --------------------------------------------------------------------------- the checker


class Severity(StrEnum):
    contradiction = "contradiction"  # the claim states something the text states otherwise
    unsupported = "unsupported"  # the claim states something the text does not state
    cue = "cue"  # a weak signal, shown but never decisive on its own


@dataclass(frozen=True)
class Finding:
    rule: str
    detail: str
    severity: Severity

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}" if self.detail else self.rule


RULE_NAMES = (
    "number-mismatch",
    "unit-mismatch",
    "unseen-number",
    "drug-mismatch",
    "unseen-drug",
    "negation-mismatch",
    "direction-mismatch",
    "strength-mismatch",
    "effect-direction-mismatch",
)
# Rules the learned scorer's features predate (its weights name the ones above).
LEXICON_RULES = (
    "option-mismatch",
    "unseen-option",
    "population-mismatch",
    "unseen-population",
    "pairing-mismatch",
)


@dataclass
class ClinicalCheck:
    """Everything the checker found for one (claim, passage) pair."""

    findings: list[Finding] = field(default_factory=list)
    evidence: str | None = None
    lexical_recall: float = 0.0

    @property
    def rules(self) -> list[str]:
        return [str(f) for f in self.findings]

    @property
    def contradiction(self) -> bool:
        return any(f.severity is Severity.contradiction for f in self.findings)

    def count(self, rule: str) -> int:
        return sum(f.rule == rule for f in self.findings)

    def as_features(self) -> dict[str, float]:
        """Counts per rule, for the learned scorer (which decides how much each matters)."""
        return {f"rule_{name.replace('-', '_')}": float(self.count(name)) for name in RULE_NAMES}


def _check_quantities(claim: str, passage: str) -> list[Finding]:
    findings: list[Finding] = []
    passage_q = extract_quantities(passage)
    for q in extract_quantities(claim):
        if any(q.matches(p) for p in passage_q):
            continue
        same_dim = [p for p in passage_q if q.dimension and p.dimension == q.dimension]
        # Same number, another unit ("75 mg" vs "75 µg"): a unit slip, not a different dose.
        same_value = [
            p
            for p in passage_q
            if q.dimension and p.dimension and _leading_number(p.text) == _leading_number(q.text)
        ]
        if same_value:
            findings.append(
                Finding(
                    "unit-mismatch", f"{q.text} vs {same_value[0].text}", Severity.contradiction
                )
            )
        elif same_dim:
            closest = min(same_dim, key=lambda p: abs(math.log((p.low + 1e-12) / (q.low + 1e-12))))
            findings.append(
                Finding("number-mismatch", f"{q.text} vs {closest.text}", Severity.contradiction)
            )
        elif q.dimension and any(p.dimension == "" and p.matches(q) for p in passage_q):
            continue  # the passage states the number without repeating the unit
        elif not q.dimension and any(p.low <= q.low <= p.high for p in passage_q):
            continue
        else:
            findings.append(Finding("unseen-number", q.text, Severity.unsupported))
    return findings


def _leading_number(text: str) -> str:
    m = re.match(r"[\d.,]+", text)
    return m.group(0).replace(",", "") if m else ""


def _unmatched(
    claim_ids: set[str], passage_ids: set[str], terms: ClinicalTerms
) -> tuple[list[str], list[str]]:
    """(claim names the text lacks, text names unrelated to any claim name).

    A member is said of a text on its class (one drug of a text on its drug class) unless the
    text names other members of that class; a class said of one member is missing (broader than the
    text) but not contradicted by it.
    """

    def matched(c: str) -> bool:
        if c in passage_ids:
            return True
        return any(
            a in passage_ids and not any(q != c and a in terms.ancestors(q) for q in passage_ids)
            for a in terms.ancestors(c)
        )

    missing = sorted(c for c in claim_ids if not matched(c))
    others = sorted(
        p
        for p in passage_ids
        if p not in claim_ids
        and not any(p in terms.ancestors(c) or c in terms.ancestors(p) for c in claim_ids)
    )
    return missing, others


def _check_named(
    claim: str, passage: str, extra: Iterable[str], terms: ClinicalTerms
) -> list[Finding]:
    """Drugs, then other options (classes, procedures, tests), then populations: a claim naming
    one its text lacks while the text names another of the same kind states something else."""
    findings: list[Finding] = []
    missing, others = _unmatched(
        drug_names(claim, extra, terms), drug_names(passage, extra, terms), terms
    )
    if missing:
        if others:
            detail = f"{', '.join(missing)} vs {', '.join(others)}"
            findings.append(Finding("drug-mismatch", detail, Severity.contradiction))
        else:
            findings.append(Finding("unseen-drug", ", ".join(missing), Severity.unsupported))
    drug_ids = terms.find(claim, "drug") | terms.find(passage, "drug")
    for kind in ("option", "population"):
        c_ids, p_ids = terms.find(claim, kind) - drug_ids, terms.find(passage, kind) - drug_ids
        missing, others = _unmatched(c_ids, p_ids, terms)
        if not missing:
            continue
        if others:
            detail = f"{', '.join(missing)} vs {', '.join(others)}"
            findings.append(Finding(f"{kind}-mismatch", detail, Severity.contradiction))
        else:
            findings.append(Finding(f"unseen-{kind}", ", ".join(missing), Severity.unsupported))
    return findings


_CLAUSE = re.compile(r"(?<=[.!?;])\s+|\n+")


def _check_pairing(
    claim: str, passage: str, extra: Iterable[str], terms: ClinicalTerms
) -> list[Finding]:
    """A number or range the text ties to one option, claimed for another option the text also
    names ("IV iron below 75" when the text gives oral iron below 75 and IV iron above it)."""
    claim_q = [q for q in extract_quantities(claim) if q.dimension]
    if not claim_q:
        return []
    clauses = [c for c in _CLAUSE.split(passage) if c.strip()]
    if len(clauses) < 2:
        return []

    def named(text: str) -> set[str]:
        return drug_names(text, extra, terms) | terms.find(text, "option")

    # What every clause names (the test a threshold is about, say) is context, not an option.
    shared = set.intersection(*(named(c) for c in clauses))
    claim_opts = named(claim) - shared
    passage_opts = named(passage) - shared
    if not claim_opts & passage_opts:
        return []
    findings = []
    for q in claim_q:
        quantities = [extract_quantities(c) for c in clauses]
        holding = [
            c
            for c, qs in zip(clauses, quantities, strict=False)
            if any(q.matches(p) and p.dimension for p in qs)
        ]
        holding = holding or [
            c for c, qs in zip(clauses, quantities, strict=False) if any(q.matches(p) for p in qs)
        ]
        opts_there = set().union(*(named(c) for c in holding)) - shared if holding else set()
        if opts_there and not opts_there & claim_opts:
            detail = f"{q.text} goes with {', '.join(sorted(opts_there))} in the text"
            findings.append(Finding("pairing-mismatch", detail, Severity.contradiction))
    return findings


def _check_cues(claim: str, sentence: str) -> list[Finding]:
    findings: list[Finding] = []
    c_dir, s_dir = recommendation_direction(claim), recommendation_direction(sentence)
    if c_dir == "superseded":
        c_dir = None  # a claim that reports advice as superseded states history, not advice
    if c_dir and s_dir and c_dir != s_dir:
        findings.append(
            Finding("direction-mismatch", f"claim {c_dir} vs text {s_dir}", Severity.contradiction)
        )
    c_str, s_str = recommendation_strength(claim), recommendation_strength(sentence)
    if c_dir and s_dir and c_str and s_str and c_str != s_str:
        findings.append(
            Finding("strength-mismatch", f"claim {c_str} vs text {s_str}", Severity.contradiction)
        )
    c_neg, s_neg = negation_count(claim), negation_count(sentence)
    direction_explains = bool(findings) or (c_dir is not None and c_dir == s_dir)
    if (c_neg % 2) != (s_neg % 2) and not direction_explains:
        findings.append(
            Finding(
                "negation-mismatch",
                f"claim has {c_neg} negation(s), text has {s_neg}",
                Severity.contradiction,
            )
        )
    c_eff, s_eff = effect_direction(claim), effect_direction(sentence)
    if c_eff and s_eff and c_eff != s_eff:
        findings.append(
            Finding("effect-direction-mismatch", f"claim {c_eff} vs text {s_eff}", Severity.cue)
        )
    return findings


def check_claim(
    claim: str,
    passage: str,
    evidence: str | None = None,
    extra_drugs: Iterable[str] = (),
    terms: ClinicalTerms | None = None,
) -> ClinicalCheck:
    """Run every rule. ``evidence`` is the passage sentence to compare cues against (direction,
    negation, strength); when omitted, the sentence sharing most content words is used.
    ``terms`` (drugs, options, populations) default to the settings' lexicon."""
    sentences = split_sentences(passage) or [passage]
    if evidence is None:
        idx, _ = best_overlap_sentence(claim, sentences)
        evidence = sentences[idx] if idx >= 0 else passage
    terms = default_terms() if terms is None else terms
    findings = _check_quantities(claim, passage)
    findings += _check_named(claim, passage, extra_drugs, terms)
    findings += _check_pairing(claim, passage, extra_drugs, terms)
    findings += _check_cues(claim, evidence)
    return ClinicalCheck(findings, evidence, overlap_recall(claim, passage))


class ClinicalRulesJudge:
    """The checker on its own as a judge: content-word recall, zeroed when a rule contradicts.

    A baseline and a fast first pass, not a support model: it cannot see paraphrase.
    """

    name = "clinical-rules"
    version = "1"

    def __init__(self, extra_drugs: Iterable[str] = ()) -> None:
        self.extra_drugs = tuple(extra_drugs)

    def settings(self) -> dict[str, object]:
        return {"extra_drugs": len(self.extra_drugs)}

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        return self.judge_many([(claim, passage)])[0]

    def judge_many(self, pairs: Iterable[tuple[str, str]]) -> list[SupportVerdict]:
        return judge_nonempty(list(pairs), self._judge_many, self.name)

    def _judge_many(self, pairs: list[tuple[str, str]]) -> list[SupportVerdict]:
        return [self._judge(c, p) for c, p in pairs]

    def _judge(self, claim: str, passage: str) -> SupportVerdict:
        check = check_claim(claim, passage, extra_drugs=self.extra_drugs)
        unsupported = sum(f.severity is Severity.unsupported for f in check.findings)
        score = check.lexical_recall * (0.5**unsupported)
        contradiction = 0.9 if check.contradiction else 0.0
        if check.contradiction:
            score = min(score, 0.1)
            label = SupportLabel.contradicted
        else:
            label = SupportLabel.supported if score >= 0.8 else SupportLabel.not_supported
        return SupportVerdict(
            label=label,
            score=clip01(score),
            contradiction=contradiction,
            judge=self.name,
            rules=check.rules,
            evidence=check.evidence,
        )


__all__ = [
    "ClinicalCheck",
    "ClinicalRulesJudge",
    "Finding",
    "Quantity",
    "Severity",
    "check_claim",
    "content_stems",
    "drug_names",
    "effect_direction",
    "extract_quantities",
    "negation_count",
    "recommendation_direction",
    "recommendation_strength",
]
