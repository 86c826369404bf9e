"""Settings of the support judges: ``settings.support`` of the one ``Settings`` object (env
``CLINIQ_SUPPORT__NLI_MODEL_PATH`` and so on). Callers that pass no settings get the defaults,
so nothing here is read from the environment behind the caller's back.
"""

from __future__ import annotations

from ingest.settings import SupportSettings

__all__ = ["SupportSettings", "support_settings"]


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
