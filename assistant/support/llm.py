"""LLM judge over an OpenAI-compatible endpoint (e.g. llama-cpp-python's server).

The answer must be one JSON object with a label from our three and a short reason; anything
else is an error, not a guess, so a misbehaving model shows up in the benchmark instead of
silently scoring as "not supported".
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from assistant.support.base import (
    JudgeResponseError,
    JudgeUnavailableError,
    SupportLabel,
    SupportVerdict,
    clip01,
)
from assistant.support.prompts import support_messages
from ingest.settings import LLMSettings

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_judgement(content: str) -> tuple[SupportLabel, str, float]:
    """Strictly parse ``{"label": ..., "reason": ..., "confidence": ...}`` (fences allowed)."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeResponseError(f"LLM judge did not answer JSON: {content[:200]!r}") from exc
    if not isinstance(data, dict):
        raise JudgeResponseError(f"LLM judge answered {type(data).__name__}, not an object")
    try:
        label = SupportLabel(str(data.get("label", "")).strip().lower())
    except ValueError as exc:
        raise JudgeResponseError(
            f"LLM judge label {data.get('label')!r} is not one of "
            f"{[lab.value for lab in SupportLabel]}"
        ) from exc
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise JudgeResponseError("LLM judge gave no reason")
    confidence = data.get("confidence", 1.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise JudgeResponseError(f"LLM judge confidence {confidence!r} is not a number")
    return label, reason.strip(), clip01(float(confidence))


def endpoint_reachable(llm: LLMSettings, timeout_s: float = 1.0) -> bool:
    """Does anything answer at ``{base_url}/models``? (Cheap; no openai import.)"""
    url = llm.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {llm.api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return 200 <= response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


class LLMJudge:
    """One chat completion per pair, temperature from the settings (0 by default)."""

    name = "llm"

    def __init__(self, llm: LLMSettings, client: Any = None, max_passage_chars: int = 6000) -> None:
        self.llm = llm
        self.max_passage_chars = max_passage_chars
        self.version = llm.model
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as exc:
                raise JudgeUnavailableError(
                    "the LLM judge needs the openai package: pip install 'cliniq[llm]'"
                ) from exc
            self._client = OpenAI(
                base_url=self.llm.base_url,
                api_key=self.llm.api_key,
                timeout=self.llm.timeout_s,
                max_retries=0,
            )
        return self._client

    def settings(self) -> dict[str, object]:
        return {
            "base_url": self.llm.base_url,
            "model": self.llm.model,
            "temperature": self.llm.temperature,
        }

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        try:
            import openai
        except ImportError:  # pragma: no cover - client property raises the clear error
            openai = None  # type: ignore[assignment]
        try:
            response = self.client.chat.completions.create(
                model=self.llm.model,
                messages=support_messages(claim, passage[: self.max_passage_chars]),
                temperature=self.llm.temperature,
            )
        except Exception as exc:
            if openai is not None and isinstance(
                exc, openai.APIConnectionError | openai.APITimeoutError
            ):
                raise JudgeUnavailableError(
                    f"LLM endpoint {self.llm.base_url} is unreachable ({exc}); start the server "
                    "or set CLINIQ_LLM__BASE_URL"
                ) from exc
            raise
        content = response.choices[0].message.content or ""
        label, reason, confidence = parse_judgement(content)
        if label is SupportLabel.supported:
            score, contradiction = confidence, 0.0
        elif label is SupportLabel.contradicted:
            score, contradiction = min(0.49, 1 - confidence), confidence
        else:
            score, contradiction = min(0.49, 1 - confidence), 0.0
        return SupportVerdict(
            label=label,
            score=clip01(score),
            contradiction=clip01(contradiction),
            judge=self.name,
            rules=[f"llm-reason: {reason}"],
        )

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[SupportVerdict]:
        return [self.judge(c, p) for c, p in pairs]
