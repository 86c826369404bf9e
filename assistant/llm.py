"""The one door to a language model: a small ``ChatModel`` protocol and its OpenAI-compatible
implementation.

The answerer depends on the protocol only, so tests script a model in plain Python and any
OpenAI-compatible server (llama-cpp-python, vLLM, llama.cpp's own server, a hosted API) plugs in
through settings. ``openai`` is imported on first use: the offline assistant never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ingest.errors import CliniqError
from ingest.settings import LLMSettings

Role = Literal["system", "user", "assistant"]
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class LLMError(CliniqError):
    """The language model could not give an answer."""


class LLMUnavailableError(LLMError):
    """No model answers at the configured endpoint (down, wrong URL, timed out, no client)."""


class LLMResponseError(LLMError):
    """The endpoint answered with an error or with no text."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that turns chat messages into one reply."""

    name: str

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> str: ...


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    One request per call and no automatic retries: a slow local server is not hammered with
    repeats, and an unreachable one fails in seconds with a message saying what to set.
    ``extra_body`` is sent with every request, for server-specific options (e.g. llama.cpp's
    ``grammar``).
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        client: Any = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.model
        self.extra_body = dict(extra_body or {})
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                # openai's own Timeout: the HTTP library under openai changed (httpx, then
                # httpx2), and a Timeout of the other one is refused.
                from openai import OpenAI, Timeout
            except ImportError as exc:
                raise LLMUnavailableError(
                    "the LLM answer path needs the openai package: pip install 'cliniq[llm]'"
                ) from exc
            timeout = self.settings.timeout_s
            self._client = OpenAI(
                base_url=self.settings.base_url,
                api_key=self.settings.api_key,
                timeout=Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout)),
                max_retries=0,
            )
        return self._client

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> str:
        client = self.client  # first: says which extra to install when openai is missing
        import openai

        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [m.as_dict() for m in messages],
            "temperature": self.settings.temperature if temperature is None else temperature,
        }
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if stop:
            request["stop"] = list(stop)
        if self.extra_body:
            request["extra_body"] = self.extra_body
        try:
            response = client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            raise LLMUnavailableError(
                f"the LLM endpoint {self.settings.base_url} did not answer within "
                f"{self.settings.timeout_s:g} s; check the server, or raise CLINIQ_LLM__TIMEOUT_S"
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(
                f"no LLM server answers at {self.settings.base_url} ({_cause(exc)}); start an "
                "OpenAI-compatible server there or set CLINIQ_LLM__BASE_URL"
            ) from exc
        except openai.APIStatusError as exc:
            hint = " (is CLINIQ_LLM__MODEL right?)" if exc.status_code == 404 else ""
            raise LLMResponseError(
                f"the LLM endpoint {self.settings.base_url} answered HTTP {exc.status_code}"
                f"{hint}: {_short(exc.message)}"
            ) from exc
        except (openai.APIError, ValueError, TypeError) as exc:  # a reply that is not one
            raise LLMResponseError(
                f"the LLM endpoint {self.settings.base_url} sent a reply that could not be read "
                f"({_short(str(exc) or type(exc).__name__)})"
            ) from exc
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            raise LLMResponseError(
                f"the LLM endpoint {self.settings.base_url} sent a reply that could not be read "
                "(no message text in it)"
            )
        return content


def chat_model_from_settings(settings: LLMSettings) -> ChatModel:
    """The configured model; the only constructor the application uses."""
    return OpenAIChatModel(settings)


def _cause(exc: BaseException) -> str:
    """The innermost reason ("Connection refused"), not the client's generic wrapper text."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return _short(str(exc) or type(exc).__name__)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
