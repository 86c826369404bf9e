"""Recommendation strength and certainty across grading scales.

Sources grade in their own words: GRADE strong / conditional with high ... very low certainty
(WHO, AASM, "quality of evidence" wordings), CDC recommendation category A / B with evidence
type 1-4, USPSTF grades A / B / C / D / I, ACC/AHA class I / IIa / IIb / III with level of
evidence A / B-R / B-NR / C, Oxford/SIGN grades A-D, AAN levels A / B / C / U, AASM 2012
standard / guideline / option, NICE "offer / consider / do not offer", MDS efficacious / likely
efficacious. We keep the source's words for display and map them to an ordinal rank only to
sort strongest first.

`read_grade` reads a printed grade ("(Strong recommendation, moderate-certainty evidence)",
"(recommendation category: A; evidence type: 3)", "(Grade B)", "Class IIa; LOE B-R") into the
source's own strength and certainty words. It returns None for anything it cannot read: a
statement whose grade cannot be read stays ungraded; a grade is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRENGTH_RANKS: tuple[tuple[str, int], ...] = (
    # Order matters: longer, more specific phrases first. Matched on `_norm`ed text.
    (r"\bgood practice\b", 5),
    (r"\blikely efficacious\b", 2),
    (r"\bnot efficacious\b|\bnon efficacious\b", 2),
    (r"\binsufficient\b|\binvestigational\b|\bi statement\b", 1),
    (r"\bpossibly effective\b", 2),
    (r"\bprobably effective\b", 3),
    (r"\bstrong\b", 4),
    (r"\bconditional\b|\bweak\b", 2),
    # CDC (ACIP GRADE): A applies to all persons; B needs individual decision-making.
    (r"\bcategory a\b", 4),
    (r"\bcategory b\b", 2),
    # ACC/AHA class of recommendation.
    (r"\bclass iia\b|\bcor iia\b|\bclass 2a\b", 3),
    (r"\bclass iib\b|\bcor iib\b|\bclass 2b\b", 2),
    (r"\bclass iii\b|\bcor iii\b|\bclass 3\b", 3),
    (r"\bclass i\b|\bcor i\b|\bclass 1\b", 4),
    # USPSTF, Oxford/SIGN and other letter grades.
    (r"\bgrade a\b|^a$|\ba recommendation\b", 4),
    (r"\bgrade b\b|^b$|\bb recommendation\b", 3),
    (r"\bgrade c\b|^c$|\bc recommendation\b", 2),
    (r"\bgrade d\b|^d$|\bd recommendation\b", 1),
    (r"\bgrade i\b|^i$", 1),
    (r"\blevel a\b", 4),
    (r"\blevel b\b", 3),
    (r"\blevel c\b", 2),
    (r"\blevel u\b", 1),
    # NICE wording: the verb carries the strength.
    (r"\bdo not offer\b|\bmust not\b|\boffer\b|\bmust\b", 4),
    (r"\bdo not routinely\b|\bconsider\b", 2),
    (r"\bstandard\b", 4),
    (r"\bguideline\b", 3),
    (r"\boption\b", 2),
    (r"\befficacious\b", 4),
    (r"\beffective\b", 4),
    (r"\bconsensus\b|\bexpert opinion\b", 1),
)

_CERTAINTY_RANKS: tuple[tuple[str, int], ...] = (
    (r"\bvery ?low", 1),
    (r"\bhigh\b|\bhighcertainty\b", 4),
    (r"\bmoderate", 3),
    (r"\blow", 2),
    # CDC evidence type: 1 (randomized trials) ... 4 (observational or clinical experience).
    (r"\bevidence type 1\b|\btype 1 evidence\b", 4),
    (r"\bevidence type 2\b|\btype 2 evidence\b", 3),
    (r"\bevidence type 3\b|\btype 3 evidence\b", 2),
    (r"\bevidence type 4\b|\btype 4 evidence\b", 1),
    # ACC/AHA level of evidence.
    (r"\b(?:level of evidence|loe) a\b", 4),
    (r"\b(?:level of evidence|loe) b r\b", 3),
    (r"\b(?:level of evidence|loe) b(?: nr)?\b", 2),
    (r"\b(?:level of evidence|loe) c\b", 1),
)


def _norm(text: str) -> str:
    """Lowercase, punctuation and hyphens to spaces: 'very-low-certainty' -> 'very low ...'."""
    return " ".join(re.sub(r"[-‐‑–—:;,()\[\]]", " ", text.lower()).split())


def _rank(text: str | None, table: tuple[tuple[str, int], ...]) -> int:
    if not text:
        return 0
    lowered = _norm(text)
    for pattern, rank in table:
        if re.search(pattern, lowered):
            return rank
    return 0


def strength_rank(strength: str | None) -> int:
    """Higher is stronger; 0 when the wording is not recognised (sorted last, never dropped)."""
    return _rank(strength, _STRENGTH_RANKS)


def certainty_rank(certainty: str | None) -> int:
    """GRADE certainty: high 4, moderate 3, low 2, very low 1, unknown 0 (and the equivalents
    of other scales: CDC evidence type 1-4, ACC/AHA level of evidence)."""
    return _rank(certainty, _CERTAINTY_RANKS)


def is_graded(strength: str | None) -> bool:
    """False for wording we cannot place on any scale (e.g. 'not confirmed')."""
    return strength_rank(strength) > 0


def is_strong(strength: str | None) -> bool:
    """True for the top tier of a scale (GRADE strong, AAN Level A, AASM 2012 standard)."""
    return strength_rank(strength) >= 4 and not re.search(
        r"good practice", (strength or "").lower()
    )


# -- reading printed grades --------------------------------------------------------------------


@dataclass(frozen=True)
class Grade:
    """A grade as printed: strength and certainty in the source's own words."""

    strength: str
    certainty: str | None
    scale: str  # "GRADE", "CDC", "USPSTF", "ACC/AHA", "letters", "AAN", "NICE", "good practice"
    direction: str | None = None  # "for" / "against" when the grade itself says so

    @property
    def label(self) -> str:
        return f"{self.strength}; {self.certainty}" if self.certainty else self.strength


# A hyphen, dash or space, or nothing (where a line-end hyphen was dropped).
_D = r"(?:\s*[-‐‑–—]\s*|\s+)?"
_CERT_WORD = rf"(?:very{_D}low|low|moderate|high)"
_CERT_RANGE = rf"{_CERT_WORD}(?:{_D}(?:to|or)\s+{_CERT_WORD})?"
_CERT = (
    rf"(?P<cert>{_CERT_RANGE}{_D}(?:certainty|quality)(?:{_D}(?:of{_D})?(?:evidence|estimates{_D}of"
    rf"{_D}effect))?(?:[^()]{{0,80}}?)|{_CERT_RANGE}{_D}quality{_D}of{_D}evidence|"
    rf"(?:certainty|quality){_D}of{_D}evidence[: ]+{_CERT_RANGE})"
)
# "(Strong recommendation, moderate-certainty evidence)", "(Conditional recommendation; low
# quality of evidence)", "(strong recommendation: moderate- to low-certainty evidence for ...)"
GRADE_AFTER_RE = re.compile(
    rf"\(\s*(?P<str>strong|conditional|weak)\s+recommendation(?P<dir>\s+(?:for|against))?"
    rf"\s*[,;:]\s*{_CERT}\s*\)",
    re.IGNORECASE,
)
# MAGICapp exports: "Strong recommendation for , High certainty evidence" on its own line,
# before the statement; "Good practice statement" likewise.
GRADE_BEFORE_RE = re.compile(
    rf"^\s*(?P<str>strong|conditional|weak)\s+recommendation\s*(?P<dir>for|against)?(?:\s*,\s*"
    rf"(?P<cert>{_CERT_RANGE}{_D}(?:certainty|quality)(?:{_D}(?:of{_D})?evidence)?))?\s*$",
    re.IGNORECASE,
)
CDC_RE = re.compile(
    r"\(\s*recommendation\s+category\s*:?\s*(?P<cat>[AB])\s*[;,]\s*evidence\s+type\s*:?\s*"
    r"(?P<type>[1-4])\s*\)",
    re.IGNORECASE,
)
USPSTF_RE = re.compile(
    r"\((?P<g>[ABCD]) recommendation\)|\((?P<i>I) statement\)|"
    r"\bGrade:\s*(?P<g2>[ABCDI])\b(?:\s*\((?P<desc>[A-Za-z ]{3,40})\))?",
)
ACC_AHA_RE = re.compile(
    r"\(?\s*(?:Class|COR)\s*(?:of\s+recommendation\s*)?:?\s*(?P<cls>III|IIb|IIa|I|3|2b|2a|1)"
    r"(?P<qual>\s*:\s*(?:No\s+Benefit|Harm))?\s*[;,(]?\s*(?:Level\s+of\s+Evidence|LOE)\s*:?\s*"
    r"(?P<loe>B-NR|B-R|C-LD|C-EO|[ABC])\b\s*\)?",
)
LETTER_RE = re.compile(r"\(\s*(?P<word>Grade|Level)\s+(?P<g>[A-DU])\s*\)")
LETTER_LABEL_RE = re.compile(r"\[\s*(?P<word>Grade|Level)?\s*(?P<g>[A-D])\s*\]")
GOOD_PRACTICE_RE = re.compile(
    r"^\s*\(?\s*(?:good\s+practice\s+(?:statement|point)|ungraded\s+good\s+practice"
    r"\s+statement)\s*\)?\s*:?\s*$",
    re.IGNORECASE,
)


def _cert_words(text: str) -> str:
    return " ".join(text.split()).rstrip(" .,;")


def grade_from_match(match: re.Match[str]) -> Grade | None:
    """The Grade a match of one of the patterns above prints (None if it is not a grade)."""
    pattern = match.re
    groups = match.groupdict()
    if pattern in (GRADE_AFTER_RE, GRADE_BEFORE_RE):
        strength = f"{groups['str'].capitalize()} recommendation"
        direction = (groups.get("dir") or "").strip().lower() or None
        if direction:
            strength += f" {direction}"
        certainty = _cert_words(groups["cert"]) if groups.get("cert") else None
        return Grade(strength, certainty, "GRADE", direction)
    if pattern is CDC_RE:
        return Grade(
            f"recommendation category: {groups['cat'].upper()}",
            f"evidence type: {groups['type']}",
            "CDC",
        )
    if pattern is USPSTF_RE:
        letter = groups.get("g") or groups.get("i") or groups.get("g2")
        if not letter:
            return None
        if letter == "I":
            return Grade("I statement", "insufficient evidence", "USPSTF")
        return Grade(f"Grade {letter}", None, "USPSTF", "against" if letter == "D" else None)
    if pattern is ACC_AHA_RE:
        cls = groups["cls"]
        qual = " ".join((groups.get("qual") or "").split())
        strength = f"Class {cls}{qual.replace(' :', ':')}"
        direction = "against" if cls in ("III", "3") else None
        return Grade(strength, f"Level of evidence {groups['loe']}", "ACC/AHA", direction)
    if pattern in (LETTER_RE, LETTER_LABEL_RE):
        word = (groups.get("word") or "Grade").capitalize()
        return Grade(f"{word} {groups['g']}", None, "AAN" if word == "Level" else "letters")
    if pattern is GOOD_PRACTICE_RE:
        return Grade("Good practice statement", None, "good practice")
    return None


# Patterns of grades printed after their statement, in the order they are tried.
AFTER_PATTERNS: tuple[re.Pattern[str], ...] = (
    GRADE_AFTER_RE,
    CDC_RE,
    ACC_AHA_RE,
    USPSTF_RE,
    LETTER_RE,
)


def read_grade(text: str) -> Grade | None:
    """The first grade printed in `text`, in the source's words; None when none can be read."""
    best: tuple[int, Grade] | None = None
    for pattern in (*AFTER_PATTERNS, GRADE_BEFORE_RE, GOOD_PRACTICE_RE, LETTER_LABEL_RE):
        flags_text = text if pattern not in (GRADE_BEFORE_RE, GOOD_PRACTICE_RE) else text.strip()
        match = pattern.search(flags_text)
        grade = grade_from_match(match) if match else None
        if match and grade and (best is None or match.start() < best[0]):
            best = (match.start(), grade)
    return best[1] if best else None


_NICE_RE = re.compile(
    r"^\s*(?:\d+(?:\.\d+)*\s+)?(Do not offer|Do not routinely offer|Offer|Consider)\b"
)
# NICE numbers each recommendation 1.2.3 and starts it with its verb.
NICE_ITEM_RE = re.compile(
    r"^(?P<num>\d{1,2}\.\d{1,2}\.\d{1,3})\s+"
    r"(?=(?:Do not offer|Do not routinely offer|Offer|Consider)\b)"
)


def nice_strength(statement: str) -> Grade | None:
    """NICE states strength in the verb: 'Offer' / 'Do not offer' (strong), 'Consider'."""
    match = _NICE_RE.match(statement)
    if not match:
        return None
    verb = match.group(1)
    direction = "against" if verb.lower().startswith("do not") else None
    return Grade(f'"{verb}" (NICE wording)', None, "NICE", direction)
