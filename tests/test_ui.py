"""The Streamlit UI: pure rendering of hand-built answers, the app under AppTest on a real index of
the bundled corpus, and one run in a real headless Chromium."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CORPUS_DIR, REPO_ROOT, answers_http, free_port, serving

from assistant.render import reference_line
from assistant.types import (
    Answer,
    Citation,
    NormalizedQuery,
    Reference,
    Section,
    Sentence,
    SentenceKind,
)
from ingest.types import Chunk, DocStatus, DocType, DocumentRef, Passage
from ui.backend import Conversation, Exchange, app_settings, probe_llm
from ui.view import (
    answer_blocks,
    escape,
    follow_up_reading,
    passage_rows,
    passage_texts,
    reference_markdown,
    references_markdown,
    searched_for,
    sentence_markdown,
    timings_line,
)

APP = REPO_ROOT / "ui" / "app.py"
SEED = "What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?"
RESLEG_NOTE = (
    "'RESLEG' is not a recognized medical term; interpreted as restless legs syndrome (RLS)."
)
APP_TIMEOUT_S = 180  # the first run loads the model; a busy 2-core machine is slow


# -- a hand-built answer ----------------------------------------------------------------------

GUIDELINE = DocumentRef(
    id="aasm-2025",
    title="Treatment of RLS: an AASM guideline",
    organization="AASM",
    year=2025,
    doc_type=DocType.guideline,
    doi="10.5664/jcsm.11390",
    pmid="39324694",
)
REVIEW = DocumentRef(
    id="review-2021",
    title="RLS review",
    journal="Neurotherapeutics",
    year=2021,
    url="https://example.org/review_(2021)",
)
OLD = DocumentRef(
    id="aasm-2012",
    title="RLS practice parameters",
    organization="AASM",
    year=2012,
    status=DocStatus.superseded,
    superseded_by="aasm-2025",
    doi="10.5665/sleep.1988",
)


def chunk(doc: DocumentRef, text: str, *section: str) -> Chunk:
    return Chunk(document=doc, position=0, text=text, section_path=list(section))


REC = chunk(GUIDELINE, "The AASM recommends gabapentin.", "Recommendations", "Adults")
RES = chunk(REVIEW, "Augmentation is the main complication.", "Treatment")
OLD_CHUNK = chunk(OLD, "Ropinirole was graded Standard.", "Recommendations")


def cite(number: int, c: Chunk) -> Citation:
    return Citation(number=number, chunk_id=c.id, document_id=c.document.id)


def sentence(text: str, kind: SentenceKind, *cits: Citation, caveat: str | None = None):
    return Sentence(text=text, kind=kind, citations=list(cits), caveat=caveat)


def built_answer() -> Answer:
    rec = SentenceKind.recommendation
    guidelines = Section(
        key="guidelines",
        title="From the Guidelines",
        subsections=[
            Section(
                key="recommended",
                title="Recommended (strong, for)",
                sentences=[sentence("The AASM recommends gabapentin (strong).", rec, cite(1, REC))],
            ),
            Section(
                key="suggested-against",
                title="Suggested against (conditional, against)",
                sentences=[
                    sentence(
                        "The AASM suggests against ropinirole (conditional).",
                        rec,
                        cite(1, REC),
                        caveat="grading not confirmed against the full guideline text",
                    )
                ],
            ),
            Section(
                key="population-esrd",
                title="Adults with RLS and ESRD on dialysis",
                sentences=[sentence("The AASM suggests IV iron sucrose.", rec, cite(1, REC))],
            ),
        ],
    )
    question = "What is the management approach for RESLEG syndrome?"
    read_as = "What is the management approach for restless legs syndrome?"
    return Answer(
        question=question,
        standalone_query=read_as,
        normalization=NormalizedQuery(original=question, rewritten=read_as),
        sections=[
            Section(
                key="notes",
                title="How the question was read",
                sentences=[Sentence(text=RESLEG_NOTE, kind=SentenceKind.note)],
            ),
            Section(
                key="summary",
                title="Summary",
                sentences=[
                    sentence("Gabapentin is recommended.", SentenceKind.summary, cite(1, REC))
                ],
            ),
            guidelines,
            Section(
                key="research",
                title="From the Research",
                sentences=[
                    sentence("Augmentation costs $5 *a* day.", SentenceKind.research, cite(2, RES))
                ],
            ),
            Section(
                key="conflicts",
                title="Conflicting evidence",
                sentences=[
                    sentence(
                        "The AASM 2012 guideline graded ropinirole as Standard.",
                        SentenceKind.conflict,
                        cite(3, OLD_CHUNK),
                        cite(1, REC),
                    )
                ],
            ),
        ],
        references=[
            Reference(number=1, document=GUIDELINE, chunk_ids=[REC.id]),
            Reference(number=2, document=REVIEW, chunk_ids=[RES.id]),
            Reference(number=3, document=OLD, chunk_ids=[OLD_CHUNK.id]),
        ],
        passages=[
            Passage(
                chunk=REC,
                rank=1,
                score=0.0328,
                dense_score=0.71,
                lexical_score=7.5,
                dense_rank=1,
                lexical_rank=2,
            ),
            Passage(chunk=RES, rank=2, score=0.0161, lexical_score=3.25, lexical_rank=1),
            Passage(chunk=OLD_CHUNK, rank=3, score=0.0),
        ],
        disclaimer="Not medical advice.",
        timings_ms={"normalize_ms": 10.0, "retrieve_ms": 43.2, "total_ms": 2561.0},
    )


def unlinked(markdown: str) -> str:
    """Markdown links back to their labels and escapes back to characters."""
    text = re.sub(r"(?<!\\)\[((?:\\.|[^\]])*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"\\(.)", r"\1", text)


# -- pure rendering ---------------------------------------------------------------------------


def test_blocks_follow_the_product_layout():
    kinds = [b.kind for b in answer_blocks(built_answer())]
    assert kinds == [
        "notes",
        "summary",
        "guidelines",
        "research",
        "conflicts",
        "references",
        "disclaimer",
    ]


def test_notes_come_first_with_the_resleg_reading():
    first = answer_blocks(built_answer())[0]
    assert first.kind == "notes" and first.markdown == RESLEG_NOTE


def test_guideline_headings_nest_and_show_direction():
    guidelines = answer_blocks(built_answer())[2].markdown
    assert guidelines.startswith("#### From the Guidelines")
    assert "##### :green[Recommended (strong, for)]" in guidelines
    assert "##### :orange[Suggested against (conditional, against)]" in guidelines
    assert "##### Adults with RLS and ESRD on dialysis" in guidelines
    assert guidelines.index("Recommended") < guidelines.index("Suggested against")


def test_sentences_carry_citation_marks_and_italic_caveats():
    guidelines = answer_blocks(built_answer())[2].markdown
    assert "- The AASM recommends gabapentin (strong). [1]" in guidelines
    assert (
        "ropinirole (conditional). [1] :gray[_(grading not confirmed against the full "
        "guideline text)_]" in guidelines
    )
    conflict = sentence_markdown(built_answer().sections[4].sentences[0])
    assert conflict.endswith("as Standard. [1, 3]")


def test_a_list_is_shown_under_its_lead_in_with_one_citation():
    sentence = Sentence(
        text="People at higher risk are those with",
        items=["a family history", "obesity"],
        citations=[Citation(number=2, chunk_id="c", document_id="d")],
        kind=SentenceKind.research,
    )
    assert sentence_markdown(sentence) == (
        "People at higher risk are those with [2]\n    - a family history\n    - obesity"
    )


def test_summary_is_one_paragraph_with_its_marks():
    assert answer_blocks(built_answer())[1].markdown == (
        "**Summary.** Gabapentin is recommended. [1]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Augmentation costs $5 *a* day.",
        "ferritin <75 ng/mL and TSAT ~20% | [see](javascript:alert(1)) `x` _y_ \\z",
        "# not a heading",
        "- not a bullet",
        "> not a quote",
        "1. not a list",
    ],
)
def test_escape_keeps_source_text_literal(text):
    escaped = escape(text)
    assert unlinked(escaped) == text
    assert not re.search(r"(?<!\\)[$*_`\[\]~|]", escaped)
    assert not re.match(r"[#>+-]|\d+[.)]\s", escaped)  # nothing a line could start


def test_references_are_numbered_with_doi_url_and_pubmed_links():
    refs = answer_blocks(built_answer())[5].markdown
    lines = refs.splitlines()
    assert lines[0] == "#### References"
    assert lines[2].startswith("1. Treatment of RLS")
    assert "[doi:10.5664/jcsm.11390](https://doi.org/10.5664/jcsm.11390)" in refs
    assert "[PMID 39324694](https://pubmed.ncbi.nlm.nih.gov/39324694/)" in refs
    assert "(https://example.org/review_%282021%29)" in refs
    assert lines[4].startswith("3. RLS practice parameters")
    assert "(superseded by a newer guideline)" in lines[4]


@pytest.mark.parametrize("doc", [GUIDELINE, REVIEW, OLD])
def test_reference_text_is_the_reference_line(doc):
    ref = Reference(number=1, document=doc)
    assert unlinked(reference_markdown(ref)) == reference_line(ref)


def test_non_consecutive_reference_numbers_are_kept():
    refs = [Reference(number=2, document=REVIEW), Reference(number=5, document=OLD)]
    markdown = references_markdown(refs)
    assert "2\\. RLS review" in markdown and "5\\. RLS practice" in markdown


def test_abstention_shows_the_message_and_the_nearest_topics():
    topics = ["Iron therapy (AASM, 2025)", "Augmentation (IRLSSG, 2016)"]
    answer = Answer(
        question="What is the treatment for gout?",
        standalone_query="What is the treatment for gout?",
        abstained=True,
        nearest_topics=topics,
        sections=[
            Section(
                key="abstention",
                title="No answer",
                sentences=[
                    Sentence(
                        text="The indexed sources do not address this question, so no answer "
                        "is given.",
                        kind=SentenceKind.abstention,
                    ),
                    Sentence(
                        text="The nearest topics the index does cover are: " + "; ".join(topics),
                        kind=SentenceKind.abstention,
                    ),
                ],
            )
        ],
        disclaimer="Not medical advice.",
    )
    blocks = answer_blocks(answer)
    assert [b.kind for b in blocks] == ["abstention", "disclaimer"]
    text = blocks[0].markdown
    assert text.startswith("The indexed sources do not address this question")
    assert "The nearest topics the index does cover are:\n\n- Iron therapy (AASM, 2025)" in text
    assert "- Augmentation (IRLSSG, 2016)" in text
    assert not any("References" in b.markdown for b in blocks)


def test_passage_rows_list_scores_ranks_and_what_is_cited():
    rows = passage_rows(built_answer())
    assert rows[0] == {
        "#": 1,
        "fused": 0.0328,
        "dense": 0.71,
        "dense rank": 1,
        "BM25": 7.5,
        "BM25 rank": 2,
        "document": "aasm-2025",
        "type": "guideline, current",
        "section": "Recommendations > Adults",
        "page": None,
        "cited as": "[1]",
    }
    assert rows[1]["dense"] is None and rows[1]["BM25 rank"] == 1
    assert rows[2]["cited as"] == "[3]" and rows[2]["type"] == "research, superseded"
    assert passage_rows(Answer(question="q", standalone_query="q")) == []


def test_passage_texts_name_document_and_section():
    texts = passage_texts(built_answer())
    assert "**1.** Treatment of RLS: an AASM guideline › Recommendations > Adults" in texts
    assert "> The AASM recommends gabapentin." in texts


def test_searched_for_only_when_the_query_was_rewritten():
    answer = built_answer()
    assert searched_for(answer) == (
        "Searched the index for: What is the management approach for restless legs syndrome?"
    )
    same = Answer(question="What is RLS?", standalone_query="what is rls")
    assert searched_for(same) is None


def test_a_follow_up_says_how_it_was_read():
    answer = Answer(
        question="What about patients on dialysis?",
        standalone_query="management of restless legs syndrome: patients on dialysis",
    )
    assert follow_up_reading(answer) == (
        "Read with the earlier questions as: _management of restless legs syndrome: patients on "
        "dialysis_. Start a new conversation to change the subject."
    )
    assert follow_up_reading(built_answer()) is None  # only normalized: not a follow-up
    fresh = built_answer().model_copy(update={"normalization": None})
    assert follow_up_reading(fresh) is not None


def test_timings_line_is_small_print_of_each_step():
    assert timings_line(built_answer()) == (
        "Answered by the offline answerer in 2.56 s — normalize 10 ms · retrieve 43 ms"
    )


def test_conversation_reset_forgets_turns_and_screen():
    chat = Conversation()
    chat.exchanges.append(Exchange("q", error="e"))
    chat.session.record("q", "q", None)
    chat.reset()
    assert chat.exchanges == [] and chat.session.turns == []


def test_relative_paths_resolve_under_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLINIQ_STORE__INDEX_DIR")
    settings = app_settings()
    assert settings.lexicon_dir == REPO_ROOT / "corpus" / "lexicon"
    assert settings.store.index_dir == Path(".cliniq/index") or (
        settings.store.index_dir == REPO_ROOT / ".cliniq" / "index"
    )


# -- the LLM endpoint probe -------------------------------------------------------------------


class _Models(http.server.BaseHTTPRequestHandler):
    """A scripted OpenAI-compatible server: lists one model, always gives the same reply."""

    reply = "Gabapentin is recommended for adults with restless legs syndrome [1]."

    def do_GET(self) -> None:
        ok = self.path == "/v1/models"
        self._send(200 if ok else 404, {"object": "list", "data": [{"id": "local"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = {"role": "assistant", "content": self.reply}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "local"}
        self._send(200, {**body, "choices": [choice]})

    def _send(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def models_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_offers_the_llm_when_the_endpoint_lists_models(models_server):
    pytest.importorskip("openai")
    assert probe_llm(models_server + "/v1").available
    wrong = probe_llm(models_server + "/api")
    assert not wrong.available and "HTTP 404" in wrong.reason


def test_probe_says_why_the_llm_is_off():
    pytest.importorskip("openai")
    down = probe_llm(f"http://127.0.0.1:{free_port()}/v1", timeout_s=2)
    assert not down.available and "CLINIQ_LLM__BASE_URL" in down.reason
    assert "not an http(s) URL" in probe_llm("ftp://x").reason


# -- the app on a real index (AppTest) --------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory, embedder) -> Path:
    from ingest.pipeline import ingest_paths
    from ingest.settings import Settings

    settings = Settings()
    settings.store.index_dir = tmp_path_factory.mktemp("ui-index")
    settings.lexicon_dir = CORPUS_DIR / "lexicon"
    report = ingest_paths([CORPUS_DIR], settings, embedder=embedder)
    assert not report.skipped, report.skipped
    return settings.store.index_dir


@pytest.fixture
def app_env(corpus_index, monkeypatch) -> Path:
    """The app reads only the environment; the LLM endpoint is a closed port."""
    monkeypatch.setenv("CLINIQ_STORE__INDEX_DIR", str(corpus_index))
    monkeypatch.setenv("CLINIQ_LEXICON_DIR", str(CORPUS_DIR / "lexicon"))
    monkeypatch.setenv("CLINIQ_LLM__BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    return corpus_index


def start_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ask(at, question: str):
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


TEXT_KINDS = {"markdown", "info", "warning", "error", "caption", "title", "header", "subheader"}


def elements(node):
    """The elements under a node, in page order (containers walked depth first)."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for child in children.values():
        yield from elements(child)


def text_of(node) -> str:
    """Everything a reader sees in one part of the page, in order."""
    return "\n".join(str(e.value) for e in elements(node) if e.type in TEXT_KINDS)


def replies(at) -> list:
    return [m for m in at.chat_message if m.name == "assistant"]


def test_seed_question_is_answered_in_the_product_layout(app_env):
    at = ask(start_app(), SEED)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    reply = replies(at)[0]
    assert RESLEG_NOTE in reply.info[0].value
    text = text_of(reply)
    for heading in ("Conflicting evidence", "From the Guidelines", "References"):
        assert f"#### {heading}" in text
    # The first screen (summary, conflict flag), then the rest in a collapsed expander.
    more = reply.expander[0]
    assert more.label == "More from the sources"
    assert not more.proto.expanded
    assert "#### From the Guidelines" in " ".join(m.value for m in more.markdown)
    assert "**Summary.**" not in " ".join(m.value for m in more.markdown)
    assert (
        text.index(RESLEG_NOTE)
        < text.index("**Summary.**")
        < text.index("Conflicting evidence")
        < text.index("From the Guidelines")
    )
    assert text.index("Recommended (strong, for)") < text.index("Suggested (conditional, for)")
    # Citation numbers link to their passage; the viewer holds it, cited sentence marked.
    link = re.search(r"\. \\\[\[1\]\(#(a0-p[0-9a-f]{12})\)", text)
    assert link and f'id="{link.group(1)}"' in text and "<mark>" in text
    assert "_(grading" in text  # grade caveats in italics
    assert "](https://doi.org/" in text
    assert "not medical advice" in reply.caption[0].value
    assert reply.caption[-1].value.startswith("Answered by the offline answerer in ")
    passages = reply.expander[1]
    assert passages.label == "Passages and scores"
    table = passages.dataframe[0].value
    assert list(table.columns[:6]) == ["#", "fused", "dense", "dense rank", "BM25", "BM25 rank"]
    assert "aasm-2025-rls-plmd" in set(table["document"])
    assert (table["cited as"] != "").any()


def test_follow_up_then_new_conversation(app_env):
    at = start_app()
    example = next(b for b in at.button if b.label == SEED)
    example.click().run()  # the seed, from the example under the welcome text
    assert not at.exception and len(replies(at)) == 1
    ask(at, "What about patients on dialysis?")
    follow_up = text_of(replies(at)[1])
    assert "iron sucrose" in follow_up and "vitamin C" in follow_up
    reading = replies(at)[1].caption[0].value
    assert "Read with the earlier questions as: _management of restless legs syndrome" in reading
    assert len(at.session_state.conversation.session.turns) == 2

    at.button(key="new_conversation").click().run()
    assert not at.exception
    assert len(at.chat_message) == 0
    assert at.session_state.conversation.session.turns == []
    assert any(b.label == SEED for b in at.button)  # the welcome is back

    # A fresh topic: not read as a follow-up of the restless legs conversation.
    ask(at, "What is the treatment for gout?")
    assert "do not address" in text_of(replies(at)[0])


def test_gout_abstains_with_the_nearest_topics(app_env):
    at = ask(start_app(), "What is the treatment for gout?")
    reply = replies(at)[0]
    warning = reply.warning[0].value
    assert warning.startswith("The indexed sources do not address this question")
    assert "nearest topics" in warning and "\n- " in warning
    assert "References" not in text_of(reply)


def test_a_question_of_symbols_shows_its_message_in_the_chat(app_env):
    at = ask(start_app(), "???")
    reply = replies(at)[0]
    assert reply.error[0].value.startswith("The question is empty; ask a clinical question")


def test_sidebar_shows_the_index_and_why_the_llm_is_off(app_env):
    at = start_app()
    side = text_of(at.sidebar)
    assert "**Documents:** 12" in side and "**Chunks:**" in side
    assert "all-MiniLM-L6-v2" in side
    assert "Offline: extractive" in side
    assert "LLM unavailable: no OpenAI-compatible server answers" in side
    toggle = at.sidebar.toggle(key="use_llm")
    assert toggle.label == "LLM" and toggle.disabled


def test_the_llm_answers_when_its_endpoint_is_reachable(app_env, models_server, monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.setenv("CLINIQ_LLM__BASE_URL", models_server + "/v1")
    at = start_app()
    toggle = at.sidebar.toggle(key="use_llm")
    assert not toggle.disabled
    toggle.set_value(True).run()
    assert "LLM (`local` at " in text_of(at.sidebar)
    reply = replies(ask(at, "What is the first-line treatment of restless legs syndrome?"))[0]
    if "written by a language model (local)" in text_of(reply):
        assert reply.caption[-1].value.startswith("Answered by the LLM answerer")
    else:  # its one sentence is not what passage [1] says: the offline answer, one notice
        assert text_of(reply).count("was not used for this answer") == 1
        assert reply.caption[-1].value.startswith("Answered by the offline answerer")


def test_an_empty_index_directory_says_how_to_build_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty-index"
    empty.mkdir()
    monkeypatch.setenv("CLINIQ_STORE__INDEX_DIR", str(empty))
    at = start_app()
    assert at.error, text_of(at.main)
    assert "cliniq ingest corpus/" in at.error[0].value
    assert f"CLINIQ_STORE__INDEX_DIR={empty} .venv/bin/cliniq ingest corpus/" in text_of(at.main)
    assert len(at.chat_input) == 0


# -- a real browser ----------------------------------------------------------------------------


@pytest.fixture
def chromium() -> tuple[str, str]:
    """Chromium and its driver from Debian, or skip (before any server is started)."""
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chrome and driver):
        found = (("chromium", chrome), ("chromedriver", driver))
        missing = " and ".join(name for name, path in found if not path)
        pytest.skip(f"{missing} not installed: apt-get install -y chromium chromium-driver")
    return chrome, driver


def _streamlit(index: Path, tmp_path: Path):
    """`streamlit run ui/app.py` on a free loopback port, as a user would start it."""
    port = free_port()
    env = {
        **os.environ,
        "CLINIQ_STORE__INDEX_DIR": str(index),
        "CLINIQ_LEXICON_DIR": str(CORPUS_DIR / "lexicon"),
        "CLINIQ_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}"
    ready = answers_http(f"{url}/_stcore/health")
    return serving(
        command, tmp_path / "streamlit.log", ready, "streamlit", cwd=REPO_ROOT, env=env
    ), url


@pytest.fixture
def streamlit_server(corpus_index, tmp_path):
    server, url = _streamlit(corpus_index, tmp_path)
    with server:
        yield url


SHARED_GUIDELINES = REPO_ROOT.parent / "shared" / "guidelines"


@pytest.fixture
def guideline_server(embedder, tmp_path):
    """The UI on an index of one real guideline PDF (the BSG coeliac guideline, 22 pages)."""
    from ingest.pipeline import ingest_paths
    from ingest.settings import Settings

    pdf = SHARED_GUIDELINES / "bsg-coeliac-2014.pdf"
    if not pdf.is_file():
        pytest.skip(f"{pdf} is absent: the shared real guidelines are needed for this test")
    settings = Settings()
    settings.store.index_dir = tmp_path / "guideline-index"
    report = ingest_paths([pdf], settings, embedder=embedder)
    assert not report.skipped, report.skipped
    server, url = _streamlit(settings.store.index_dir, tmp_path)
    with server:
        yield url


def _browser(chromium, tmp_path, monkeypatch):
    chrome, chromedriver = chromium
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install selenium (part of the dev extra)")
    monkeypatch.setenv("SE_AVOID_STATS", "true")  # Selenium Manager is not used; be sure
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def _ask_in_browser(driver, url: str, question: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, APP_TIMEOUT_S, poll_frequency=0.5)
    box = wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")
    )
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: "Answered by the offline answerer" in d.page_source)
    return wait


def _open_first_citation(driver, wait):
    """Click the first [n] of the answer; the passage it opens is returned once visible."""
    from selenium.webdriver.common.by import By

    link = driver.find_element(By.CSS_SELECTOR, "a[href^='#a0-p']")
    target = link.get_attribute("href").split("#", 1)[1]
    box = driver.find_element(By.ID, target)
    assert not box.is_displayed(), "a passage is closed until its number is clicked"
    time.sleep(1)  # let a resized window lay out before scrolling
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    time.sleep(0.5)
    link.click()
    wait.until(lambda d: d.find_element(By.ID, target).is_displayed())
    return driver.find_element(By.ID, target)


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    """A screenshot of the page as it is; also into $SCREENSHOT_DIR when set (the
    screenshots in docs/screenshots/ are made this way)."""
    time.sleep(1)
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if out := os.environ.get("SCREENSHOT_DIR"):
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(out) / name)
    print(f"screenshot: {shot}")
    return shot


def _full_height(driver) -> None:
    """The chat scrolls inside the page: make the window as tall as the conversation."""
    height = driver.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))"
    )
    driver.set_window_size(1280, min(height + 150, 16000))


@pytest.mark.integration
def test_seed_question_in_headless_chromium(chromium, streamlit_server, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    driver = _browser(chromium, tmp_path, monkeypatch)
    try:
        wait = _ask_in_browser(driver, streamlit_server, SEED)
        page = driver.find_element(By.TAG_NAME, "body").text
        assert RESLEG_NOTE in page
        # The first screen, and the rest collapsed under More from the sources.
        assert "Conflicting evidence" in page and "References" in page
        assert "More from the sources" in page
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
        _full_height(driver)
        _screenshot(driver, tmp_path, "ui-seed-answer.png")
        driver.set_window_size(1280, 1000)
        passage = _open_first_citation(driver, wait)
        assert passage.find_elements(By.TAG_NAME, "mark"), "the cited sentence is highlighted"
        _screenshot(driver, tmp_path, "ui-citation-opens-passage.png")
    finally:
        driver.quit()


@pytest.mark.integration
@pytest.mark.slow
def test_guideline_pdf_citation_shows_its_page_in_chromium(
    chromium, guideline_server, tmp_path, monkeypatch
):
    from selenium.webdriver.common.by import By

    driver = _browser(chromium, tmp_path, monkeypatch)
    try:
        wait = _ask_in_browser(
            driver,
            guideline_server,
            "Which serology is used to diagnose coeliac disease in adults?",
        )
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "British Society of Gastroenterology" in page  # references name the organization
        assert re.search(r"\bpp?\. \d+", page), "references show the page"
        passage = _open_first_citation(driver, wait)
        assert re.search(r"\bp\. \d+", passage.text), "the opened passage shows its page"
        assert passage.find_elements(By.TAG_NAME, "mark"), "the cited sentence is highlighted"
        _screenshot(driver, tmp_path, "ui-guideline-pdf-passage-page.png")
    finally:
        driver.quit()
