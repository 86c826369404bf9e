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
    """One chat completion per pair, temperature from the settings (0 by default), through the
    project's one LLM client (``assistant.llm``)."""

    name = "llm"

    def __init__(self, llm: LLMSettings, client: Any = None, max_passage_chars: int = 6000) -> None:
        from assistant.llm import OpenAIChatModel

        self.llm = llm
        self.max_passage_chars = max_passage_chars
        self.version = llm.model
        self.model = OpenAIChatModel(llm, client=client)

    def settings(self) -> dict[str, object]:
        return {
            "base_url": self.llm.base_url,
            "model": self.llm.model,
            "temperature": self.llm.temperature,
        }

    def judge(self, claim: str, passage: str) -> SupportVerdict:
        from assistant.llm import ChatMessage, LLMUnavailableError

        messages = [
            ChatMessage(m["role"], m["content"])  # type: ignore[arg-type]
            for m in support_messages(claim, passage[: self.max_passage_chars])
        ]
        try:
            content = self.model.complete(messages)
        except LLMUnavailableError as exc:
            raise JudgeUnavailableError(
                f"LLM endpoint {self.llm.base_url} is unreachable ({exc})"
            ) from exc
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
