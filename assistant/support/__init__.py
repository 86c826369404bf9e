"""Claim-versus-passage support judging, shared by the assistant and the evals.

``default_judge()`` is the package default: the learned CPU scorer (a MiniLM cross-encoder when
its weights are present, else a linear model over MiniLM, lexical and clinical features), with
the deterministic clinical checker able to overrule it. ``minilm-nli+rules`` (``minilm_nli``)
tells supported from contradicted from not enough information; the LLM path verifies with it.
``mpnet-nli+rules`` (``mpnet_nli``) does the same with all-mpnet-base-v2 fetched at setup, and
falls back to ``minilm-nli+rules`` (one log line) when that base model is absent.
``available_judges()`` lists every judge that can run here, for the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.support.base import (
    JudgeResponseError,
    JudgeUnavailableError,
    SupportError,
    SupportJudge,
    SupportLabel,
    SupportVerdict,
)
from assistant.support.clinical import ClinicalCheck, ClinicalRulesJudge, check_claim
from assistant.support.config import SupportSettings, support_settings

__all__ = [
    "ClinicalCheck",
    "ClinicalRulesJudge",
    "JudgeResponseError",
    "JudgeUnavailableError",
    "SupportError",
    "SupportJudge",
    "SupportLabel",
    "SupportSettings",
    "SupportVerdict",
    "available_judges",
    "check_claim",
    "default_judge",
]


NLI_WEIGHTS = "minilm_nli_int8.safetensors"
MPNET_WEIGHTS = "mpnet_nli_int8.safetensors"


def _weights(configured: Path | None, default_name: str) -> Path:
    from assistant.support.scorer import WEIGHTS_DIR

    return Path(configured) if configured else WEIGHTS_DIR / default_name


def default_judge(settings: Any = None, model: Any = None) -> SupportJudge:
    """The CPU support scorer combined with the clinical checker.

    That is the average of the linear scorer and the MiniLM cross-encoder when both are
    shipped (the linear scorer alone otherwise), with the clinical gate. ``model`` is an
    already-loaded SentenceTransformer (or the ingest Embedder) to share; without one, the
    packaged MiniLM is loaded once per process.
    """
    cfg = support_settings(settings)
    scorer_path = _weights(cfg.scorer_weights, "support_scorer.json")
    ce_path = _weights(cfg.cross_encoder_weights, "minilm_ce_lora.safetensors")
    ensemble_path = _weights(None, "ensemble.json")
    if cfg.use_cross_encoder and ce_path.exists() and ensemble_path.exists():
        from assistant.support.ensemble import EnsembleJudge

        return EnsembleJudge(
            model,
            config=ensemble_path,
            scorer_weights=scorer_path,
            ce_weights=ce_path,
            clinical_gate=cfg.clinical_gate,
        )
    from assistant.support.scorer import SupportScorer

    return SupportScorer(model, weights=scorer_path, clinical_gate=cfg.clinical_gate)


def available_judges(settings: Any = None, model: Any = None) -> dict[str, Callable[[], Any]]:
    """Judge name -> factory, for every judge that can run with these settings.

    The NLI judge appears only when a local model path is configured, the LLM judge only when
    the configured endpoint answers; the shipped scorers whenever their weights are present.
    """
    cfg = support_settings(settings)
    judges: dict[str, Callable[[], Any]] = {"clinical-rules": ClinicalRulesJudge}
    shared: dict[str, Any] = {}

    def features() -> Any:
        """One feature extractor (and memo) for all judges built from this listing."""
        if "fx" not in shared:
            from assistant.support.features import FeatureExtractor

            shared["fx"] = FeatureExtractor(model, memo_size=50_000)
        return shared["fx"]

    scorer_path = _weights(cfg.scorer_weights, "support_scorer.json")
    if scorer_path.exists():
        from assistant.support.scorer import SupportScorer

        judges["minilm-scorer"] = lambda: SupportScorer(
            model, weights=scorer_path, clinical_gate=False, features=features()
        )
        judges["minilm-scorer+rules"] = lambda: SupportScorer(
            model, weights=scorer_path, clinical_gate=True, features=features()
        )
    ce_path = _weights(cfg.cross_encoder_weights, "minilm_ce_lora.safetensors")
    if ce_path.exists():

        def _ce(gate: bool) -> Callable[[], Any]:
            def make() -> Any:
                from assistant.support.crossenc import CrossEncoderJudge

                return CrossEncoderJudge(
                    model, weights=ce_path, clinical_gate=gate, features=features()
                )

            return make

        judges["minilm-ce"] = _ce(False)
        judges["minilm-ce+rules"] = _ce(True)
        ensemble_path = _weights(None, "ensemble.json")
        if scorer_path.exists() and ensemble_path.exists():

            def _ens(gate: bool) -> Callable[[], Any]:
                def make() -> Any:
                    from assistant.support.ensemble import EnsembleJudge

                    return EnsembleJudge(
                        model,
                        config=ensemble_path,
                        scorer_weights=scorer_path,
                        ce_weights=ce_path,
                        clinical_gate=gate,
                        features=features(),
                    )

                return make

            judges["minilm-ensemble"] = _ens(False)
            judges["minilm-ensemble+rules"] = _ens(True)
    nli_path = _weights(None, NLI_WEIGHTS)
    if nli_path.exists():

        def _minilm_nli(gate: bool) -> Callable[[], Any]:
            def make() -> Any:
                from assistant.support.minilm_nli import MiniLMNLIJudge

                return MiniLMNLIJudge(model, weights=nli_path, clinical_gate=gate)

            return make

        judges["minilm-nli"] = _minilm_nli(False)
        judges["minilm-nli+rules"] = _minilm_nli(True)
    mpnet_path = _weights(None, MPNET_WEIGHTS)
    if mpnet_path.exists():

        def _mpnet(gate: bool) -> Callable[[], Any]:
            def make() -> Any:
                from assistant.support.models import unwrap_sentence_model
                from assistant.support.mpnet_nli import mpnet_judge

                return mpnet_judge(
                    cfg.mpnet_model_dir,
                    weights=mpnet_path,
                    clinical_gate=gate,
                    sentence_model=unwrap_sentence_model(model),
                )

            return make

        judges["mpnet-nli"] = _mpnet(False)
        judges["mpnet-nli+rules"] = _mpnet(True)
    if cfg.nli_model_path:

        def _nli() -> Any:
            from assistant.support.nli import NLIJudge

            return NLIJudge(
                cfg.nli_model_path, label_map=cfg.nli_label_map, max_length=cfg.nli_max_length
            )

        judges["nli"] = _nli
    llm = getattr(settings, "llm", None)
    if cfg.llm_judge and llm is not None:
        from assistant.support.llm import LLMJudge, endpoint_reachable

        if endpoint_reachable(llm, cfg.llm_probe_timeout_s):
            judges["llm"] = lambda: LLMJudge(llm)
    return judges
