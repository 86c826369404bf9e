"""`cliniq serve` as a client meets it: the openai client (streaming too) and httpx against a live
server process over a real index; the LLM answerer through a scripted OpenAI-compatible server
process. Fast tests of the pure parts (chat messages, SSE chunks, error mapping) come first."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS_DIR, REPO_ROOT, answers_http, free_port, serving

from assistant.llm import LLMResponseError, LLMUnavailableError
from assistant.server import (
    EXTRA_FIELD,
    ApiError,
    ChatMessageIn,
    api_error_of,
    chat_question,
    completion_chunks,
)
from assistant.service import (
    InvalidArgumentError,
    PassageNotFoundError,
    QuestionTooLongError,
    UnknownModelError,
)
from assistant.types import Answer, Section, Sentence, SentenceKind
from assistant.understand import QuestionError

UNCITED = "Every patient should also drink more water."
QUESTION = "What is the first-line treatment for restless legs syndrome?"
KEY = "test-key-123"


# -- pure parts -------------------------------------------------------------------------------


def test_chat_question_takes_the_last_user_message_and_earlier_ones_as_context():
    messages = [
        ChatMessageIn(role="system", content="You are helpful."),
        ChatMessageIn(role="user", content="What treats RLS?"),
        ChatMessageIn(role="assistant", content="Iron [1]."),
        ChatMessageIn(role="user", content=[{"type": "text", "text": "And in pregnancy?"}]),
    ]
    assert chat_question(messages) == ("And in pregnancy?", ["What treats RLS?"])
    with pytest.raises(ApiError) as info:
        chat_question([ChatMessageIn(role="system", content="x")])
    assert info.value.status == 400 and "role 'user'" in info.value.message


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (UnknownModelError("m"), 404, "model_not_found"),
        (QuestionTooLongError("long"), 400, "question_too_long"),
        (QuestionError("empty"), 400, "empty_question"),
        (PassageNotFoundError("p"), 404, "passage_not_found"),
        (InvalidArgumentError("k", "k"), 400, "invalid_request"),
        (LLMUnavailableError("down"), 503, "llm_unavailable"),
        (LLMResponseError("bad"), 502, "llm_error"),
    ],
)
def test_errors_map_to_statuses(error, status, code):
    mapped = api_error_of(error)
    assert (mapped.status, mapped.code, mapped.message) == (status, code, str(error))


def test_stream_chunks_rebuild_the_markdown_and_end_with_the_answer():
    from assistant.render import to_markdown

    answer = Answer(
        question="q",
        standalone_query="q",
        sections=[
            Section(
                key="summary",
                title="Summary",
                sentences=[Sentence(text="Iron first.", kind=SentenceKind.summary)],
            )
        ],
    )
    events = list(completion_chunks(answer, "cliniq"))
    assert events[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == to_markdown(answer)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert Answer.model_validate(chunks[-1][EXTRA_FIELD]) == answer
    assert all(EXTRA_FIELD not in c for c in chunks[:-1])


# -- a live server ----------------------------------------------------------------------------


def server_env(index: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIQ_")}
    return {
        **env,
        "CLINIQ_STORE__INDEX_DIR": str(index),
        "CLINIQ_LEXICON_DIR": str(CORPUS_DIR / "lexicon"),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def llm_port() -> int:
    """Where the scripted model server will listen; nothing listens there at first."""
    return free_port()


@pytest.fixture(scope="module")
def live(served_index: Path, llm_port: int, tmp_path_factory) -> Iterator[str]:
    """`cliniq serve` on a free port with a bearer token; yields its base URL."""
    port = free_port()
    env = server_env(
        served_index,
        CLINIQ_SERVE__API_KEY=KEY,
        CLINIQ_LLM__BASE_URL=f"http://127.0.0.1:{llm_port}/v1",
        CLINIQ_LLM__MODEL="scripted",
        CLINIQ_LLM__TIMEOUT_S="60",
    )
    with serving(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
        tmp_path_factory.mktemp("serve") / "serve.log",
        answers_http(f"http://127.0.0.1:{port}/healthz"),
        "cliniq serve",
        timeout_s=180,
        cwd=REPO_ROOT,
        env=env,
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def openai_client(live: str):
    from openai import OpenAI

    return OpenAI(base_url=live + "/v1", api_key=KEY, max_retries=0, timeout=120)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def cited_numbers(answer: dict) -> set[int]:
    numbers: set[int] = set()

    def walk(section: dict) -> None:
        for sentence in section["sentences"]:
            numbers.update(c["number"] for c in sentence["citations"])
        for sub in section["subsections"]:
            walk(sub)

    for section in answer["sections"]:
        walk(section)
    return numbers


@pytest.mark.integration
def test_openai_client_lists_models_and_gets_a_cited_answer(openai_client):
    assert [m.id for m in openai_client.models.list()] == ["cliniq", "cliniq-llm"]
    reply = openai_client.chat.completions.create(
        model="cliniq", messages=[{"role": "user", "content": QUESTION}]
    )
    content = reply.choices[0].message.content
    answer = reply.model_extra[EXTRA_FIELD]
    assert not answer["abstained"] and answer["references"]
    numbers = cited_numbers(answer)
    assert numbers and all(f"[{n}]" in content or f", {n}]" in content for n in numbers)
    assert "## References" in content
    sentences = Answer.model_validate(answer).all_sentences()
    shown = {c.chunk_id for s in sentences for c in s.citations}
    assert shown <= {p["chunk"]["id"] for p in answer["passages"]}


@pytest.mark.integration
def test_openai_client_streams_the_same_answer_and_ends_with_it(openai_client):
    stream = openai_client.chat.completions.create(
        model="cliniq", stream=True, messages=[{"role": "user", "content": QUESTION}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    answer = Answer.model_validate(last.model_extra[EXTRA_FIELD])
    from assistant.render import to_markdown

    assert text == to_markdown(answer)
    assert len(chunks) > 5 and "[1]" in text


@pytest.mark.integration
def test_earlier_turns_are_the_follow_up_context(openai_client):
    reply = openai_client.chat.completions.create(
        model="cliniq",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "(an earlier answer)"},
            {"role": "user", "content": "And during pregnancy?"},
        ],
    )
    answer = reply.model_extra[EXTRA_FIELD]
    assert answer["follow_up"] is True
    assert "restless legs syndrome" in answer["standalone_query"].lower()
    assert any(r["document"]["id"] == "rls-pregnancy-2015" for r in answer["references"])
    alone = openai_client.chat.completions.create(
        model="cliniq", messages=[{"role": "user", "content": "And during pregnancy?"}]
    )
    assert alone.model_extra[EXTRA_FIELD]["follow_up"] is False


@pytest.mark.integration
def test_a_follow_up_on_that_guideline_is_asked_of_the_source_the_last_answer_led_with(
    openai_client,
):
    first = "What does the 2025 AASM guideline recommend for restless legs syndrome?"
    reply = openai_client.chat.completions.create(
        model="cliniq",
        messages=[
            {"role": "user", "content": first},
            {"role": "assistant", "content": "(an earlier answer)"},
            {"role": "user", "content": "What did that guideline say about pregnancy?"},
        ],
    )
    answer = reply.model_extra[EXTRA_FIELD]
    assert not answer["abstained"], answer["abstention_reason"]
    # The answer is that guideline's; the pregnancy guideline would answer the words alone. (An
    # older source may still be cited where it disagrees with the guideline.)
    references = [r["document"]["id"] for r in answer["references"]]
    assert references[0] == "aasm-2025-rls-plmd"
    assert "rls-pregnancy-2015" not in references


@pytest.mark.integration
def test_bad_requests_get_json_errors_that_say_what_to_fix(live, openai_client):
    import openai

    with pytest.raises(openai.NotFoundError, match=r"unknown model 'gpt-4'.*cliniq, cliniq-llm"):
        openai_client.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": QUESTION}]
        )
    with pytest.raises(openai.BadRequestError, match="the question is empty"):
        openai_client.chat.completions.create(
            model="cliniq", messages=[{"role": "user", "content": "   "}]
        )
    with pytest.raises(openai.BadRequestError, match=r"the limit is 1,000.*MAX_QUESTION_CHARS"):
        openai_client.chat.completions.create(
            model="cliniq", messages=[{"role": "user", "content": "why " * 400}]
        )
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        bad = httpx.get(live + "/v1/models", headers=headers)
        assert bad.status_code == 401
        assert "CLINIQ_SERVE__API_KEY" in bad.json()["error"]["message"]
    missing = httpx.post(live + "/v1/chat/completions", json={"model": "cliniq"}, headers=auth())
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "invalid request: messages: Field required"
    assert httpx.get(live + "/healthz").status_code == 200  # health needs no token


@pytest.mark.integration
def test_native_routes(live):
    health = httpx.get(live + "/healthz").json()
    assert health["documents"] == 5 and health["chunks"] > 20
    assert health["models"] == ["cliniq", "cliniq-llm"]

    ask = httpx.post(live + "/v1/ask", json={"question": QUESTION}, headers=auth(), timeout=120)
    assert ask.status_code == 200
    answer = Answer.model_validate(ask.json())
    assert answer.system == "cliniq-offline" and not answer.abstained

    found = httpx.post(
        live + "/v1/search", json={"query": "allopurinol urate target", "k": 3}, headers=auth()
    ).json()
    top = found["passages"][0]
    assert top["document"]["title"].startswith("Urate lowering") and top["page"] == 2
    assert top["score"] > 0 and top["rank"] == 1 and "p. 2" in top["citation"]
    graded = httpx.post(
        live + "/v1/search", json={"query": "gabapentin enacarbil", "k": 5}, headers=auth()
    ).json()["passages"]
    rec = next(p["recommendation"] for p in graded if p["recommendation"])
    assert rec["direction"] in {"for", "against"} and rec["strength"]

    cited = answer.all_sentences()[0].citations[0].chunk_id
    passage = httpx.get(f"{live}/v1/passages/{cited}", headers=auth()).json()
    assert passage["id"] == cited and passage["text"] and passage["document"]["id"]
    gone = httpx.get(live + "/v1/passages/no-such-id", headers=auth())
    assert gone.status_code == 404 and "/v1/search" in gone.json()["error"]["message"]
    bad_k = httpx.post(live + "/v1/search", json={"query": "iron", "k": 0}, headers=auth())
    assert bad_k.status_code == 400 and "k:" in bad_k.json()["error"]["message"]
    over = httpx.post(live + "/v1/search", json={"query": "iron", "k": 60}, headers=auth())
    assert over.status_code == 400 and over.json()["error"]["param"] == "k"
    assert "between 1 and 50, not 60" in over.json()["error"]["message"]
    blank = httpx.post(live + "/v1/search", json={"query": " "}, headers=auth()).json()["error"]
    assert blank["param"] == "query" and "the query is empty" in blank["message"]


@pytest.mark.integration
def test_cliniq_llm_unreachable_then_a_real_scripted_model(live, llm_port, tmp_path):
    body = {"model": "cliniq-llm", "messages": [{"role": "user", "content": QUESTION}]}
    down = httpx.post(live + "/v1/chat/completions", json=body, headers=auth(), timeout=180)
    assert down.status_code == 200, down.text
    offline = Answer.model_validate(down.json()[EXTRA_FIELD])
    assert offline.system == "cliniq-offline" and not offline.abstained
    notices = [s.text for s in offline.all_sentences() if "was not used" in s.text]
    assert len(notices) == 1 and f"127.0.0.1:{llm_port}" in notices[0]

    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {"rules": [{"reply": "{passage_sentence:restless} [{passage:restless}]\n\n" + UNCITED}]}
        )
    )
    script = REPO_ROOT / "scripts" / "scripted_llm_server.py"
    with serving(
        [sys.executable, str(script), "--port", str(llm_port), "--script", str(rules)],
        tmp_path / "llm.log",
        answers_http(f"http://127.0.0.1:{llm_port}/v1/models"),
        "scripted model server",
    ):
        from openai import OpenAI

        client = OpenAI(base_url=live + "/v1", api_key=KEY, max_retries=0, timeout=180)
        reply = client.chat.completions.create(**body)
    answer = Answer.model_validate(reply.model_extra[EXTRA_FIELD])
    content = reply.choices[0].message.content
    assert answer.system == "cliniq-llm" and not answer.abstained
    shown = [s for s in answer.all_sentences() if s.kind is not SentenceKind.note]
    assert shown and all(s.citations and s.verified for s in shown)
    assert "[1]" in content and UNCITED not in content
    assert "1 without a citation" in content


@pytest.mark.integration
def test_serve_without_an_index_says_how_to_build_it(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "serve", "--index", str(tmp_path / "nowhere")],
        cwd=REPO_ROOT,
        env=server_env(tmp_path / "nowhere", CLINIQ_SERVE__PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "cliniq ingest" in done.stderr and "Traceback" not in done.stderr
