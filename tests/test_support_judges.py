"""Support judges: clinical rules, the learned scorers, NLI and LLM plumbing, the benchmark."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
from conftest import shared_dataset

from assistant.support import (
    ClinicalRulesJudge,
    JudgeResponseError,
    JudgeUnavailableError,
    SupportJudge,
    SupportLabel,
    SupportSettings,
    SupportVerdict,
    available_judges,
    check_claim,
)
from assistant.support.clinical import (
    drug_names,
    effect_direction,
    extract_quantities,
    negation_count,
    recommendation_direction,
    recommendation_strength,
)
from assistant.support.features import FeatureExtractor
from assistant.support.text import content_stems, split_sentences, stem
from ingest.settings import LLMSettings

WEIGHTS = Path(__file__).resolve().parents[1] / "assistant" / "support" / "weights"


def rules_of(claim: str, passage: str) -> list[str]:
    return [r.split(":")[0] for r in check_claim(claim, passage).rules]


# ------------------------------------------------------------------ text utilities


def test_split_sentences_keeps_abbreviations_and_splits_lines() -> None:
    text = "Iron helps, e.g. IV iron. Gabapentin works.\nDose: 300 mg"
    assert split_sentences(text) == [
        "Iron helps, e.g. IV iron.",
        "Gabapentin works.",
        "Dose: 300 mg",
    ]


@pytest.mark.parametrize(
    ("word", "expected"),
    [("doses", "dose"), ("studies", "study"), ("reduced", "reduc"), ("reduces", "reduce")],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_content_stems_drop_stopwords() -> None:
    assert content_stems("The dose of the drug") == ["dose", "drug"]


# ------------------------------------------------------------------ quantities


@pytest.mark.parametrize(
    ("text", "low", "high", "dimension"),
    [
        ("300 mg", 300, 300, "mass"),
        ("300–600 mg/day", 300, 600, "mass"),
        ("300 to 600 mg", 300, 600, "mass"),
        ("1 g", 1000, 1000, "mass"),
        ("65 mcg", 0.065, 0.065, "mass"),
        ("75 ng/mL", 0.075, 0.075, "mass/volume"),
        ("75 µg/L", 0.075, 0.075, "mass/volume"),
        ("20%", 20, 20, "%"),
        ("20 percent", 20, 20, "%"),
        ("1,200", 1200, 1200, ""),
    ],
)
def test_extract_quantities(text: str, low: float, high: float, dimension: str) -> None:
    (q,) = extract_quantities(text)
    assert q.low == pytest.approx(low)
    assert q.high == pytest.approx(high)
    assert q.dimension == dimension


def test_dose_mismatch_fires_and_names_both_doses() -> None:
    check = check_claim("Take gabapentin 600 mg at night.", "Gabapentin 300 mg at night.")
    assert check.rules == ["number-mismatch: 600 mg vs 300 mg"]
    assert check.contradiction


@pytest.mark.parametrize(
    ("claim", "passage"),
    [
        ("Take gabapentin 300 mg.", "Gabapentin 300 mg is used."),
        ("Ferritin below 75 ng/mL.", "Ferritin below 75 µg/L."),
        ("A dose of 450 mg.", "Doses of 300–600 mg daily."),
        ("1 g of iron.", "1000 mg of iron."),
        ("In 20% of patients.", "In 20 percent of patients."),
    ],
)
def test_equal_quantities_do_not_fire(claim: str, passage: str) -> None:
    assert not any(r.endswith("mismatch") for r in rules_of(claim, passage))


def test_unit_mismatch() -> None:
    assert "unit-mismatch" in rules_of("Give 75 mg.", "Give 75 µg.")


def test_unseen_number_is_unsupported_not_contradiction() -> None:
    check = check_claim("About 7 trials were done.", "Several trials were done.")
    assert [f.rule for f in check.findings] == ["unseen-number"]
    assert not check.contradiction


# ------------------------------------------------------------------ cues


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("The AASM recommends against pramipexole.", "against"),
        ("The AASM suggests against levodopa.", "against"),
        ("Clinicians should not use opioids first.", "against"),
        ("Cabergoline is not recommended.", "against"),
        ("The AASM recommends ferric carboxymaltose.", "for"),
        ("The AASM suggests gabapentin.", "for"),
        ("Iron levels were measured.", None),
    ],
)
def test_recommendation_direction(text: str, direction: str | None) -> None:
    assert recommendation_direction(text) == direction


@pytest.mark.parametrize(
    ("text", "strength"),
    [
        ("The AASM recommends gabapentin.", "strong"),
        ("A strong recommendation for iron.", "strong"),
        ("The AASM suggests gabapentin.", "conditional"),
        ("A conditional recommendation for iron.", "conditional"),
        ("Iron levels were measured.", None),
    ],
)
def test_recommendation_strength(text: str, strength: str | None) -> None:
    assert recommendation_strength(text) == strength


@pytest.mark.parametrize(
    ("text", "count"),
    [("Iron is effective.", 0), ("Iron is not effective.", 1), ("It doesn't work.", 1)],
)
def test_negation_count(text: str, count: int) -> None:
    assert negation_count(text) == count


def test_effect_direction() -> None:
    assert effect_direction("Masks reduce transmission.") == "down"
    assert effect_direction("Masks increase transmission.") == "up"
    assert effect_direction("Masks were worn.") is None


def test_direction_flip_fires() -> None:
    rules = rules_of(
        "The AASM suggests against gabapentin for RLS.", "The AASM suggests gabapentin for RLS."
    )
    assert rules == ["direction-mismatch"]


def test_strength_change_fires() -> None:
    rules = rules_of(
        "The AASM recommends gabapentin for RLS.", "The AASM suggests gabapentin for RLS."
    )
    assert rules == ["strength-mismatch"]


def test_negation_dropped_fires() -> None:
    assert rules_of("Oral iron is not effective in RLS.", "Oral iron is effective in RLS.") == [
        "negation-mismatch"
    ]


def test_effect_flip_is_a_cue_only() -> None:
    check = check_claim("Masks reduce transmission.", "Masks increase transmission.")
    assert [f.rule for f in check.findings] == ["effect-direction-mismatch"]
    assert not check.contradiction


# ------------------------------------------------------------------ drugs


def test_drug_names_finds_list_stems_and_iron_formulations() -> None:
    # Lexicon drugs come back as concept ids; generic-name stems as the word.
    found = drug_names("IV ferric carboxymaltose, then pregabalin or lisinopril; not ferritin.")
    assert {"pregabalin", "lisinopril"} <= found
    assert any("carboxymaltose" in name for name in found)
    assert not any("ferritin" in name for name in found)


def test_drug_swap_fires() -> None:
    check = check_claim("The AASM suggests pregabalin.", "The AASM suggests gabapentin.")
    assert check.rules == ["drug-mismatch: pregabalin vs gabapentin"]


def test_unseen_drug_without_alternative() -> None:
    assert rules_of("Pregabalin helps RLS.", "Exercise helps RLS.") == ["unseen-drug"]


def test_faithful_recommendation_fires_nothing() -> None:
    passage = (
        "The AASM recommends IV ferric carboxymaltose 1000 mg for adults with RLS and ferritin "
        "of 75 ng/mL or lower (strong recommendation, moderate certainty)."
    )
    claim = "For adults with RLS and ferritin of 75 ng/mL or lower, the AASM recommends IV "
    claim += "ferric carboxymaltose 1000 mg."
    assert check_claim(claim, passage).rules == []


def test_rules_judge_verdicts() -> None:
    judge = ClinicalRulesJudge()
    assert isinstance(judge, SupportJudge)
    ok = judge.judge("Gabapentin 300 mg helps RLS.", "Gabapentin 300 mg helps RLS.")
    bad = judge.judge("Gabapentin 600 mg helps RLS.", "Gabapentin 300 mg helps RLS.")
    assert ok.label is SupportLabel.supported and ok.score == pytest.approx(1.0)
    assert bad.label is SupportLabel.contradicted and bad.score < 0.2
    assert bad.rules == ["number-mismatch: 600 mg vs 300 mg"]


# ------------------------------------------------------------------ learned scorers

PASSAGE = (
    "Recommendations for adults with RLS. The AASM suggests gabapentin enacarbil 600 mg once "
    "daily for adults with moderate to severe RLS (conditional recommendation, moderate "
    "certainty of evidence). The AASM suggests against the standard use of pramipexole."
)
SUPPORTED = "The AASM suggests gabapentin enacarbil 600 mg once daily for adults with RLS."
FLIPPED = "The AASM suggests against gabapentin enacarbil for adults with RLS."
REDOSED = "The AASM suggests gabapentin enacarbil 1200 mg once daily for adults with RLS."
UNRELATED = "Cognitive behavioural therapy improves insomnia in older adults."


@pytest.fixture(scope="module")
def minilm():
    from assistant.support.models import load_sentence_model

    return load_sentence_model()


@pytest.mark.parametrize(
    "judge_name", ["minilm-scorer+rules", "minilm-ce+rules", "minilm-ensemble+rules"]
)
def test_learned_judge_orders_clear_clinical_pairs(minilm, judge_name: str) -> None:
    factories = available_judges(SimpleNamespace(), minilm)
    if judge_name not in factories:
        pytest.skip(f"{judge_name} weights are not in {WEIGHTS}")
    judge = factories[judge_name]()
    pairs = [(c, PASSAGE) for c in (SUPPORTED, FLIPPED, REDOSED, UNRELATED)]
    ok, flipped, redosed, unrelated = judge.judge_many(pairs)
    assert all(isinstance(v, SupportVerdict) for v in (ok, flipped, redosed, unrelated))
    assert ok.score > flipped.score
    assert ok.score > redosed.score
    assert ok.score > unrelated.score
    assert flipped.label is SupportLabel.contradicted
    assert redosed.rules == ["number-mismatch: 1200 mg vs 600 mg"]
    assert ok.evidence is not None and "600 mg" in ok.evidence
    assert judge.judge(SUPPORTED, PASSAGE).score == pytest.approx(ok.score, abs=1e-5)


@pytest.mark.parametrize("judge_name", ["clinical-rules", "minilm-ensemble+rules"])
def test_empty_claim_or_passage_supports_nothing(minilm, judge_name: str) -> None:
    factories = available_judges(SimpleNamespace(), minilm)
    if judge_name not in factories:
        pytest.skip(f"{judge_name} weights are not in {WEIGHTS}")
    verdicts = factories[judge_name]().judge_many(
        [("", PASSAGE), (SUPPORTED, "  "), (SUPPORTED, PASSAGE)]
    )
    assert [v.rules for v in verdicts[:2]] == [["empty-input"], ["empty-input"]]
    assert all(v.label is SupportLabel.not_supported and v.score == 0 for v in verdicts[:2])
    assert verdicts[2].score > 0


def test_ungated_scorer_raises_contradiction_for_a_dose_change(minilm) -> None:
    """Without the gate the learned score barely moves on a dose change (the pair is still
    near-identical text); the contradiction probability must, and the gate does the rest."""
    factories = available_judges(SimpleNamespace(), minilm)
    if "minilm-scorer" not in factories:
        pytest.skip(f"scorer weights are not in {WEIGHTS}")
    ok, redosed = factories["minilm-scorer"]().judge_many(
        [(SUPPORTED, PASSAGE), (REDOSED, PASSAGE)]
    )
    assert redosed.contradiction > ok.contradiction
    assert redosed.rules == ["number-mismatch: 1200 mg vs 600 mg"]  # reported even ungated


def test_default_judge_shares_the_given_model(minilm) -> None:
    from assistant.support import default_judge

    if not (WEIGHTS / "support_scorer.json").exists():
        pytest.skip("no shipped scorer weights")
    from assistant.support.models import unwrap_sentence_model

    judge = default_judge(None, model=minilm)
    shared = judge._st if hasattr(judge, "_st") else judge.features.encoder.model
    assert shared is unwrap_sentence_model(minilm) or shared is minilm
    assert judge.name.endswith("+rules")
    assert judge.judge_many([]) == []


def test_default_judge_without_cross_encoder_is_the_linear_scorer(minilm) -> None:
    from assistant.support import default_judge

    if not (WEIGHTS / "support_scorer.json").exists():
        pytest.skip("no shipped scorer weights")
    settings = SimpleNamespace(support=SupportSettings(use_cross_encoder=False))
    assert default_judge(settings, model=minilm).name == "minilm-scorer+rules"
    settings = SimpleNamespace(support=SupportSettings(clinical_gate=False))
    assert not default_judge(settings, model=minilm).name.endswith("+rules")


def test_regime_features_split_short_and_long_passages() -> None:
    from assistant.support.scorer import with_regime

    x = np.array([[0.5, np.log1p(2)], [0.5, np.log1p(20)]])
    out, names = with_regime(x, ["cos_max", "n_sentences"])
    assert names == ["cos_max", "n_sentences", "cos_max*long", "n_sentences*long", "long"]
    assert out[0, 2] == 0 and out[1, 2] == 0.5 and list(out[:, 4]) == [0, 1]


def test_cross_encoder_forward_matches_transformers(minilm) -> None:
    """Our hand-written BERT forward must equal the library's, or shipped weights misfire; with
    untrained adapters (B = 0), and again after folding trained ones into the weights."""
    import torch

    from assistant.support.crossenc import ADAPTED, PairEncoder, PairModel

    bert = minilm[0].auto_model.eval()
    enc = PairEncoder(minilm, max_length=64)
    items = enc.tokenize([("Iron helps RLS.", "Oral iron is suggested."), ("a", "b c d e")])
    ids, types, mask = enc.pad(items)
    model = PairModel(dict(bert.state_dict()), n_features=2).eval()
    with torch.inference_mode():
        ours = model.encode(ids, types, mask)
        ref = bert(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    assert torch.allclose(ours * mask[..., None], ref * mask[..., None], atol=1e-4)

    torch.manual_seed(0)
    for block in model.blocks:
        for name in ADAPTED:
            torch.nn.init.normal_(getattr(block, name).B, std=0.02)
    with torch.inference_mode():
        adapted = model.encode(ids, types, mask)
        merged = model.merge_adapters().encode(ids, types, mask)
    assert not torch.allclose(adapted, ours, atol=1e-3)
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_long_passages_keep_the_sentences_closest_to_the_claim() -> None:
    from assistant.support.crossenc import fit_evidence, passage_sentences

    sentences = passage_sentences("Alpha is here. Beta is there.\nGamma is near. Delta is far.")
    assert sentences == ["Alpha is here.", "Beta is there.", "Gamma is near.", "Delta is far."]
    assert fit_evidence(sentences, [3, 3, 3, 3], [0.1, 0.9, 0.2, 0.8], budget=12) == " ".join(
        sentences
    )
    # Over budget: the two most similar, in their original order.
    assert fit_evidence(sentences, [3, 3, 3, 3], [0.1, 0.9, 0.2, 0.8], budget=6) == (
        "Beta is there. Delta is far."
    )


def test_shipped_weights_are_small_and_complete() -> None:
    from assistant.support.crossenc import load_ce_weights
    from assistant.support.scorer import LinearSupportModel

    if not (WEIGHTS / "support_scorer.json").exists():
        pytest.skip("no shipped scorer weights")
    linear = LinearSupportModel.load(WEIGHTS / "support_scorer.json")
    assert linear.coef.shape == (3, len(linear.feature_names))
    assert {"wice", "healthver"} <= linear.meta["thresholds"].keys()
    ce = WEIGHTS / "minilm_ce_lora.safetensors"
    if ce.exists():
        assert ce.stat().st_size < 2_000_000
        state, config = load_ce_weights(ce)
        assert config["rank"] >= 1 and config["max_length"] <= 512
        assert {"wice", "healthver"} <= config["thresholds"].keys()
        assert any(k.startswith("classifier.") for k in state)
        assert any(k.endswith(".A") for k in state) and any(k.endswith(".B") for k in state)
        # Only what training changed ships: no frozen embedding or base weight.
        assert not any("word" in k or k.endswith("base.weight") for k in state)
    ensemble = WEIGHTS / "ensemble.json"
    if ensemble.exists():
        config = json.loads(ensemble.read_text())
        assert 0 <= config["ce_weight"] <= 1
        assert {"wice", "healthver"} <= config["thresholds"].keys()


def test_missing_weights_say_how_to_make_them(tmp_path: Path) -> None:
    from assistant.support.scorer import LinearSupportModel

    with pytest.raises(JudgeUnavailableError, match="train_support_scorer"):
        LinearSupportModel.load(tmp_path / "nope.json")


# ------------------------------------------------------------------ NLI plumbing


def _tiny_nli(path: Path, id2label: dict[int, str]) -> Path:
    """A randomly initialised 3-label BERT with its own 30-word vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *["iron", "gabapentin", "rls", "helps", "is", "not"],
    ]
    vocab += [f"w{i}" for i in range(30 - len(vocab))]
    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_nli_judge_plumbing(tmp_path: Path) -> None:
    from assistant.support.nli import NLIJudge

    path = _tiny_nli(tmp_path / "nli", {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"})
    judge = NLIJudge(path, max_length=64)
    assert judge.label_map == {
        0: SupportLabel.contradicted,
        1: SupportLabel.supported,
        2: SupportLabel.not_supported,
    }
    probs = judge.probabilities([("iron helps rls", "iron is not gabapentin")] * 2)
    assert probs.shape == (2, 3)
    assert np.allclose(probs.sum(axis=1), 1.0)
    (verdict,) = judge.judge_many([("iron helps rls", "gabapentin helps rls")])
    assert verdict.judge == "nli"
    assert verdict.score == pytest.approx(
        judge.probabilities([("iron helps rls", "gabapentin helps rls")])[0, 0]
    )

    settings = SimpleNamespace(support=SupportSettings(nli_model_path=path, llm_judge=False))
    assert "nli" in available_judges(settings)
    assert isinstance(available_judges(settings)["nli"](), NLIJudge)


def test_nli_label_map_explicit_and_unknown(tmp_path: Path) -> None:
    from assistant.support.nli import NLIJudge

    path = _tiny_nli(tmp_path / "nli", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(JudgeUnavailableError, match="nli_label_map"):
        NLIJudge(path)
    judge = NLIJudge(
        path,
        label_map={"LABEL_0": "supported", "LABEL_1": "not_supported", "LABEL_2": "contradicted"},
    )
    raw = judge.model.predict([("gabapentin", "iron")], apply_softmax=True)[0]
    probs = judge.probabilities([("iron", "gabapentin")])[0]
    assert probs[0] == pytest.approx(raw[0]) and probs[1] == pytest.approx(raw[2])


def test_nli_missing_directory(tmp_path: Path) -> None:
    from assistant.support.nli import NLIJudge

    with pytest.raises(JudgeUnavailableError, match="not found"):
        NLIJudge(tmp_path / "absent")
    assert "nli" not in available_judges(SimpleNamespace(support=SupportSettings()))


# ------------------------------------------------------------------ LLM judge


class _FakeChat(BaseHTTPRequestHandler):
    """Speaks just enough of the chat-completions API: /v1/models and /v1/chat/completions."""

    reply = ""
    requests: ClassVar[list[dict]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "local", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        self._send(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": type(self).reply},
                    }
                ],
            }
        )


@pytest.fixture
def fake_llm():
    handler = type("Handler", (_FakeChat,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    llm = LLMSettings(base_url=f"http://127.0.0.1:{server.server_port}/v1", timeout_s=5)
    yield handler, llm
    server.shutdown()
    server.server_close()


def test_llm_judge_parses_the_answer_and_sends_the_pair(fake_llm) -> None:
    pytest.importorskip("openai")
    from assistant.support.llm import LLMJudge

    handler, llm = fake_llm
    handler.reply = '```json\n{"label": "supported", "reason": "same dose", "confidence": 0.8}\n```'
    verdict = LLMJudge(llm).judge("Gabapentin 300 mg.", "Use gabapentin 300 mg.")
    assert verdict.label is SupportLabel.supported
    assert verdict.score == pytest.approx(0.8)
    assert verdict.rules == ["llm-reason: same dose"]
    sent = handler.requests[-1]["messages"][1]["content"]
    assert "<claim>\nGabapentin 300 mg.\n</claim>" in sent
    assert "<passage>\nUse gabapentin 300 mg.\n</passage>" in sent

    handler.reply = '{"label": "contradicted", "reason": "dose differs", "confidence": 0.9}'
    verdict = LLMJudge(llm).judge("Gabapentin 600 mg.", "Use gabapentin 300 mg.")
    assert verdict.label is SupportLabel.contradicted
    assert verdict.contradiction == pytest.approx(0.9) and verdict.score < 0.5


@pytest.mark.parametrize(
    "reply",
    [
        "Supported.",
        '{"label": "probably", "reason": "x"}',
        '{"label": "supported"}',
        '{"label": "supported", "reason": "x", "confidence": "high"}',
        '["supported"]',
    ],
)
def test_llm_judge_rejects_malformed_answers(fake_llm, reply: str) -> None:
    pytest.importorskip("openai")
    from assistant.support.llm import LLMJudge

    handler, llm = fake_llm
    handler.reply = reply
    with pytest.raises(JudgeResponseError):
        LLMJudge(llm).judge("claim", "passage")


def test_llm_judge_unreachable_endpoint_is_a_clear_error() -> None:
    pytest.importorskip("openai")
    from assistant.support.llm import LLMJudge, endpoint_reachable

    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", timeout_s=2)
    assert not endpoint_reachable(llm, timeout_s=0.5)
    with pytest.raises(JudgeUnavailableError, match="unreachable"):
        LLMJudge(llm).judge("claim", "passage")
    settings = SimpleNamespace(llm=llm, support=SupportSettings(llm_probe_timeout_s=0.5))
    assert "llm" not in available_judges(settings)


def test_llm_judge_listed_when_endpoint_answers(fake_llm) -> None:
    _, llm = fake_llm
    assert "llm" in available_judges(SimpleNamespace(llm=llm))


def test_prompt_templates_use_their_variables() -> None:
    from assistant.support.prompts import SUPPORT_USER, support_messages, template_fields

    assert template_fields(SUPPORT_USER) == {"claim", "passage"}
    messages = support_messages("C {x}", "P")
    assert messages[1]["content"].count("C {x}") == 1


# ------------------------------------------------------------------ benchmark


def test_auroc_and_thresholds() -> None:
    from evals.judges_bench import accuracy_at, auroc, best_f1_threshold, f1_at

    y = np.array([1, 1, 0, 0, 1], dtype=bool)
    assert auroc(y, np.array([0.9, 0.8, 0.1, 0.2, 0.7])) == 1.0
    assert auroc(y, np.array([0.1, 0.2, 0.9, 0.8, 0.3])) == 0.0
    assert auroc(y, np.full(5, 0.5)) == 0.5
    assert auroc(y, np.array([0.9, 0.5, 0.5, 0.1, 0.2])) == pytest.approx(4.5 / 6)
    s = np.array([0.9, 0.6, 0.4, 0.2, 0.7])
    t, f = best_f1_threshold(y, s)
    assert 0.4 < t <= 0.6 and f == 1.0
    assert f1_at(y, s, t) == 1.0 and accuracy_at(y, s, t) == 1.0


def test_published_auroc_matches_the_papers_evaluation() -> None:
    """Recomputing from released scores checks our claim-id mapping and label direction."""
    from evals.judges_bench import load_wice, published_figures

    data_dir = shared_dataset("faithfulness")
    figures = published_figures(data_dir, load_wice("test", data_dir), resamples=0, seed=0)
    t5 = figures["WiCE subset: T5-3B (ANLI)"]
    evaluation = json.loads(
        (
            data_dir / "wice/model_outputs/claim__t5-3b-anli__test.entailment_score.evaluation.json"
        ).read_text()
    )
    assert t5["n"] == 100
    assert t5["auroc"]["value"] == pytest.approx(evaluation["roc"]["0_vs_1,2"]["roc"])


def _assert_complete(report, judges: list[str]) -> None:
    from evals.judges_bench import format_table

    assert [r.judge for r in report.judges] == judges
    for r in report.judges:
        assert r.error is None, r.error
        assert r.version and r.threshold_source.startswith("dev")
        for part in (r.wice_all, r.wice_subset, r.healthver):
            assert part is not None and part.n > 0
            for fig in (part.f1, part.accuracy, part.auroc):
                assert fig.value is not None and 0 <= fig.value <= 1
                assert fig.low is not None and fig.low <= fig.value <= fig.high
        assert r.healthver.svr_auroc.value is not None
        assert r.healthver.three_class_accuracy is not None
        assert r.healthver.three_class_macro_f1 is not None
    table = format_table(report)
    assert "published: T5-3B (ANLI)" in table and "Regenerate:" in table


def test_benchmark_smoke_with_rules_judge(tmp_path: Path) -> None:
    from evals.judges_bench import BenchmarkReport, main

    data_dir = shared_dataset("faithfulness")
    out = tmp_path / "report.json"
    args = ["--limit", "30", "--judges", "clinical-rules", "--resamples", "50"]
    assert main([*args, "--data-dir", str(data_dir), "--json", str(out)]) == 0
    report = BenchmarkReport.model_validate_json(out.read_text())
    _assert_complete(report, ["clinical-rules"])
    assert report.limit == 30 and report.judges[0].wice_all.n == 30
    assert report.judges[0].wice_subset.n == 15


def test_benchmark_rejects_unknown_judge() -> None:
    from evals.judges_bench import run_judge_benchmark

    data_dir = shared_dataset("faithfulness")
    with pytest.raises(ValueError, match="available"):
        run_judge_benchmark(judges=["oracle"], limit=5, data_dir=data_dir, resamples=0)


@pytest.mark.slow
def test_benchmark_smoke_every_judge(minilm) -> None:
    from evals.judges_bench import run_judge_benchmark

    data_dir = shared_dataset("faithfulness")
    report = run_judge_benchmark(
        SimpleNamespace(), limit=30, data_dir=data_dir, resamples=50, model=minilm
    )
    _assert_complete(report, [r.judge for r in report.judges])
    assert len(report.judges) >= 1


def test_support_settings_from_any_model_with_the_same_fields(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from assistant.support.config import support_settings

    class Declared(BaseModel):
        nli_model_path: Path | None = None
        use_cross_encoder: bool = True

    got = support_settings(SimpleNamespace(support=Declared(nli_model_path=tmp_path)))
    assert got.nli_model_path == tmp_path and got.use_cross_encoder
    assert support_settings(None) == SupportSettings()
    assert (
        support_settings(SimpleNamespace(support={"clinical_gate": False})).clinical_gate is False
    )


def test_support_settings_come_from_the_one_settings_object(tmp_path: Path, monkeypatch) -> None:
    from assistant.support.config import support_settings
    from ingest.settings import Settings

    monkeypatch.setenv("CLINIQ_SUPPORT__NLI_MODEL_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIQ_SUPPORT__CLINICAL_GATE", "false")
    settings = Settings()
    assert settings.support.nli_model_path == tmp_path
    assert support_settings(settings).clinical_gate is False


def test_onnx_token_encoder_gives_the_torch_features(minilm) -> None:
    """The judge encodes with the float32 ONNX graph; its features must be the ones the scorer
    was trained on (torch's), or its calibration would not hold."""
    from assistant.support.models import packaged_model_path
    from ingest.embedding import TokenEncoder, TorchTokenEncoder

    pairs = [(SUPPORTED, PASSAGE), (REDOSED, PASSAGE), ("Iron helps some people.", PASSAGE)]
    torch_fx = FeatureExtractor(encoder=TorchTokenEncoder(minilm))
    onnx_fx = FeatureExtractor(encoder=TokenEncoder(packaged_model_path(), None, threads=2))
    want, got = torch_fx.compute(pairs), onnx_fx.compute(pairs)
    assert want.names == got.names
    assert np.abs(want.matrix - got.matrix).max() < 1e-4
    # Remembered texts are not encoded again, and give the same rows.
    calls: list[int] = []
    encode = onnx_fx.encoder.encode
    onnx_fx.encoder.encode = lambda texts: calls.append(len(texts)) or encode(texts)  # type: ignore[method-assign]
    onnx_fx._memo.clear()
    again = onnx_fx.compute(pairs)
    assert calls == [] and np.array_equal(again.matrix, got.matrix)


def test_int8_token_encoder_keeps_the_verdicts() -> None:
    """The int8 graph (the judge's encoder where `auto` chose int8) moves features a little
    and verdicts not at all on these pairs."""
    from assistant.support.models import packaged_model_path
    from assistant.support.scorer import SupportScorer
    from ingest.embedding import TokenEncoder

    pairs = [(SUPPORTED, PASSAGE), (REDOSED, PASSAGE), ("Iron helps some people.", PASSAGE)]
    verdicts = {}
    for int8 in (False, True):
        encoder = TokenEncoder(packaged_model_path(), None, threads=2, int8=int8)
        assert encoder.backend == ("onnx-int8" if int8 else "onnx")
        judge = SupportScorer(features=FeatureExtractor(encoder=encoder))
        verdicts[int8] = judge.judge_many(pairs)
    for exact, quantized in zip(verdicts[False], verdicts[True], strict=True):
        assert exact.label == quantized.label
        assert abs(exact.score - quantized.score) < 0.05


def test_judge_encodes_with_torch_where_no_onnx_graph_can_be_made(monkeypatch, caplog) -> None:
    import assistant.support.features as features
    from ingest.embedding import TorchTokenEncoder

    def unavailable(*args, **kwargs):
        raise RuntimeError("onnx is not installed")

    monkeypatch.setattr(features, "TokenEncoder", unavailable)
    monkeypatch.setattr("ingest.embedding.resolve_backend", lambda settings: "onnx-int8")
    encoder = features.default_token_encoder()
    assert isinstance(encoder, TorchTokenEncoder)
    assert "onnx is not installed" in caplog.text
    ids, tokens, sentence = encoder.encode(["Ferritin below 75 ng/mL."])[0]
    assert len(ids) == len(tokens) and abs(float(np.linalg.norm(sentence)) - 1.0) < 1e-4


def test_found_names_are_remembered_without_sharing_the_set() -> None:
    from assistant.support.clinical import default_terms

    terms = default_terms()
    text = "The AASM suggests gabapentin or pregabalin for adults with RLS."
    first = terms.find(text, "drug")
    assert len(first) == 2
    first.add("not-a-drug")
    assert terms.find(text, "drug") == first - {"not-a-drug"}
    terms.forget()
    assert terms.find(text, "drug") == first - {"not-a-drug"}
