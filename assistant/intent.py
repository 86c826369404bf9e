"""What a question is about: which patient group, which interventions, what kind of ask.

The kinds of question (causes, symptoms, diagnosis, treatment, ...) are the same for every
condition, so their cue words live here. Everything a corpus names (its conditions, patient
groups, drugs) is read through the `CorpusProfile`, never written here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class Ask(StrEnum):
    management = "management"
    dose = "dose"
    diagnosis = "diagnosis"
    mechanism = "mechanism"
    general = "general"


_ASK_CUES: tuple[tuple[Ask, re.Pattern[str]], ...] = (
    (Ask.dose, re.compile(r"\b(dose|doses|dosing|dosage|how much|mg\b|titrat\w*)", re.I)),
    (
        Ask.diagnosis,
        re.compile(r"\b(diagnos\w*|criteria|differential|work-?up|symptom\w*|mimic\w*)", re.I),
    ),
    (
        Ask.mechanism,
        re.compile(r"\b(cause[sd]?|pathophysiolog\w*|mechanism\w*|genetic\w*|why)\b", re.I),
    ),
    (
        Ask.management,
        re.compile(
            r"\b(manag\w*|treat\w*|therap\w*|drug\w*|medication\w*|first[- ]line|options?|"
            r"recommend\w*|approach|prescrib\w*|use|give|start)\b",
            re.I,
        ),
    ),
)


def ask_of(text: str) -> Ask:
    for ask, cue in _ASK_CUES:
        if cue.search(text):
            return ask
    return Ask.general


@dataclass
class Intent:
    populations: set[str] = field(default_factory=set)  # patient-group keys (CorpusProfile)
    interventions: set[str] = field(default_factory=set)  # normalised intervention keys
    ask: Ask = Ask.general
    focus: set[str] = field(default_factory=set)  # stems of what the question asks about
    names: frozenset[str] = frozenset()  # words of the condition and group names it uses


# Words that say what kind of question it is, name the condition or the patient, or carry no
# subject: what remains ("threshold", "relapse", "criteria") is what the answer must speak to.
GENERIC_WORDS = _NOT_FOCUS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "for",
        "in",
        "on",
        "at",
        "to",
        "by",
        "with",
        "without",
        "from",
        "about",
        "into",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "can",
        "could",
        "may",
        "might",
        "will",
        "would",
        "should",
        "shall",
        "must",
        "have",
        "has",
        "had",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "that",
        "this",
        "these",
        "those",
        "there",
        "it",
        "its",
        "their",
        "them",
        "they",
        "we",
        "you",
        "your",
        "my",
        "our",
        "i",
        "me",
        "any",
        "some",
        "all",
        "other",
        "more",
        "most",
        "best",
        "good",
        "first",
        "line",
        "new",
        "current",
        "currently",
        "syndrome",
        "syndromes",
        "disease",
        "disorder",
        "disorders",
        "patient",
        "patients",
        "people",
        "person",
        "adult",
        "adults",
        "someone",
        "treat",
        "treated",
        "treating",
        "treatment",
        "treatments",
        "manage",
        "managed",
        "managing",
        "management",
        "approach",
        "approaches",
        "option",
        "options",
        "therapy",
        "therapies",
        "recommended",
        "recommend",
        "recommends",
        "recommendation",
        "recommendations",
        "guideline",
        "guidelines",
        "use",
        "used",
        "using",
        "help",
        "helps",
        "helpful",
        "work",
        "works",
        "effective",
        "efficacy",
        "evidence",
        "say",
        "says",
        "said",
        "tell",
        "know",
        "please",
        "explain",
        "describe",
        "mean",
        "means",
        "level",
        "levels",
        "prompt",
        "should",
        "start",
        "started",
        "give",
        "given",
        "prescribe",
        "considered",
        "consider",
        "need",
        "needed",
        "see",
        "doctor",
        "doctors",
        "physician",
        "physicians",
        "clinician",
        "clinicians",
        "visit",
        "get",
        "take",
        "taking",
    ]
)
# A diagnosis question is answered by sentences that define or state criteria, not only by those
# that say "diagnosis".
_DIAGNOSTIC = frozenset({"diagno", "criter", "defin", "assess", "evalua", "check", "test"})
# Words whose answer is phrased in other words: a question about causes is answered by text on
# risk factors and secondary forms, one about inheritance by text on family history.
_FOCUS_SYNONYMS: dict[str, frozenset[str]] = {
    "diagno": _DIAGNOSTIC,
    "criter": _DIAGNOSTIC,
    "defin": frozenset({"criter", "diagno"}),
    "defini": frozenset({"criter", "diagno", "defin"}),
    "define": frozenset({"criter", "diagno", "defin"}),
    "sympto": _DIAGNOSTIC | {"sensat", "featur"},
    "dose": frozenset({"dosing", "dosage", "mg"}),
    "dosing": frozenset({"dose", "dosage", "mg"}),
    "dosage": frozenset({"dose", "dosing", "mg"}),
    "caus": frozenset({"risk", "secondar", "associat", "pathophys", "etiolog"}),
    "cause": frozenset({"caus", "risk", "secondar", "associat", "pathophys", "etiolog"}),
    "risk": frozenset({"secondar", "associat", "predispos"}),
    "inheri": frozenset({"inherit", "genet", "famil", "heredit"}),
    "genet": frozenset({"inherit", "famil", "heredit"}),
}
# Subject words too common in treatment statements ("to reduce symptoms") to say that a
# recommendation is about them.
TREATMENT_OUTCOME_STEMS = frozenset({"sympto"})
_WORD = re.compile(r"[a-z][a-z0-9-]*")


_SUFFIXES = ("ations", "ation", "ities", "ity", "ical", "ing", "ed", "es", "ic", "al", "s")


def stem(word: str) -> str:
    """A crude, predictable stem, matched as a word beginning: 'diagnosed' and 'diagnostic'
    give 'diagno', 'causes' gives 'caus' (which 'cause' begins with)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word[:6]


def focus_groups(question: str, names: frozenset[str] = frozenset()) -> list[frozenset[str]]:
    """The question's subject words beyond the condition, the population and the kind of ask,
    each as its stem plus the stems that answer for it ("diagnosed": criteria, definition).
    `names` are the words of the condition and group names the profile found in the question.
    Empty for a broad question ("What is the management of C?")."""
    groups: dict[str, frozenset[str]] = {}
    for word in (w.strip("-") for w in _WORD.findall(question.lower())):
        if len(word) < 3 or word in _NOT_FOCUS:
            continue
        if word in names:
            continue
        root = stem(word)
        groups.setdefault(root, frozenset({root} | _FOCUS_SYNONYMS.get(root, set())))
    return list(groups.values())


def focus_terms(question: str, names: frozenset[str] = frozenset()) -> set[str]:
    """All stems of `focus_groups`: a text on the question's subject contains one of them."""
    return set().union(*focus_groups(question, names))


def focus_matches(text: str, focus: set[str]) -> int:
    """How many of the focus stems the text contains (as word beginnings)."""
    lowered = text.lower()
    return sum(1 for s in focus if re.search(rf"\b{re.escape(s)}", lowered))


_ROUTE = re.compile(
    r"\b(iv|intravenous|oral|transdermal|extended[- ]release|prolonged[- ]release|"
    r"immediate[- ]release|low[- ]dose|high[- ]dose|low[- ]molecular[- ]weight)\b",
    re.I,
)


def intervention_key(text: str) -> str:
    """'IV ferric carboxymaltose' and 'ferric carboxymaltose' name the same intervention."""
    key = _ROUTE.sub(" ", text.lower())
    key = re.sub(r"\(.*?\)", " ", key)
    key = re.sub(r"[^a-z0-9 /-]+", " ", key)
    return re.sub(r"\s+", " ", key).strip()


_SENTENCE_END = re.compile(r"(?<=[?.!])\s+")


def question_core(text: str) -> str:
    """The sentences that ask (end in '?'), without the background around them: a case history
    after the question must not turn a treatment question into a diagnosis one."""
    asking = [s for s in _SENTENCE_END.split(text.strip()) if s.rstrip().endswith("?")]
    return " ".join(asking) if asking else text


class Kind(StrEnum):
    """What aspect of a condition a question asks about; the same for every condition."""

    dose = "dose"
    inheritance = "inheritance"
    frequency = "frequency"
    complications = "complications"
    prognosis = "prognosis"
    prevention = "prevention"
    causes = "causes"
    symptoms = "symptoms"
    diagnosis = "diagnosis"
    treatment = "treatment"
    definition = "definition"
    general = "general"


# First match wins, so the more specific cues come first ("who is at risk" before "what is").
_KIND_CUES: tuple[tuple[Kind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.I))
    for kind, pattern in (
        (Kind.dose, r"\b(doses?|dosing|dosage|how much \w+ (?:should|to)|mg)\b"),
        (
            Kind.inheritance,
            r"\b(inherit\w*|heredit\w*|genetic\w*|genes?|run in (?:the )?famil\w*|passed down|"
            r"implicated|mutations?)\b",
        ),
        (
            Kind.frequency,
            r"\b(how (?:many|common)|prevalen\w*|incidence|frequen\w*|epidemiolog\w*|"
            r"how often does)\b",
        ),
        (Kind.complications, r"\b(complicat\w*|long[- ]term effects?|sequelae)\b"),
        (
            Kind.prognosis,
            r"\b(outlook|prognos\w*|survival|life expectancy|chances? of recovery|"
            r"natural history|what to expect)\b",
        ),
        (Kind.prevention, r"\b(prevent\w*|prophyla\w*|avoid(?:ed|ing)?|reduce (?:the|my) risk)\b"),
        (
            Kind.causes,
            r"\b(caus\w*|risk factors?|at risk|susceptib\w*|a?etiolog\w*|triggers?|"
            r"pathophysiolog\w*|mechanisms?|why do)\b",
        ),
        (
            Kind.symptoms,
            r"\b(symptoms?|signs?|clinical (?:features?|presentation)|present(?:s|ing|ation)?|"
            r"features?|manifest\w*|sx)\b",
        ),
        (
            Kind.diagnosis,
            r"\b(diagnos\w*|tests?|testing|exams?|criteria|work-?up|detect\w*|screen\w*|"
            r"differential|evaluat\w*|dx|ddx|w/u)\b",
        ),
        (
            Kind.treatment,
            r"\b(treat\w*|manag\w*|therap\w*|drugs?|medications?|medicines?|meds|first[- ]line|"
            r"options?|recommend\w*|approach|prescrib\w*|cures?|surgery|care for|"
            # clinicians' shorthand
            r"tx|rx|mgmt)\b",
        ),
        (Kind.definition, r"\b(what (?:is|are)|define|definition|meaning|overview|describe)\b"),
    )
)


KIND_WORDS = re.compile("|".join(cue.pattern for _, cue in _KIND_CUES), re.I)


_ASKS_FOR_QUANTITY = re.compile(
    r"\b(level|levels|threshold|cut-?off|value|how (?:much|many|long|often)|dose|doses|dosage|"
    r"duration|frequency|percentage|proportion|rate|below|above)\b",
    re.I,
)
# A quantity, not a year ("2025 WHO") or a name ("ICSD-3").
_QUANTITY = re.compile(r"(?<![\d.\w-])(?!(?:19|20)\d\d(?!\d))\d+(?:[.,]\d+)?(?![\w-])")


def asks_for_quantity(question: str) -> bool:
    """The question asks for a number: a level, a dose, how many, how long."""
    return bool(_ASKS_FOR_QUANTITY.search(question))


def states_quantity(text: str) -> bool:
    """The text states a number that is not a year or part of a name."""
    return bool(_QUANTITY.search(text))


def kind_of(text: str) -> Kind:
    """The kind of a question, or of a heading that answers one ("What causes X?")."""
    for kind, cue in _KIND_CUES:
        if cue.search(text):
            return kind
    return Kind.general


def kinds_in(text: str) -> set[Kind]:
    """Every kind a heading speaks to ("Causes and risk factors", "Diagnosis and treatment")."""
    return {kind for kind, cue in _KIND_CUES if cue.search(text)}
