"""Recommendation strength and certainty across grading systems, read from a registry file.

Guidelines grade in their own words: GRADE strong / conditional with high ... very low
certainty (also as codes "1B" and symbols ⊕⊕◯◯), CDC category A / B with evidence type 1-4,
USPSTF A-D / I, ACC/AHA class and level of evidence, Oxford/SIGN/RCOG letters, AAN levels,
NICE's defined verbs, good practice points, consensus statements. Every system is described
in `grading_systems.yaml` (how its labels are printed, how they rank, what says "against"); this
module only runs that description. Adding a system is adding an entry to the file, or to a file
of one's own named in the settings.

The source's words are kept for display; a rank is used only to sort strongest first. A label
that cannot be read is no grade: a statement is never given a grade it does not print.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from ingest.errors import CliniqError

REGISTRY_PATH = Path(__file__).with_name("grading_systems.yaml")


@dataclass(frozen=True)
class Grade:
    """A grade as printed: strength and certainty in the source's own words."""

    strength: str
    certainty: str | None
    scale: str  # the grading system's name in the registry
    direction: str | None = None  # "for" / "against" when the grade itself says so
    kind: str = "recommendation"  # recommendation, good-practice, consensus

    @property
    def label(self) -> str:
        return f"{self.strength}; {self.certainty}" if self.certainty else self.strength


class RegistryError(CliniqError, ValueError):
    """The registry file is malformed; the message names the file, system and field."""


@dataclass(frozen=True)
class Label:
    """One printed form of a system's grades."""

    system: str
    kind: str
    position: Literal["after", "line", "before"]
    pattern: re.Pattern[str]
    strength: str
    certainty: str | None
    maps: dict[str, dict[str, str]]
    counts: dict[str, str]
    against: tuple[re.Pattern[str], ...]

    def grade(self, match: re.Match[str]) -> Grade | None:
        """The Grade this match prints; None when a mapped part has no meaning in the system."""
        values: dict[str, str] = {}
        for name, value in match.groupdict().items():
            text = " ".join((value or "").split()).rstrip(" .,;")
            if name in self.counts:
                text = str(text.count(self.counts[name]))
            if name in self.maps:
                if text not in self.maps[name]:
                    return None
                text = self.maps[name][text]
            values[name] = text
        strength = _fill(self.strength, values)
        certainty = _fill(self.certainty, values) if self.certainty else None
        against = any(p.search(_norm(strength)) for p in self.against)
        direction = "against" if against else None
        if values.get("dir"):
            direction = values["dir"].lower()
        return Grade(strength, certainty or None, self.system, direction, self.kind)


@dataclass(frozen=True)
class Verb:
    pattern: re.Pattern[str]
    strength: str
    direction: str | None


@dataclass(frozen=True)
class VerbSystem:
    """Directive verbs whose strength the guideline itself defines (NICE 'Offer'/'Consider')."""

    system: str
    defined_by: re.Pattern[str]
    verbs: tuple[Verb, ...]


class _Formatter(string.Formatter):
    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "c":
            return str(value)[:1].upper() + str(value)[1:].lower()
        if conversion == "u":
            return str(value).upper()
        return super().convert_field(value, conversion)


def _fill(template: str, values: dict[str, str]) -> str:
    class _Missing(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return ""

    return " ".join(_Formatter().vformat(template, (), _Missing(values)).split())


_SPLIT_RE = re.compile(r"\b(?P<a>[^\W\d_]+)[ \t]+(?=(?P<b>[^\W\d_]+)\b)")
_TAIL_RE = re.compile(r"\b(?P<a>[^\W\d_]+)\s*$")
_HEAD_RE = re.compile(r"\s*(?P<b>[^\W\d_]+)\b")


def _norm(text: str) -> str:
    """Lowercase, punctuation and hyphens to spaces: 'very-low-certainty' -> 'very low ...'."""
    return " ".join(re.sub(r"[-‐‑–—:;,()\[\]]", " ", text.lower()).split())


@dataclass
class Registry:
    """Every grading system of one or more registry files, compiled."""

    systems: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    strength_ranks: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    certainty_ranks: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    verb_systems: list[VerbSystem] = field(default_factory=list)
    #: words of grade labels a text layer may break ("Stron g", "St\nrong", "E VIDENCE")
    split_words: set[str] = field(default_factory=set)
    #: labels that open a statement in running text, with the kind of statement they open
    statement_labels: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    @classmethod
    def from_files(cls, *paths: Path) -> Registry:
        registry = cls()
        for path in paths:
            registry.add_file(path)
        return registry

    def add_file(self, path: Path) -> None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RegistryError(f"{path}: cannot read the grading registry ({exc})") from None
        systems = data.get("systems") if isinstance(data, dict) else None
        if not isinstance(systems, list):
            raise RegistryError(f"{path}: expected a top-level `systems:` list")
        for index, entry in enumerate(systems):
            self._add_system(path, index, entry)
        words = data.get("split_words", [])
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise RegistryError(f"{path}: `split_words` must be a list of words")
        self.split_words.update(w.lower() for w in words)
        for i, row in enumerate(data.get("statement_labels") or []):
            where = f"{path}: statement_labels[{i}]"
            if not isinstance(row, dict) or "label" not in row:
                raise RegistryError(f"{where}: needs `label` (and `kind`)")
            kind = str(row.get("kind", "recommendation"))
            if kind not in _STATEMENT_KINDS:
                raise RegistryError(f"{where}: kind {kind!r} is not one of {_STATEMENT_KINDS}")
            pattern = _compile(where, "label", _OPENING.format(row["label"]), re.IGNORECASE)
            self.statement_labels.append((pattern, kind))

    def rejoin(self, lines: list[str]) -> list[str]:
        """Lines with the grade-label words a text layer broke made whole again: "Stron g for"
        -> "Strong for"; "(St" at a line's end and "rong for" opening the next -> "(" and
        "Strong for". Only where the pieces read as one word: the second in lower case, or
        both in capitals ("E VIDENCE"), never a bullet letter before a word ("n Either")."""
        if not self.split_words:
            return lines

        def whole(first: str, second: str) -> bool:
            same_case = second.islower() or (first.isupper() and second.isupper())
            return same_case and (first + second).lower() in self.split_words

        def inside(line: str) -> str:
            return _SPLIT_RE.sub(lambda m: m["a"] if whole(m["a"], m["b"]) else m[0], line)

        out = [inside(line) for line in lines]
        for i in range(len(out) - 1):
            tail = _TAIL_RE.search(out[i])
            head = _HEAD_RE.match(out[i + 1])
            if tail and head and whole(tail["a"], head["b"]):
                out[i] = out[i][: tail.start("a")].rstrip()
                out[i + 1] = tail["a"] + out[i + 1].lstrip()
        return out

    def _add_system(self, path: Path, index: int, entry: object) -> None:
        where = f"{path}: systems[{index}]"
        if not isinstance(entry, dict) or not entry.get("name"):
            raise RegistryError(f"{where}: each system needs a `name`")
        name = str(entry["name"])
        where = f"{path}: system {name!r}"
        unknown = set(entry) - {
            "name", "kind", "labels", "strength_ranks", "certainty_ranks", "against", "verbs",
        }  # fmt: skip
        if unknown:
            raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = str(entry.get("kind", "recommendation"))
        if kind not in ("recommendation", "good-practice", "consensus"):
            raise RegistryError(f"{where}: kind {kind!r} is not recommendation, good-practice, "
                                "or consensus")  # fmt: skip
        against = tuple(_compile(where, "against", p) for p in entry.get("against") or [])
        self.systems.append(name)
        for i, label in enumerate(entry.get("labels") or []):
            at = f"{where}: labels[{i}]"
            if not isinstance(label, dict) or "pattern" not in label or "strength" not in label:
                raise RegistryError(f"{at}: a label needs `pattern` and `strength`")
            position = label.get("position", "after")
            if position not in ("after", "line", "before"):
                raise RegistryError(
                    f"{at}: position {position!r} is not `after`, `line` or `before`"
                )
            flags = 0 if label.get("case") == "sensitive" else re.IGNORECASE
            maps = {
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in (label.get("map") or {}).items()
            }
            self.labels.append(
                Label(
                    system=name,
                    kind=kind,
                    position=position,
                    pattern=_compile(at, "pattern", label["pattern"], flags),
                    strength=str(label["strength"]),
                    certainty=str(label["certainty"]) if label.get("certainty") else None,
                    maps=maps,
                    counts={str(k): str(v) for k, v in (label.get("count") or {}).items()},
                    against=against,
                )
            )
        for key, table in (
            ("strength_ranks", self.strength_ranks),
            ("certainty_ranks", self.certainty_ranks),
        ):
            for i, row in enumerate(entry.get(key) or []):
                if not isinstance(row, dict) or "match" not in row or "rank" not in row:
                    raise RegistryError(f"{where}: {key}[{i}] needs `match` and `rank`")
                table.append((_compile(where, key, row["match"]), int(row["rank"])))
        if verbs := entry.get("verbs"):
            rows = tuple(
                Verb(
                    re.compile(rf"^\s*(?:{v['verb']})\b"),
                    str(v["strength"]),
                    v.get("direction"),
                )
                for v in verbs.get("strength") or []
            )
            defined = _compile(where, "verbs.defined_by", verbs.get("defined_by", ""), re.I)
            self.verb_systems.append(VerbSystem(name, defined, rows))

    # -- reading -------------------------------------------------------------------------------

    def opened(self, statement: str) -> tuple[str, str | None, str] | None:
        """The kind, number and words of a statement its own label opens ("RECOMMENDATION 3:
        ...", or inside the text collected for it: "... the panel makes the following
        recommendation: Weight loss is recommended ..."). The last label wins, the longest
        where two end together ("consensus recommendation:"); None when no label opens it."""
        best: tuple[tuple[int, int], str, str | None] | None = None
        for pattern, kind in self.statement_labels:
            for match in pattern.finditer(statement):
                key = (match.end(), -match.start())
                if len(statement) - match.end() >= 25 and (best is None or key > best[0]):
                    best = (key, kind, match.group("num"))
        if best is None:
            return None
        return best[1], best[2], statement[best[0][0] :].strip()

    def opens(self, line: str) -> bool:
        """The line begins with a statement's own label."""
        return any(pattern.match(line) for pattern, _ in self.statement_labels)

    def after_labels(self) -> list[Label]:
        return [label for label in self.labels if label.position == "after"]

    def line_grade(self, line: str) -> Grade | None:
        """The grade a whole line prints ("Strong recommendation, low-certainty evidence",
        "GOOD PRACTICE STATEMENT"); None when the line is anything else."""
        for label in self.labels:
            match = label.pattern.match(line.strip()) if label.position == "line" else None
            if match and (grade := label.grade(match)):
                return grade
        return None

    def lead_grade(self, statement: str) -> tuple[Grade, str] | None:
        """A label that opens a numbered statement ("PP ..." in a table's type column): the
        grade and the statement without it; None when the statement opens with none."""
        for label in self.labels:
            match = label.pattern.match(statement) if label.position == "before" else None
            if match and (grade := label.grade(match)):
                return grade, statement[match.end() :].strip()
        return None

    def read_grade(self, text: str) -> Grade | None:
        """The first grade printed in `text`, in the source's words; None when none can be read."""
        best: tuple[int, int, Grade] | None = None
        for label in self.labels:
            subject = text.strip() if label.position == "line" else text
            match = label.pattern.search(subject) if label.position == "after" else None
            match = match or (label.pattern.match(subject) if label.position == "line" else None)
            if not match or not (grade := label.grade(match)):
                continue
            key = (match.start(), -(match.end() - match.start()))
            if best is None or key < best[:2]:
                best = (*key, grade)
        return best[2] if best else None

    def verb_grade(self, statement: str, document_text: str) -> Grade | None:
        """A directive verb's strength, only where the document defines its verbs."""
        for system in self.verb_systems:
            if not system.defined_by.search(document_text):
                continue
            for verb in system.verbs:
                if verb.pattern.match(statement):
                    return Grade(verb.strength, None, system.system, verb.direction)
        return None

    def defines_verbs(self, document_text: str) -> bool:
        return any(s.defined_by.search(document_text) for s in self.verb_systems)

    def _rank(self, text: str | None, table: list[tuple[re.Pattern[str], int]]) -> int:
        if not text:
            return 0
        lowered = _norm(text)
        best: tuple[int, int] | None = None  # (match length, rank); longest wins, then first
        for pattern, rank in table:
            if (match := pattern.search(lowered)) and (best is None or len(match[0]) > best[0]):
                best = (len(match[0]), rank)
        return best[1] if best else 0

    def strength_rank(self, strength: str | None) -> int:
        return self._rank(strength, self.strength_ranks)

    def certainty_rank(self, certainty: str | None) -> int:
        return self._rank(certainty, self.certainty_ranks)


_STATEMENT_KINDS = ("recommendation", "good-practice", "consensus", "evidence-conclusion")
# A statement label as running text prints it: a word boundary, the label (singular: a plural
# heads a group; "Strength of recommendation:" prints a grade), then a colon, or a number and a
# colon or full stop ("RECOMMENDATION 3: ...", "Recommendation 4. ...").
_OPENING = (
    r"(?<![\w-])(?<!of )(?:{})"
    r"(?:\s+(?P<num>\d{{1,3}}(?:\.\d{{1,3}})*[a-z]?)\s*[:.]|\s*:)\s+(?=\S)"
)


def _compile(where: str, what: str, pattern: object, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(str(pattern), flags)
    except re.error as exc:
        raise RegistryError(f"{where}: {what} is not a valid regex ({exc})") from None


@cache
def registry() -> Registry:
    """The packaged registry plus the settings' extra files (``CLINIQ_INGEST__GRADING_REGISTRIES``),
    compiled once per process: ranks are looked up per statement, far too often to re-read."""
    from ingest.settings import Settings

    extra = Settings().ingest.grading_registries
    try:
        return Registry.from_files(REGISTRY_PATH, *extra)
    except RegistryError as exc:
        raise RegistryError(f"{exc} (named in CLINIQ_INGEST__GRADING_REGISTRIES)") from None


def strength_rank(strength: str | None) -> int:
    """Higher is stronger; 0 when the wording is not recognised (sorted last, never dropped)."""
    return registry().strength_rank(strength)


def certainty_rank(certainty: str | None) -> int:
    """Higher is more certain (GRADE high 4 ... very low 1 and the equivalents); 0 unknown."""
    return registry().certainty_rank(certainty)


def is_graded(strength: str | None) -> bool:
    """False for wording we cannot place on any scale (e.g. 'not graded')."""
    return strength_rank(strength) > 0


def is_strong(strength: str | None) -> bool:
    """True for the top tier of a scale (GRADE strong, AAN Level A, AASM 2012 standard)."""
    return strength_rank(strength) == 4


def read_grade(text: str) -> Grade | None:
    """The first grade printed in `text` (packaged registry); None when none can be read."""
    return registry().read_grade(text)
