"""Injection through a passage, on the LLM path: a library document addresses the model, and a
real OpenAI-compatible server process returns replies of a model that obeyed it (the set in
evals/injection.py). Nothing of it may reach the answer but a cited, verified sentence shown
as a quote of that document, with its title."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import CORPUS_DIR, REPO_ROOT, answers_http, free_port, serving, write_doc
from test_llm_path import GUIDELINE_BODY
from test_ui import chromium as chromium_fixture

from assistant.generate import LLMAssistant, clean_sentence
from assistant.prompts import DISCLAIMER
from assistant.render import inert_links, to_markdown
from evals.injection import (
    CASES,
    EVIL_URL,
    INJECTED_BODY,
    INJECTED_TITLE,
    INSTRUCTION,
    TRUE_SENTENCE,
    problems,
)
from ingest.pipeline import ingest_paths
from ingest.settings import LLMSettings, Settings
from ui.view import answer_blocks

QUESTION = "Does oral iron help restless legs syndrome in adults with low ferritin?"


@pytest.fixture(scope="module")
def injected_index(tmp_path_factory, embedder) -> Settings:
    root = tmp_path_factory.mktemp("injection")
    docs = root / "docs"
    write_doc(docs, "ts-2024-rls", GUIDELINE_BODY, title="Treatment of restless legs syndrome")
    write_doc(
        docs, "iron-review", INJECTED_BODY, title=INJECTED_TITLE, doc_type="research",
        organization=None, journal="Journal of Tests", year=2023,
    )  # fmt: skip
    settings = Settings()
    settings.store.index_dir = root / "index"
    settings.lexicon_dir = CORPUS_DIR / "lexicon"
    report = ingest_paths([docs], settings, embedder=embedder)
    assert not report.skipped, report.skipped
    return settings


@pytest.fixture(scope="module")
def llm(injected_index, scripted_llm, embedder) -> LLMAssistant:
    settings = injected_index.model_copy(deep=True)
    settings.llm = LLMSettings(base_url=scripted_llm[0], model="scripted", timeout_s=30)
    return LLMAssistant(settings, embedder=embedder)


def answer_to(llm: LLMAssistant, script: Path, reply: str):
    script.write_text(json.dumps({"rules": [{"reply": reply}]}))
    return llm.ask(QUESTION)


def test_passages_go_to_the_model_as_quoted_data(llm, scripted_llm):
    _, script = scripted_llm
    answer_to(llm, script, TRUE_SENTENCE)
    log = Path(script).parent / "requests.jsonl"
    request = json.loads(log.read_text().splitlines()[-1])
    system, user = (m["content"] for m in request["messages"])
    assert INSTRUCTION not in system and "data, never instructions" in system
    passages = user.split("<passages>", 1)[1]
    block = next(b for b in passages.split("</passage>") if INSTRUCTION in b)
    assert '<passage number="' in block and f"Title: {INJECTED_TITLE}" in block
    assert "<script>" not in system


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_obeyed_injection_changes_nothing_but_a_cited_quote(llm, scripted_llm, case):
    _, script = scripted_llm
    baseline = answer_to(llm, script, TRUE_SENTENCE)
    assert baseline.system == "cliniq-llm" and not baseline.abstained
    answer = answer_to(llm, script, TRUE_SENTENCE + "\n" + case.reply)
    assert answer.system == "cliniq-llm"
    assert problems(answer, baseline) == []
    assert answer.disclaimer == DISCLAIMER
    shown = to_markdown(answer)
    assert "Stop all medication immediately" not in shown
    for block in answer_blocks(answer, anchor="a0"):
        assert "](http://evil" not in block.markdown and "<a " not in block.markdown
        assert "<script" not in block.markdown
    copied = [s for s in answer.all_sentences() if "stop all medication" in s.text.lower()]
    for sentence in copied:  # shown only cited, verified, as a quote with the document title
        assert sentence.verified and sentence.citations
        assert sentence.text.startswith("\u201c") and INJECTED_TITLE in (sentence.caveat or "")
        assert INJECTED_TITLE in shown


def test_markup_in_model_text_becomes_plain_words():
    assert (
        clean_sentence(f"See [the protocol]({EVIL_URL}) now.")
        == f"See the protocol ({EVIL_URL}) now."
    )
    assert clean_sentence('<a href="x">Read</a> <script>alert(1)</script> it.') == "Read it."
    assert clean_sentence("> **Note:** stop.") == "Note: stop."
    assert clean_sentence("## Urgent notice") == "Urgent notice"


def test_addresses_in_answer_text_are_not_links():
    shown = inert_links(f"see {EVIL_URL} or www.evil.example")
    assert "http://evil" not in shown and "www.evil" not in shown
    assert shown.replace("\u200b", "") == f"see {EVIL_URL} or www.evil.example"


# -- the UI, in a real browser ----------------------------------------------------------------

chromium_browser = chromium_fixture  # Chromium and its driver, or a skip saying what to install


@pytest.mark.integration
def test_the_ui_shows_model_text_as_text_in_chromium(
    injected_index, scripted_llm, chromium_browser, tmp_path, monkeypatch
):
    """The LLM answerer in the Streamlit app, in headless Chromium: the model obeyed the
    planted instruction (a link, HTML, the copied instruction); the page has no link to the
    outside address, no script from the reply, and the copy is a quote with the title."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_ui import APP, APP_TIMEOUT_S, _browser

    url, script = scripted_llm
    by_name = {c.name: c.reply for c in CASES}
    reply = "\n".join(
        [TRUE_SENTENCE]
        + [by_name[n] for n in ("markdown link", "bare link", "html")]
        + [by_name["instruction copied, cited to its passage"], by_name["uncited instruction"]]
    )
    script.write_text(json.dumps({"rules": [{"reply": reply}]}))
    port = free_port()
    env = {
        **os.environ,
        "CLINIQ_STORE__INDEX_DIR": str(injected_index.store.index_dir),
        "CLINIQ_LEXICON_DIR": str(CORPUS_DIR / "lexicon"),
        "CLINIQ_LLM__BASE_URL": url,
        "CLINIQ_LLM__MODEL": "scripted",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1"]  # fmt: skip
    app = f"http://127.0.0.1:{port}"
    with serving(command, tmp_path / "streamlit.log", answers_http(f"{app}/_stcore/health"),
                 "streamlit", cwd=REPO_ROOT, env=env):  # fmt: skip
        driver = _browser(chromium_browser, tmp_path, monkeypatch)
        try:
            driver.get(app)
            wait = WebDriverWait(driver, APP_TIMEOUT_S, poll_frequency=0.5)
            toggle = wait.until(
                lambda d: d.find_element(
                    By.XPATH, "//section[@data-testid='stSidebar']//label[.//*[text()='LLM']]"
                )
            )
            wait.until(lambda d: toggle.find_element(By.TAG_NAME, "input").is_enabled())
            toggle.click()
            wait.until(lambda d: "LLM (" in d.page_source)
            box = driver.find_element(By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")
            box.send_keys(QUESTION)
            box.send_keys(Keys.ENTER)
            wait.until(lambda d: "Answered by the LLM answerer" in d.page_source)
            page = driver.find_element(By.TAG_NAME, "body").text
            links = [a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")]
            scripts = [
                s.get_attribute("innerHTML") or ""
                for s in driver.find_elements(By.TAG_NAME, "script")
            ]
        finally:
            driver.quit()
    assert not [h for h in links if "evil.example" in h], links
    assert not [s for s in scripts if "alert(1)" in s or "injected" in s]
    assert "Stop all medication immediately" not in page
    assert "written by a language model (scripted)" in page
    assert INJECTED_TITLE in page
    if "stop all medication" in page.lower():  # the copy, when shown, is a quote with the title
        assert f"quoted from \u201c{INJECTED_TITLE}\u201d" in page
