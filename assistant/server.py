"""`cliniq serve`: an OpenAI-compatible chat endpoint and native JSON routes (docs/integrations.md).

Every route calls the one ``Cliniq`` service, so the answers are the CLI's answers. Answering is
blocking CPU work: it runs in a worker thread, never on the event loop, and questions take turns
on the service's lock. Errors are JSON in OpenAI's shape, ``{"error": {"message", "type",
"code", "param"}}``, with a message that says what to fix.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.render import to_markdown
from assistant.service import (
    MODELS,
    Cliniq,
    Health,
    InvalidArgumentError,
    PassageNotFoundError,
    PassageView,
    QuestionTooLongError,
    UnknownModelError,
)
from assistant.types import Answer
from assistant.understand import QuestionError
from ingest.errors import CliniqError
from ingest.settings import Settings

log = logging.getLogger("cliniq.server")

#: The field of a chat completion (and of its last streamed chunk) that holds the answer's JSON.
EXTRA_FIELD = "cliniq"


class ApiError(Exception):
    """A request the caller must change; becomes a 4xx/5xx JSON error."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 404:
        return "not_found_error"
    return "invalid_request_error" if status < 500 else "server_error"


def _error_body(status: int, code: str, message: str, param: str | None = None) -> dict:
    return {
        "error": {"message": message, "type": _error_type(status), "code": code, "param": param}
    }


def api_error_of(exc: CliniqError) -> ApiError:
    """Our errors, as HTTP: what the caller sent (4xx) or what cliniq depends on (5xx)."""
    from assistant.llm import LLMResponseError, LLMUnavailableError

    if isinstance(exc, UnknownModelError):
        return ApiError(404, "model_not_found", str(exc), "model")
    if isinstance(exc, QuestionTooLongError):
        return ApiError(400, "question_too_long", str(exc), "messages")
    if isinstance(exc, QuestionError):
        return ApiError(400, "empty_question", str(exc), "messages")
    if isinstance(exc, InvalidArgumentError):
        return ApiError(400, "invalid_request", str(exc), exc.param)
    if isinstance(exc, PassageNotFoundError):
        return ApiError(404, "passage_not_found", str(exc), "id")
    if isinstance(exc, LLMUnavailableError):
        return ApiError(503, "llm_unavailable", str(exc))
    if isinstance(exc, LLMResponseError):
        return ApiError(502, "llm_error", str(exc))
    return ApiError(400, "bad_request", str(exc))


# -- request and response models --------------------------------------------------------------


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """Plain text; a list of content parts (OpenAI's multi-part form) keeps its text parts."""
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat request; fields cliniq has no use for (temperature, ...) are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False


class AskRequest(BaseModel):
    question: str = Field(description="A clinical question.")
    history: list[str] = Field(
        default_factory=list, description="Earlier questions of the conversation, oldest first."
    )
    model: str = Field(default="cliniq", description="cliniq | cliniq-llm")


class SearchRequest(BaseModel):
    query: str
    k: int = Field(default=5, ge=1, le=100)
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"


class SearchResponse(BaseModel):
    query: str
    mode: str
    passages: list[PassageView]


def chat_question(messages: list[ChatMessageIn]) -> tuple[str, list[str]]:
    """The last user message is the question; the user messages before it are the follow-up
    context. System and assistant messages are not read: answers come only from the index."""
    users = [m.text() for m in messages if m.role == "user"]
    if not users:
        raise ApiError(
            400,
            "empty_question",
            "no user message: put the question in a message with role 'user'",
            "messages",
        )
    return users[-1], users[:-1]


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": to_markdown(answer)},
                "finish_reason": "stop",
            }
        ],
        EXTRA_FIELD: answer.model_dump(mode="json"),
    }


def completion_chunks(answer: Answer, model: str) -> Iterator[str]:
    """Server-sent events: the role, the Markdown line by line, then a last chunk with
    ``finish_reason`` and the structured answer, then ``[DONE]``. The answer is verified in full
    before the first line is sent: nothing streamed is ever taken back."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra})}\n\n"

    yield event({"role": "assistant", "content": ""})
    for line in to_markdown(answer).splitlines(keepends=True):
        yield event({"content": line})
    yield event({}, "stop", **{EXTRA_FIELD: answer.model_dump(mode="json")})
    yield "data: [DONE]\n\n"


# -- the app ----------------------------------------------------------------------------------


def create_app(service: Cliniq) -> FastAPI:
    """The ASGI app over one loaded service."""
    settings = service.settings
    app = FastAPI(
        title="cliniq",
        summary="Guideline-grounded clinical answers with verified citations.",
        version="0.1.0",
    )
    app.state.service = service

    def authorize(request: Request) -> None:
        key = settings.serve.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), key):
            raise ApiError(
                401,
                "invalid_api_key",
                "missing or wrong bearer token: send `Authorization: Bearer <key>` with the "
                "key set in CLINIQ_SERVE__API_KEY",
            )

    auth = [Depends(authorize)]

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(exc.status, exc.code, exc.message, exc.param), exc.status)

    @app.exception_handler(CliniqError)
    async def _cliniq_error(_: Request, exc: CliniqError) -> JSONResponse:
        err = api_error_of(exc)
        return JSONResponse(_error_body(err.status, err.code, err.message, err.param), err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        message = "invalid request: " + "; ".join(problems)
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        param = str(first[1]) if len(first) > 1 else None
        return JSONResponse(_error_body(400, "invalid_request", message, param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "no such route; see GET /docs for the routes this server has"
        return JSONResponse(_error_body(exc.status_code, "http_error", message), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse(_error_body(500, "internal_error", message), 500)

    @app.get("/healthz")
    async def healthz() -> Health:
        return await to_thread.run_sync(service.health)

    @app.get("/v1/models", dependencies=auth)
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "cliniq", "about": about}
                for name, about in MODELS.items()
            ],
        }

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(body: ChatRequest) -> Any:
        service.check_model(body.model)
        question, history = chat_question(body.messages)
        service.check_question(question)

        def answer_and_render() -> Any:  # rendering too is CPU work: off the event loop
            answer = service.ask(question, history, model=body.model)
            if body.stream:
                return list(completion_chunks(answer, body.model))
            return JSONResponse(completion(answer, body.model))

        rendered = await to_thread.run_sync(answer_and_render)
        if body.stream:
            return StreamingResponse(
                iter(rendered),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return rendered

    @app.post("/v1/ask", dependencies=auth)
    async def ask(body: AskRequest) -> Any:
        return await to_thread.run_sync(
            lambda: JSONResponse(
                service.ask(body.question, body.history, model=body.model).model_dump(mode="json")
            )
        )

    @app.post("/v1/search", dependencies=auth)
    async def search(body: SearchRequest) -> SearchResponse:
        found = await to_thread.run_sync(lambda: service.search(body.query, body.k, body.mode))
        return SearchResponse(query=body.query, mode=body.mode, passages=found)

    @app.get("/v1/passages/{passage_id}", dependencies=auth)
    async def passage(passage_id: str) -> PassageView:
        return await to_thread.run_sync(service.passage, passage_id)

    return app


def app_from_env() -> FastAPI:
    """The app a uvicorn worker process builds for itself (``--workers`` > 1)."""
    return create_app(Cliniq(Settings()))


def run_server(settings: Settings, *, announce: Any = print) -> None:
    """Load the model and the index, then serve until interrupted. More than one worker: each
    process builds its own service from the environment (the CLI's options are passed there)."""
    import os

    import uvicorn

    serve = settings.serve
    if serve.host not in {"127.0.0.1", "localhost", "::1"} and not serve.api_key:
        announce(
            f"warning: listening on {serve.host} without a token; set CLINIQ_SERVE__API_KEY "
            "so only clients that know it are answered"
        )
    if serve.workers > 1:
        os.environ["CLINIQ_STORE__INDEX_DIR"] = str(settings.store.index_dir)
        announce(f"cliniq serving on http://{serve.host}:{serve.port} ({serve.workers} workers)")
        uvicorn.run(
            "assistant.server:app_from_env",
            factory=True,
            host=serve.host,
            port=serve.port,
            workers=serve.workers,
            log_level="warning",
        )
        return
    app = create_app(Cliniq(settings))
    announce(f"cliniq serving on http://{serve.host}:{serve.port}")
    uvicorn.run(app, host=serve.host, port=serve.port, log_level="warning")
