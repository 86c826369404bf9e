"""What a question is about: which patient population, which interventions, what kind of ask.

Kept deliberately small and explicit: populations are a closed set with keyword cues, so routing
a follow-up such as "and in dialysis patients?" to the ESRD recommendations is predictable and
testable. Interventions are matched through the lexicon when one is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class Population(StrEnum):
    esrd = "esrd"
    children = "children"
    pregnancy = "pregnancy"


POPULATION_LABELS = {
    Population.esrd: "Adults with RLS and end-stage renal disease (ESRD) on dialysis",
    Population.children: "Children",
    Population.pregnancy: "Pregnancy and lactation",
}

POPULATION_CUES: dict[Population, re.Pattern[str]] = {
    Population.esrd: re.compile(
        r"\b(esrd|eskd|dialy\w*|ha?emodialy\w*|end[- ]stage (renal|kidney)|kidney failure"
        r"|renal failure|ckd(?: stage)? ?5|chronic kidney disease)\b",
        re.I,
    ),
    Population.children: re.compile(
        r"\b(child\w*|p(a)?ediatric\w*|kids?|infant\w*|adolescen\w*|teen\w*|youth)\b", re.I
    ),
    Population.pregnancy: re.compile(
        r"\b(pregnan\w*|gestation\w*|trimester|lactat\w*|breast-?feed\w*|postpartum|antenatal)\b",
        re.I,
    ),
}


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


def ask_bonus(sentences: list[str], ask: Ask, weight: float = 0.08) -> list[float]:
    """A small relevance nudge for sentences that match the kind of question."""
    cue = dict(_ASK_CUES).get(ask)
    if cue is None:
        return [0.0] * len(sentences)
    return [weight if cue.search(s) else 0.0 for s in sentences]


def on_topic(sentence: str, intent: Intent) -> bool:
    """Whether a research sentence speaks to this question's population, drugs or kind of ask.

    Cosine relevance alone lets generic sentences ("RLS is a common disorder") into every answer.
    """
    if intent.populations and not populations_in(sentence) & intent.populations:
        return False
    if intent.interventions:
        lowered = sentence.lower()
        return any(re.search(rf"\b{re.escape(t)}", lowered) for t in intent.interventions)
    cue = dict(_ASK_CUES).get(intent.ask)
    return cue is None or bool(cue.search(sentence)) or intent.ask is Ask.general


_NEGATED = re.compile(r"\b(no|not|without|never|denies|free of|negative for)\b[^.;,]{0,30}$", re.I)


def populations_in(text: str) -> set[Population]:
    """Populations the text speaks of; negated mentions ("no history of kidney disease") do not
    count."""
    found: set[Population] = set()
    for pop, cue in POPULATION_CUES.items():
        for match in cue.finditer(text):
            if not _NEGATED.search(text[max(0, match.start() - 40) : match.start()]):
                found.add(pop)
                break
    return found


def ask_of(text: str) -> Ask:
    for ask, cue in _ASK_CUES:
        if cue.search(text):
            return ask
    return Ask.general


@dataclass
class Intent:
    populations: set[Population] = field(default_factory=set)
    interventions: set[str] = field(default_factory=set)  # normalised intervention keys
    ask: Ask = Ask.general


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
