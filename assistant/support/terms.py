"""Named things a clinical claim can get wrong, read from the term lexicon (never from code).

The clinical rules must know that two names are two different drugs, two patient groups or two
treatment options. Which names exist is corpus knowledge, so it comes from the lexicon directory
(``corpus/lexicon/`` by default, ``CLINIQ_LEXICON_DIR``): drug and drug-class concepts, procedures
and tests (the other options a recommendation can be about), populations, and the lexicon's
list of real terms outside its scope that look like drug names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

OPTION_TYPES = ("drug", "drug-class", "procedure", "test")
# Generic-name stems (INN suffixes): a word ending so is a drug name in any corpus.
DRUG_STEMS = re.compile(
    r"^[a-z]{3,}(?:pentin|gabalin|pexole|pirole|tigotine|olol|pril|sartan|statin|azole|"
    r"mycin|cillin|oxetine|tidine|prazole|parin|xaban|gatran|triptan|zepam|zolam|"
    r"afil|gliptin|gliflozin|floxacin|cycline|vir|mab|tinib|dronate|semide|thiazide|"
    r"done|phine|codone|morphone|azepine|triptyline|faxine|barbital|caine|orexant)$"
)
_NOT_A_DRUG = re.compile(r"(?:ia|osis|itis|pathy|ism|emia|aemia|sy|ness|ity|ome|oma|ine?s)$")


FOUND_MEMO = 8192  # texts x kinds remembered by ClinicalTerms.find


@dataclass(frozen=True)
class Lookup:
    """Terms of one kind: a longest-first alternation mapping each match to its concept id."""

    ids: dict[str, str] = field(default_factory=dict)  # folded term -> concept id
    exact: dict[str, str] = field(default_factory=dict)  # case-sensitive abbreviations

    def pattern(self) -> re.Pattern[str] | None:
        words = sorted(self.ids, key=len, reverse=True)
        return (
            re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, words)) + r")(?![\w-])", re.I)
            if words
            else None
        )

    def abbrev_pattern(self) -> re.Pattern[str] | None:
        words = sorted(self.exact, key=len, reverse=True)
        return (
            re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, words)) + r")(?![\w-])")
            if words
            else None
        )


class ClinicalTerms:
    """Drugs, options and populations of a lexicon, found in text as concept ids."""

    def __init__(
        self,
        tables: dict[str, Lookup],
        outside_drugs: frozenset[str] = frozenset(),
        broader: dict[str, set[str]] | None = None,
    ):
        self.tables = tables
        self.outside_drugs = outside_drugs
        self.broader = broader or {}
        self._patterns = {k: (t.pattern(), t.abbrev_pattern()) for k, t in tables.items()}
        # A passage is checked against each sentence citing it: its names are found once.
        self._found: dict[tuple[str, str], frozenset[str]] = {}

    @classmethod
    def empty(cls) -> ClinicalTerms:
        return cls({})

    def find(self, text: str, kind: str) -> set[str]:
        """Concept ids of ``kind`` (drug | option | population) named in ``text``."""
        key = (text, kind)
        if key not in self._found:
            if len(self._found) >= FOUND_MEMO:
                self._found.clear()
            self._found[key] = frozenset(self._find(text, kind))
        return set(self._found[key])

    def forget(self) -> None:
        self._found.clear()

    def _find(self, text: str, kind: str) -> set[str]:
        table = self.tables.get(kind)
        if table is None:
            return set()
        pattern, abbrev = self._patterns[kind]
        found: set[str] = set()
        spans: list[tuple[int, int]] = []
        if pattern is not None:
            for m in pattern.finditer(text):
                found.add(table.ids[m.group(0).lower()])
                spans.append(m.span())
        if abbrev is not None:
            for m in abbrev.finditer(text):
                if not any(a <= m.start() < b for a, b in spans):
                    found.add(table.exact[m.group(0)])
        return found

    def ancestors(self, concept_id: str) -> set[str]:
        """Every broader concept (a drug's class, the class's class)."""
        out: set[str] = set()
        todo = list(self.broader.get(concept_id, ()))
        while todo:
            c = todo.pop()
            if c not in out:
                out.add(c)
                todo.extend(self.broader.get(c, ()))
        return out

    def related(self, a: str, b: str) -> bool:
        """One concept is the other, or a broader one of it (a class and its member)."""
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    def drug_words(self, text: str) -> set[str]:
        """Drug names outside the lexicon's concepts: its outside-scope drug list and INN stems."""
        out = set()
        for token in re.findall(r"[A-Za-z][A-Za-z\-]+", text):
            t = token.lower()
            if t in self.outside_drugs or DRUG_STEMS.match(t):
                out.add(t)
        return out

    def names(self, kind: str) -> dict[str, list[str]]:
        """Concept id -> its terms (folded), for building perturbations."""
        out: dict[str, list[str]] = {}
        for term, cid in self.tables.get(kind, Lookup()).ids.items():
            out.setdefault(cid, []).append(term)
        return out


_CACHE: dict[Path, ClinicalTerms] = {}


def load_terms(directory: Path | str | None = None) -> ClinicalTerms:
    """The lexicon's clinical terms, once per directory; empty when there is no lexicon."""
    from assistant.lexicon import Lexicon

    path = Path(directory) if directory is not None else Path("corpus/lexicon")
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parents[2] / path
    key = path.resolve()
    if key in _CACHE:
        return _CACHE[key]
    if not key.is_dir():
        _CACHE[key] = ClinicalTerms.empty()
        return _CACHE[key]
    lex = Lexicon.cached(key)
    tables = {"drug": Lookup(), "option": Lookup(), "population": Lookup()}
    for concept in lex.concepts:
        kinds = []
        if str(concept.type) in ("drug", "drug-class"):
            kinds.append("drug")
        if str(concept.type) in OPTION_TYPES:
            kinds.append("option")
        if str(concept.type) == "population":
            kinds.append("population")
        for kind in kinds:
            table = tables[kind]
            for term in [concept.canonical, *concept.synonyms, *concept.brands]:
                if len(term) >= 3:
                    table.ids.setdefault(term.lower(), concept.id)
            for abbr in concept.abbreviations:
                if len(abbr) >= 2:
                    table.exact.setdefault(abbr, concept.id)
    outside = frozenset(
        w.lower()
        for w in getattr(lex, "outside_terms", ())
        if w.isalpha() and not _NOT_A_DRUG.search(w.lower())
    )
    broader = {c.id: set(c.broader) for c in lex.concepts if c.broader}
    _CACHE[key] = ClinicalTerms(tables, outside, broader)
    return _CACHE[key]
