"""Settings of the support judges.

Meant to sit in the one ``Settings`` object as ``settings.support`` (env
``CLINIQ_SUPPORT__NLI_MODEL_PATH`` and so on), either as this class or as a model with the same
fields declared next to the other settings; without it ``support_settings()`` falls back to the
defaults, so nothing here is read from the environment behind the caller's back.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class SupportSettings(BaseModel):
    """Which judges exist and where their weights are."""

    scorer_weights: Path | None = Field(
        default=None, description="Linear scorer JSON; default: the one shipped in the package."
    )
    cross_encoder_weights: Path | None = Field(
        default=None, description="Top-layer cross-encoder safetensors; default: the shipped one."
    )
    use_cross_encoder: bool = Field(
        default=True, description="Default judge uses the cross-encoder when its weights exist."
    )
    clinical_gate: bool = Field(
        default=True, description="Cap support when a dose, unit, drug or direction rule fires."
    )
    nli_model_path: Path | None = Field(
        default=None, description="Local NLI cross-encoder directory (none ships on PyPI)."
    )
    nli_label_map: dict[str, str] | None = Field(
        default=None,
        description="Model label -> supported | contradicted | not_supported; default: inferred "
        "from the model's id2label names.",
    )
    nli_max_length: int = Field(default=512, ge=16)
    llm_judge: bool = Field(
        default=True, description="Offer the LLM judge when the LLM endpoint answers."
    )
    llm_probe_timeout_s: float = Field(default=1.0, gt=0)


def support_settings(settings: object | None) -> SupportSettings:
    """``settings.support`` when the application settings carry it, else the defaults."""
    value = getattr(settings, "support", None)
    if isinstance(value, SupportSettings):
        return value
    if isinstance(value, dict):
        return SupportSettings.model_validate(value)
    if hasattr(value, "model_dump"):  # the same fields declared in the application settings
        return SupportSettings.model_validate(value.model_dump())
    return SupportSettings()
