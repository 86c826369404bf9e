"""The 3-way support judge, the clinical direction rules and the corpus perturbation set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from assistant.support.clinical import Severity, check_claim
from evals.judge_sets import PERTURBATIONS, load_perturbations

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "assistant" / "support" / "weights" / "minilm_nli_int8.safetensors"


def flagged(claim: str, passage: str) -> bool:
    check = check_claim(claim, passage)
    return check.contradiction or any(f.severity is Severity.unsupported for f in check.findings)


def rule_names(claim: str, passage: str) -> list[str]:
    return [r.split(":")[0] for r in check_claim(claim, passage).rules]


# ------------------------------------------------------------------ the flips of the issue


def test_strongly_recommended_against_suggests_against_is_contradicted() -> None:
    passage = "The AASM suggests against the standard use of levodopa in adults with RLS."
    claim = "Levodopa is strongly recommended for adults with RLS."
    assert "direction-mismatch" in rule_names(claim, passage)
    assert check_claim(claim, passage).contradiction


def test_the_other_way_round_is_contradicted_too() -> None:
    passage = "The AASM recommends gabapentin enacarbil for adults with RLS."
    claim = "The AASM recommends against gabapentin enacarbil for adults with RLS."
    assert "direction-mismatch" in rule_names(claim, passage)


@pytest.mark.parametrize(
    "claim, passage, rule",
    [
        (
            "Oral iron is a first-line treatment for adults with RLS.",
            "The AASM suggests oral iron for adults with RLS (conditional recommendation).",
            "strength-mismatch",
        ),
        (
            "Pramipexole is recommended for adults with RLS.",
            "Pramipexole is no longer recommended for adults with RLS; that advice was superseded.",
            "direction-mismatch",
        ),
        (
            "The AASM recommends IV ferric carboxymaltose for children with RLS.",
            "The AASM recommends IV ferric carboxymaltose for adults with RLS.",
            "population-mismatch",
        ),
        (
            "The AASM suggests pregabalin for adults with RLS.",
            "The AASM suggests gabapentin for adults with RLS.",
            "drug-mismatch",
        ),
        (
            "Start gabapentin at 900 mg for adults with RLS.",
            "Start gabapentin at 300 mg for adults with RLS.",
            "number-mismatch",
        ),
    ],
)
def test_changed_strength_status_population_drug_dose(claim: str, passage: str, rule: str) -> None:
    assert rule in rule_names(claim, passage)
    assert check_claim(claim, passage).contradiction


def test_a_threshold_moved_to_another_treatment_is_contradicted() -> None:
    passage = (
        "Oral iron is suggested for ferritin below 75 ng/mL; IV iron is suggested for ferritin "
        "between 75 and 100 ng/mL."
    )
    moved = "IV iron is suggested for ferritin below 75 ng/mL."
    kept = "Oral iron is suggested for ferritin below 75 ng/mL."
    assert "pairing-mismatch" in rule_names(moved, passage)
    assert rule_names(kept, passage) == []


def test_class_and_member_are_not_a_swap() -> None:
    member = "The AASM recommends IV ferric carboxymaltose for adults with RLS."
    broader = check_claim("IV iron is recommended for adults with RLS.", member)
    assert [r.split(":")[0] for r in broader.rules] == ["unseen-drug"]  # broader, not contrary
    assert not broader.contradiction
    klass = "The AASM recommends IV iron for adults with RLS."
    assert rule_names("IV ferric carboxymaltose is recommended for adults with RLS.", klass) == []
    siblings = "Clinicians may consider pramipexole; weigh augmentation with dopaminergic drugs."
    assert "drug-mismatch" in rule_names("Clinicians may consider cabergoline.", siblings)


# ------------------------------------------------------------------ no corpus names in code


def test_support_code_names_no_corpus_terms() -> None:
    pattern = re.compile(
        r"restless|\brls\b|plmd|aasm|augmentation|ropinirole|pramipexole|gabapentin|ferritin|"
        r"esrd|dialysis|willis|ekbom",
        re.IGNORECASE,
    )
    hits = [
        f"{path.name}:{n}"
        for path in sorted((REPO / "assistant" / "support").glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


# ------------------------------------------------------------------ the perturbation set


def test_perturbation_set_is_what_the_script_builds(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_perturbations.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    assert out.read_text(encoding="utf-8") == PERTURBATIONS.read_text(encoding="utf-8")


def test_perturbation_set_covers_every_kind_with_controls() -> None:
    rows = [json.loads(line) for line in PERTURBATIONS.read_text(encoding="utf-8").splitlines()]
    kinds = Counter(r["kind"] for r in rows)
    for kind in ("control", "direction", "strength", "number", "drug", "population", "option"):
        assert kinds[kind] >= 10, kinds
    assert {r["half"] for r in rows} == {"train", "test"}
    by_source: dict[str, str] = {}
    for r in rows:  # one source sentence, one half
        assert by_source.setdefault(r["source_id"], r["half"]) == r["half"]
        if r["kind"] != "control":
            assert r["claim"] != next(
                x["claim"]
                for x in rows
                if x["source_id"] == r["source_id"] and x["kind"] == "control"
            )


def test_rules_catch_the_perturbations_and_spare_the_controls() -> None:
    pairs = load_perturbations()
    perturbed = [p for p in pairs if p.kind != "control"]
    controls = [p for p in pairs if p.kind == "control"]
    caught = sum(flagged(p.claim, p.passage) for p in perturbed) / len(perturbed)
    false = sum(flagged(p.claim, p.passage) for p in controls) / len(controls)
    assert caught >= 0.95, caught
    assert false <= 0.05, false


# ------------------------------------------------------------------ the learned judge


@pytest.fixture(scope="module")
def minilm():
    from assistant.support.models import load_sentence_model

    return load_sentence_model()


@pytest.fixture(scope="module")
def nli_judge(minilm):
    if not WEIGHTS.exists():
        pytest.skip("no shipped support judge weights")
    from assistant.support.minilm_nli import MiniLMNLIJudge

    return MiniLMNLIJudge(minilm, weights=WEIGHTS, clinical_gate=False)


def test_shipped_judge_is_small_with_provenance() -> None:
    from assistant.support.minilm_nli import load_nli_weights

    assert WEIGHTS.stat().st_size < 12e6
    state, config = load_nli_weights(WEIGHTS)
    assert config["classes"] == ["supported", "contradicted", "not_supported"]
    assert "all-MiniLM-L6-v2" in config["base_model"]
    from evals.judge_sets import EVAL_ONLY, TRAINABLE

    # "unrelated" and "padded" pairs are rebuilt from those sets' train parts (the data stage)
    assert set(config["trained_on"]) <= {*TRAINABLE, "corpus", "unrelated", "padded"}
    assert not set(config["trained_on"]) & set(EVAL_ONLY)  # never ANLI (non-commercial)
    assert "classifier.weight" in state and state["classifier.weight"].shape[0] == 3


def test_judge_tells_the_three_labels_apart(nli_judge) -> None:
    passage = "A man is playing a guitar on a stage in front of a crowd."
    verdicts = nli_judge.judge_many(
        [
            ("A man is playing an instrument.", passage),
            ("A man is sleeping in his bed.", passage),
            ("The man is a famous singer from Spain.", passage),
        ]
    )
    assert [str(v.label) for v in verdicts] == ["supported", "contradicted", "not_supported"]
    assert verdicts[0].score > verdicts[1].score
    assert verdicts[1].contradiction > verdicts[0].contradiction


def test_superseded_claim_reports_history_and_over_no_is_not_a_negation(minilm) -> None:
    if not WEIGHTS.exists():
        pytest.skip("no shipped support judge weights")
    from assistant.support.minilm_nli import MiniLMNLIJudge

    judge = MiniLMNLIJudge(minilm, weights=WEIGHTS, clinical_gate=True)
    history = check_claim(
        "The 2012 guideline (now superseded) recommended ropinirole for adults.",
        "The 2012 practice parameters recommended ropinirole for treating adults.",
    )
    assert "direction-mismatch" not in [r.split(":")[0] for r in history.rules]
    verdict = judge.judge(
        "The AASM makes a strong recommendation for pregabalin in adults.",
        "The AASM recommends pregabalin over no pregabalin for adults. Strength: strong.",
    )
    assert str(verdict.label) != "contradicted"


def test_gated_judge_contradicts_a_direction_flip(minilm) -> None:
    if not WEIGHTS.exists():
        pytest.skip("no shipped support judge weights")
    from assistant.support.minilm_nli import MiniLMNLIJudge

    judge = MiniLMNLIJudge(minilm, weights=WEIGHTS, clinical_gate=True)
    passage = "The AASM suggests against the standard use of levodopa in adults with RLS."
    flip, same = judge.judge_many(
        [("Levodopa is strongly recommended for adults with RLS.", passage), (passage, passage)]
    )
    assert str(flip.label) == "contradicted" and flip.score <= 0.2
    assert str(same.label) == "supported"
    assert judge.judge_many([]) == []


def test_judge_is_listed_and_checks_the_llm_path(minilm) -> None:
    if not WEIGHTS.exists():
        pytest.skip("no shipped support judge weights")
    from assistant.support import available_judges
    from assistant.verify import Verifier
    from ingest.settings import Settings

    assert {"minilm-nli", "minilm-nli+rules"} <= set(available_judges(None, minilm))
    settings = Settings()
    assert settings.llm.verify_judge == "minilm-nli+rules"
    verifier = Verifier.default(minilm, 0.5, settings.llm.verify_judge, settings)
    assert verifier.judge.name == "minilm-nli+rules"


@pytest.mark.slow
def test_gated_judge_on_the_whole_perturbation_set(minilm) -> None:
    from assistant.support.minilm_nli import MiniLMNLIJudge

    judge = MiniLMNLIJudge(minilm, weights=WEIGHTS, clinical_gate=True)
    pairs = load_perturbations()
    verdicts = judge.judge_many([(p.claim, p.passage) for p in pairs])
    bad = [str(v.label) != "supported" for v in verdicts]
    perturbed = [b for b, p in zip(bad, pairs, strict=True) if p.kind != "control"]
    controls = [b for b, p in zip(bad, pairs, strict=True) if p.kind == "control"]
    assert sum(perturbed) / len(perturbed) >= 0.95
    assert sum(controls) / len(controls) <= 0.05


def test_weights_stored_as_a_change_keep_a_change_smaller_than_an_int8_step(tmp_path) -> None:
    """A short warm start moves weights by less than half an int8 step of where it began;
    stored as the change from those weights (``--delta-of``) it survives quantization."""
    import importlib.util

    import torch
    from safetensors.torch import save_file

    from assistant.support.minilm_nli import load_nli_weights

    spec = importlib.util.spec_from_file_location(
        "train_support_nli", REPO / "scripts" / "train_support_nli.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(16, 32, generator=gen), "b": torch.randn(16, generator=gen)}
    q, cfg = mod.quantize(base, {"version": "base"})
    save_file(q, str(tmp_path / "base.safetensors"), metadata={"config": json.dumps(cfg)})
    start, _ = load_nli_weights(tmp_path / "base.safetensors")
    step = base["w"].abs().amax(1, keepdim=True) / 127
    moved = {"w": start["w"] + 0.3 * step * torch.sign(torch.randn(16, 32, generator=gen))}
    moved["b"] = start["b"] + 0.01
    plain, cfg = mod.quantize(moved, {"version": "plain"})
    save_file(plain, str(tmp_path / "plain.safetensors"), metadata={"config": json.dumps(cfg)})
    delta = {k: moved[k] - start[k] for k in moved}
    dq, cfg = mod.quantize(delta, {"version": "delta", "delta_of": "base.safetensors"})
    save_file(dq, str(tmp_path / "delta.safetensors"), metadata={"config": json.dumps(cfg)})
    lost, _ = load_nli_weights(tmp_path / "plain.safetensors")
    kept, config = load_nli_weights(tmp_path / "delta.safetensors")
    assert config["delta_of"] == "base.safetensors"
    change = moved["w"] - start["w"]
    # plain int8 rounds most of the change away; stored as a change it is kept
    assert float((lost["w"] - moved["w"]).norm()) > 0.5 * float(change.norm())
    assert float((kept["w"] - moved["w"]).norm()) < 0.05 * float(change.norm())
    assert torch.allclose(kept["b"], moved["b"], atol=1e-2)
