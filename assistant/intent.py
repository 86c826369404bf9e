"""What a question is about: which patient population, which interventions, what kind of ask.

Kept deliberately small and explicit: populations are a closed set with keyword cues, so routing
a follow-up such as "and in dialysis patients?" to the ESRD recommendations is predictable and
testable. Interventions are matched through the lexicon when one is loaded.
"""

from __future__ import annotations

import math
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
    if intent.focus:
        # "What is augmentation?" is answered by sentences about augmentation.
        return focus_matches(sentence, intent.focus) > 0
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
    focus: set[str] = field(default_factory=set)  # stems of what the question asks about


# Words that say what kind of question it is, name the condition or the patient, or carry no
# subject: what remains ("ferritin", "augmentation", "criteria") is what the answer must speak to.
_NOT_FOCUS = frozenset(
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
        "restless",
        "leg",
        "legs",
        "syndrome",
        "syndromes",
        "rls",
        "wed",
        "willis",
        "ekbom",
        "disease",
        "disorder",
        "disorders",
        "plmd",
        "periodic",
        "limb",
        "limbs",
        "movement",
        "movements",
        "sleep",
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
_DIAGNOSTIC = frozenset({"diagno", "criter", "defin", "polysom", "assess", "evalua", "check"})
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


def focus_groups(question: str) -> list[frozenset[str]]:
    """The question's subject words beyond the condition, the population and the kind of ask,
    each as its stem plus the stems that answer for it ("diagnosed": criteria, definition,
    polysomnography). Empty for a broad question ("What is the management of RLS?")."""
    groups: dict[str, frozenset[str]] = {}
    for word in (w.strip("-") for w in _WORD.findall(question.lower())):
        if len(word) < 3 or word in _NOT_FOCUS:
            continue
        if any(cue.fullmatch(word) for cue in POPULATION_CUES.values()):
            continue
        root = stem(word)
        groups.setdefault(root, frozenset({root} | _FOCUS_SYNONYMS.get(root, set())))
    return list(groups.values())


def focus_terms(question: str) -> set[str]:
    """All stems of `focus_groups`: a text on the question's subject contains one of them."""
    return set().union(*focus_groups(question))


# When a question has no subject of its own and no recommendation answers it ("How is PLMD
# treated in adults?"), guideline text about treatment is the answer, or says there is none.
TREATMENT_FOCUS = frozenset({"treat", "manag", "therap"})


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


_ASKS_FOR_NUMBER = re.compile(
    r"\b(level|levels|threshold|cut-?off|value|how (?:much|many|long|often)|dose|doses|dosage|"
    r"duration|frequency|index|below|above|when)\b",
    re.I,
)
# A quantity, not a year ("2025 AASM") or a name ("ICSD-3").
_NUMBER = re.compile(r"(?<![\d.\w-])(?!(?:19|20)\d\d(?!\d))\d+(?:\.\d+)?(?![\w-])")
# Sentences about how a guideline was made (its task force, search, sponsors) rarely answer a
# clinical question, however close their words are to it.
_PROCESS = re.compile(
    r"\b(task force (?:was |)(?:formed|set up|aimed|searched|reviewed)|formed a task force|"
    r"set up a task force|searched (?:medline|pubmed|embase)|workshop|sponsored|was written|"
    r"formally approved|aimed to give|review included)\b",
    re.I,
)


def asks_for_number(question: str) -> bool:
    """A level, threshold, dose, duration: the answer is a quantity."""
    return bool(_ASKS_FOR_NUMBER.search(question))


def is_process_text(sentence: str) -> bool:
    """Whether a sentence tells how a guideline was made rather than what it says."""
    return bool(_PROCESS.search(sentence))


def subject_bonus(sentences: list[str], intent: Intent, question: str) -> list[float]:
    """Relevance nudges for guideline text, on top of cosine similarity, which mostly sees the
    topic: the more of the question's subject words a sentence names, the more it gains, rarer
    words counting more ("ferritin" over "iron"); a number counts when the question asks for
    one, and the guideline's own making counts against."""
    if not sentences:
        return []
    groups = focus_groups(question) or ([frozenset(intent.focus)] if intent.focus else [])
    lowered = [s.lower() for s in sentences]
    hits = [
        [any(re.search(rf"\b{re.escape(f)}", text) for f in group) for group in groups]
        for text in lowered
    ]
    n = len(sentences)
    weights = [math.log((n + 1) / (1 + sum(h[j] for h in hits))) + 1.0 for j in range(len(groups))]
    total = sum(weights) or 1.0
    wants_number = bool(_ASKS_FOR_NUMBER.search(question))
    out = []
    for sentence, row in zip(sentences, hits, strict=True):
        bonus = 0.15 * sum(w for w, hit in zip(weights, row, strict=True) if hit) / total
        if wants_number and _NUMBER.search(sentence):
            bonus += 0.08
        if _PROCESS.search(sentence):
            bonus -= 0.2
        out.append(bonus)
    return out


_CONDITION_CUES = {
    "plmd": re.compile(r"\bplmd\b|periodic limb movement disorder", re.I),
    "rls": re.compile(r"\brls\b|restless legs?|willis[- ]ekbom|\bwed\b", re.I),
}


def conditions_in(text: str) -> set[str]:
    """Which of the corpus's conditions (RLS, PLMD) a text names."""
    return {name for name, cue in _CONDITION_CUES.items() if cue.search(text)}


_SENTENCE_END = re.compile(r"(?<=[?.!])\s+")


def question_core(text: str) -> str:
    """The sentences that ask (end in '?'), without the background around them: a case history
    after the question must not turn a treatment question into a diagnosis one."""
    asking = [s for s in _SENTENCE_END.split(text.strip()) if s.rstrip().endswith("?")]
    return " ".join(asking) if asking else text
