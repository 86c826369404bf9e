"""What the Streamlit app holds between reruns, kept free of Streamlit so it can be tested alone.

The app builds the settings once from the environment, keeps one ``Engine`` per process (the
model takes seconds to load) and one ``Conversation`` per browser session.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import ingest  # noqa: F401  (offline hub and pinned threads, before torch loads)
from assistant.conversation import Session
from assistant.engine import Assistant
from assistant.service import Cliniq
from assistant.types import Answer
from ingest.settings import Settings
from ingest.store import IndexStats

REPO_ROOT = Path(__file__).resolve().parents[1]


def environment_key() -> tuple[tuple[str, str], ...]:
    """The CLINIQ_* variables: settings are rebuilt only when these change."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CLINIQ_")))


def app_settings(root: Path = REPO_ROOT) -> Settings:
    """Settings from the environment, with relative paths that only exist under the repository
    resolved there, so `streamlit run` works from any directory."""
    settings = Settings()
    index_dir = _resolve(settings.store.index_dir, root)
    if index_dir != settings.store.index_dir:
        settings.store.index_dir = index_dir
    lexicon_dir = _resolve(settings.lexicon_dir, root)
    if lexicon_dir != settings.lexicon_dir:
        settings.lexicon_dir = lexicon_dir
    return settings


def _resolve(path: Path, root: Path) -> Path:
    if path.is_absolute() or path.exists() or not (root / path).exists():
        return path
    return root / path


@dataclass(frozen=True)
class LLMStatus:
    """Whether the LLM answerer can be offered, and the reason shown to the reader."""

    available: bool
    reason: str


def probe_llm(base_url: str, api_key: str = "", timeout_s: float = 1.0) -> LLMStatus:
    """Ask the configured OpenAI-compatible endpoint for its models; nothing else is contacted."""
    try:
        import openai  # noqa: F401
    except ImportError:
        return LLMStatus(False, "the openai package is missing: pip install 'cliniq[llm]'")
    if not base_url.startswith(("http://", "https://")):
        return LLMStatus(False, f"CLINIQ_LLM__BASE_URL is not an http(s) URL: {base_url!r}")
    url = base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        return LLMStatus(False, f"{url} answered HTTP {exc.code}; check CLINIQ_LLM__BASE_URL")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return LLMStatus(
            False,
            f"no OpenAI-compatible server answers at {base_url} ({reason}); start one there "
            "or set CLINIQ_LLM__BASE_URL (see docs/llm.md)",
        )
    return LLMStatus(True, f"a model server answers at {base_url}")


class Engine(Cliniq):
    """The process's answerers (the same ``Cliniq`` the server and MCP tools use), with the
    index's figures the sidebar shows. Questions take turns behind its lock."""

    def __init__(self, settings: Settings, assistant: Assistant | None = None) -> None:
        super().__init__(settings, assistant)
        self.stats: IndexStats = self.assistant.index.stats()


@dataclass
class Exchange:
    """One question and what came back: an answer, or the reason there is none."""

    question: str
    answer: Answer | None = None
    error: str | None = None


@dataclass
class Conversation:
    """The chat of one browser session; its ``Session`` makes follow-ups standalone."""

    session: Session = field(default_factory=Session)
    exchanges: list[Exchange] = field(default_factory=list)

    def reset(self) -> None:
        """What `/new` does in `cliniq chat`, plus forgetting what is on screen."""
        self.session.reset()
        self.exchanges.clear()
