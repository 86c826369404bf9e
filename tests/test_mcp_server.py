"""`cliniq mcp` against the official MCP SDK's own client session: over stdio (the process the
client launches) and over streamable HTTP (a live `cliniq mcp --http`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from conftest import CORPUS_DIR, REPO_ROOT, free_port, serving

from assistant.types import Answer

QUESTION = "What is the first-line treatment for restless legs syndrome?"


def server_env(index: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIQ_")}
    return {
        **env,
        "CLINIQ_STORE__INDEX_DIR": str(index),
        "CLINIQ_LEXICON_DIR": str(CORPUS_DIR / "lexicon"),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


async def exercise(session) -> dict:
    """The three tools, as an agent would call them; returns what came back."""
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {"search_sources", "ask", "get_passage"}
    assert tools["ask"].output_schema and "question" in tools["ask"].input_schema["properties"]

    asked = await session.call_tool("ask", {"question": QUESTION})
    assert not asked.is_error
    answer = Answer.model_validate(asked.structured_content["answer"])
    markdown = asked.structured_content["markdown"]
    assert asked.content[0].text == markdown  # what the agent reads is the Markdown
    assert not answer.abstained and answer.references and "[1]" in markdown

    found = await session.call_tool("search_sources", {"query": "allopurinol urate", "k": 2})
    top = found.structured_content["passages"][0]
    assert top["page"] == 2 and top["document"]["title"].startswith("Urate lowering")

    cited = answer.all_sentences()[0].citations[0].chunk_id
    passage = await session.call_tool("get_passage", {"passage_id": cited})
    assert passage.structured_content["id"] == cited and passage.structured_content["text"]

    missing = await session.call_tool("get_passage", {"passage_id": "no-such-id"})
    assert missing.is_error and "no passage 'no-such-id'" in missing.content[0].text
    empty = await session.call_tool("ask", {"question": "  "})
    assert empty.is_error and "the question is empty" in empty.content[0].text
    unknown = await session.call_tool("ask", {"question": QUESTION, "model": "gpt-4"})
    assert unknown.is_error and "unknown model 'gpt-4'" in unknown.content[0].text
    return {"ask": asked, "search": found}


@pytest.mark.integration
def test_stdio_server_with_the_sdk_client(served_index):
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "assistant.cli", "mcp"],
        env=server_env(served_index),
        cwd=str(REPO_ROOT),
    )

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await exercise(session)

    anyio.run(main)


@pytest.mark.integration
def test_streamable_http_server_with_the_sdk_client(served_index, tmp_path):
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    key = "mcp-key"
    url = f"http://127.0.0.1:{port}/mcp"

    def ready() -> bool:
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.HTTPError:
            return False

    with serving(
        [sys.executable, "-m", "assistant.cli", "mcp", "--http", "--port", str(port)],
        tmp_path / "mcp.log",
        ready,
        "cliniq mcp --http",
        timeout_s=180,
        cwd=REPO_ROOT,
        env=server_env(served_index, CLINIQ_SERVE__API_KEY=key),
    ):
        assert httpx.post(url, json={}).status_code == 401

        async def main() -> None:
            import httpx2

            headers = {"Authorization": f"Bearer {key}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=120) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await exercise(session)

        anyio.run(main)
