"""`cliniq mcp`: cliniq as tools for an agent, over the official MCP Python SDK.

Three tools, all backed by the one ``Cliniq`` service: ``search_sources`` (passages with scores),
``ask`` (the structured answer and its Markdown) and ``get_passage``. stdio by default (what
desktop clients launch); ``--http`` serves streamable HTTP at ``/mcp``. Nothing may be printed to
stdout in stdio mode: it is the protocol's channel.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from pydantic import BaseModel, Field

from assistant.render import to_markdown
from assistant.service import MODELS, Cliniq, PassageView
from assistant.types import Answer
from ingest.errors import CliniqError

INSTRUCTIONS = (
    "cliniq answers clinical questions from an index of guidelines and research, citing every "
    "sentence and checking it against the passage it cites. Use `ask` for an answer, "
    "`search_sources` for ranked passages, `get_passage` to read one passage in full. Quote "
    "answers with their [n] citations; an answer with abstained=true means the sources do not "
    "address the question."
)


class SearchResult(BaseModel):
    query: str
    passages: list[PassageView]


class AskResult(BaseModel):
    markdown: str = Field(description="The answer as Markdown, with [n] citation marks.")
    answer: Answer = Field(
        description="Sections, sentences, citations (passage id, reference number, support "
        "score), references, abstention and notes."
    )


def build_server(service: Cliniq) -> Any:
    """An ``MCPServer`` with cliniq's three tools."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp.types import CallToolResult, TextContent
    except ImportError as exc:  # pragma: no cover - the extra is part of `make setup`
        raise CliniqError(
            "the MCP SDK is missing: pip install 'cliniq[serve]'" + f" ({exc})"
        ) from None

    server = MCPServer(name="cliniq", instructions=INSTRUCTIONS, log_level="WARNING")

    def run(call: Any) -> Any:
        try:
            return call()
        except CliniqError as exc:  # what the agent must change, said plainly
            raise ToolError(str(exc)) from None

    @server.tool()
    def search_sources(
        query: str, k: int = 5, mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    ) -> SearchResult:
        """Ranked passages of the indexed guidelines and research for a query, with scores,
        page, section and grade. No answer is composed."""
        return SearchResult(query=query, passages=run(lambda: service.search(query, k, mode)))

    @server.tool()
    def ask(question: str, history: list[str] | None = None, model: str = "cliniq") -> AskResult:
        """Answer a clinical question from the indexed sources. Every sentence cites a passage
        and was verified against it; `history` holds the conversation's earlier questions
        (oldest first) so a follow-up is understood. `model`: cliniq (offline) or cliniq-llm."""
        answer = run(lambda: service.ask(question, history or [], model=model))
        result = AskResult(markdown=to_markdown(answer), answer=answer)
        # The text an agent reads is the Markdown; the structured content is the whole answer.
        return CallToolResult(  # type: ignore[return-value]
            content=[TextContent(type="text", text=result.markdown)],
            structured_content=result.model_dump(mode="json"),
        )

    @server.tool()
    def get_passage(passage_id: str) -> PassageView:
        """One passage in full, by the id a search result or an answer's citation gives
        (chunk_id), with its document, page, section and grade."""
        return run(lambda: service.passage(passage_id))

    return server


def bearer_guard(app: Any, api_key: str | None) -> Any:
    """An ASGI wrapper that refuses HTTP requests without ``Authorization: Bearer <api_key>``."""
    if not api_key:
        return app

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            scheme, _, token = headers.get(b"authorization", b"").decode().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), api_key):
                body = (
                    b'{"error": {"message": "missing or wrong bearer token: send '
                    b'`Authorization: Bearer <key>` with the key set in CLINIQ_SERVE__API_KEY", '
                    b'"type": "authentication_error", "code": "invalid_api_key"}}'
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def serve_stdio(service: Cliniq) -> None:
    build_server(service).run("stdio")


def serve_http(service: Cliniq, host: str, port: int) -> None:
    """Streamable HTTP at http://host:port/mcp, behind the bearer token when one is set."""
    import uvicorn

    server = build_server(service)
    app = server.streamable_http_app(host=host)
    uvicorn.run(
        bearer_guard(app, service.settings.serve.api_key),
        host=host,
        port=port,
        log_level="warning",
    )


__all__ = ["MODELS", "AskResult", "SearchResult", "build_server", "serve_http", "serve_stdio"]
