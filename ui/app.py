"""cliniq in the browser: chat with follow-ups, answers in the product layout, the evidence one
click away.

Run: ``.venv/bin/streamlit run ui/app.py`` (see docs/ui.md). Settings come from the CLINIQ_*
environment, once per process; the model and index load once per process and are shared by
every browser session; each session keeps its own conversation.
"""

from __future__ import annotations

import streamlit as st

import ingest  # noqa: F401  (offline hub and pinned threads, before torch loads)
from assistant.render import MORE_TITLE
from assistant.types import Answer
from ingest.errors import CliniqError, IndexMissingError
from ingest.settings import Settings
from ui.backend import (
    Conversation,
    Engine,
    Exchange,
    LLMStatus,
    app_settings,
    environment_key,
    probe_llm,
)
from ui.view import (
    PASSAGE_CSS,
    Block,
    answer_blocks,
    cited_passages_html,
    escape,
    follow_up_reading,
    passage_rows,
    passage_texts,
    searched_for,
    timings_line,
)

EXAMPLES = (
    "What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?",
    "How should iron deficiency be treated in restless legs syndrome?",
    "What causes augmentation and how is it managed?",
)
HOW_IT_WORKS = """
cliniq answers only from the guidelines and research it has indexed.

1. Your words are matched to a medical lexicon; shorthand it does not recognise is said so.
2. A follow-up ("What about patients on dialysis?") is read with the earlier question.
3. Passages are found by meaning and by keywords (BM25), and the two rankings are fused.
4. Guideline recommendations come first, strongest first, with their strength and certainty.
5. Every sentence cites its source, and is shown only if that passage supports it.

When the sources do not cover a question, cliniq says so instead of answering.

No usage statistics are sent. The only server contacted is the LLM endpoint
(`CLINIQ_LLM__BASE_URL`, this machine by default): checked to offer the LLM switch, and sent
passages only when the switch is on.
"""

PASSAGE_COLUMNS = {
    "#": st.column_config.NumberColumn(width="small", help="Rank after fusion"),
    "fused": st.column_config.NumberColumn(format="%.4f", help="Reciprocal rank fusion score"),
    "dense": st.column_config.NumberColumn(format="%.3f", help="Cosine similarity"),
    "dense rank": st.column_config.NumberColumn(width="small"),
    "BM25": st.column_config.NumberColumn(format="%.2f", help="BM25 keyword score"),
    "BM25 rank": st.column_config.NumberColumn(width="small"),
    "page": st.column_config.NumberColumn(width="small", help="Page of the source"),
    "cited as": st.column_config.TextColumn(help="Reference numbers the answer cites it by"),
}


@st.cache_resource(show_spinner=False)
def load_settings(environment: tuple[tuple[str, str], ...]) -> Settings:
    """Built once per process and environment (the argument is only the cache key)."""
    return app_settings()


@st.cache_resource(show_spinner="Loading the model and the index…")
def load_engine(settings_json: str, _settings: Settings) -> Engine:
    """One per process: loading the model takes seconds. A failure is not cached, so the page
    works as soon as the index has been built."""
    return Engine(_settings)


@st.cache_data(ttl=30, show_spinner=False)
def llm_status(base_url: str, api_key: str) -> LLMStatus:
    """Checked at most every 30 s: a server started later shows up without a restart."""
    return probe_llm(base_url, api_key)


def conversation() -> Conversation:
    if "conversation" not in st.session_state:
        st.session_state.conversation = Conversation()
    return st.session_state.conversation


def new_conversation() -> None:
    conversation().reset()


def ask_example(question: str) -> None:
    st.session_state.pending_question = question


def show_missing_index(exc: CliniqError, settings: Settings) -> None:
    st.error(str(exc))
    if isinstance(exc, IndexMissingError):
        st.markdown(
            "Build the index from the bundled corpus, then reload this page:\n\n"
            f"```bash\nCLINIQ_STORE__INDEX_DIR={settings.store.index_dir} "
            ".venv/bin/cliniq ingest corpus/\n```"
        )


def sidebar(engine: Engine | None, settings: Settings) -> bool:
    """Index statistics, the answerer in use, how it works. Returns whether the LLM answers."""
    use_llm = False
    with st.sidebar:
        st.header("cliniq")
        st.button(
            "New conversation",
            key="new_conversation",
            on_click=new_conversation,
            icon=":material/add_comment:",
            width="stretch",
        )
        if engine is not None:
            stats = engine.stats
            st.subheader("Index")
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_doc_type.items()))
            st.markdown(
                f"- **Documents:** {stats.documents}" + (f" ({kinds})" if kinds else "") + "\n"
                f"- **Chunks:** {stats.chunks}\n"
                f"- **Embedding model:** `{stats.embedding_model}`"
            )
            st.caption(f"Index: `{stats.location}`")
            st.subheader("Answerer")
            status = llm_status(settings.llm.base_url, settings.llm.api_key)
            use_llm = st.toggle(
                "LLM",
                key="use_llm",
                disabled=not status.available,
                help=(
                    f"A model at {settings.llm.base_url} writes the answer; only cited sentences "
                    "its passages support are shown."
                    if status.available
                    else f"Unavailable: {status.reason}."
                ),
            )
            use_llm = use_llm and status.available
            if use_llm:
                st.markdown(f"LLM (`{settings.llm.model}` at {settings.llm.base_url})")
            else:
                st.markdown("Offline: extractive, from the indexed passages.")
                if not status.available:
                    st.caption(f"LLM unavailable: {status.reason}.")
        with st.expander("How it works"):
            st.markdown(HOW_IT_WORKS)
    return use_llm


def show_exchange(exchange: Exchange, index: int) -> None:
    with st.chat_message("user"):
        st.markdown(escape(exchange.question))
    with st.chat_message("assistant"):
        show_reply(exchange, index)


def show_reply(exchange: Exchange, index: int) -> None:
    if exchange.error:
        st.error(exchange.error)
    elif exchange.answer is not None:
        show_answer(exchange.answer, f"a{index}")


def show_more(blocks: list[Block]) -> None:
    """Everything past the first screen, collapsed until asked for."""
    with st.expander(MORE_TITLE, expanded=False, icon=":material/library_books:"):
        for block in blocks:
            st.markdown(block.markdown, anchors=False)


def show_answer(answer: Answer, anchor: str) -> None:
    reading = follow_up_reading(answer)
    if reading:
        st.caption(":material/forum: " + reading)
    viewer = cited_passages_html(answer, anchor)
    blocks = answer_blocks(answer, anchor)
    more = [b for b in blocks if b.folded]
    for block in (b for b in blocks if not b.folded):
        if block.kind in ("references", "disclaimer") and more:
            show_more(more)
            more = []
        if block.kind == "references" and viewer:
            # The passage a clicked [n] opens, with the cited sentence highlighted.
            st.markdown(PASSAGE_CSS + viewer, unsafe_allow_html=True)
        if block.kind == "notes":
            st.info(block.markdown, icon=":material/translate:")
        elif block.kind == "abstention":
            st.warning(block.markdown, icon=":material/search_off:")
        elif block.kind == "disclaimer":
            st.caption(block.markdown)
        else:
            st.markdown(block.markdown, anchors=False)
    if more:
        show_more(more)
    with st.expander("Passages and scores", icon=":material/manage_search:"):
        read_as = searched_for(answer)
        if read_as:
            st.markdown(read_as)
        scores, texts = st.tabs(["Scores", "Passage texts"])
        with scores:
            st.dataframe(
                passage_rows(answer),
                hide_index=True,
                column_config=PASSAGE_COLUMNS,
                placeholder="–",
            )
        with texts:
            st.markdown(passage_texts(answer), anchors=False)
    st.caption(timings_line(answer))


def answer_question(engine: Engine, question: str, use_llm: bool) -> Exchange:
    """Our own errors are shown in the chat: a ``QuestionError`` (empty, only symbols), an
    unreachable model. Anything else is a bug and is left to surface."""
    chat = conversation()
    try:
        answer = engine.ask_in(question, chat.session, model="cliniq-llm" if use_llm else "cliniq")
    except CliniqError as exc:  # QuestionError included
        return Exchange(question, error=_sentence(str(exc)))
    return Exchange(question, answer=answer)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def welcome() -> None:
    st.markdown(
        "Ask a clinical question. Answers come only from the indexed guidelines and research, "
        "strongest recommendations first, every sentence cited. Follow-up questions build on "
        "the previous ones."
    )
    for i, example in enumerate(EXAMPLES):
        st.button(
            example,
            key=f"example_{i}",
            on_click=ask_example,
            args=(example,),
            type="tertiary",
            icon=":material/chat:",
        )


def main() -> None:
    st.set_page_config(
        page_title="cliniq",
        page_icon=":material/clinical_notes:",
        layout="centered",
        menu_items={
            "Get help": None,
            "Report a bug": None,
            "About": "cliniq: guideline-grounded answers to clinical questions, with verified "
            "citations.",
        },
    )
    settings = load_settings(environment_key())
    st.title("cliniq", anchor=False)
    st.caption("Guideline-grounded answers to clinical questions, every sentence cited.")
    try:
        engine = load_engine(settings.model_dump_json(), settings)
    except CliniqError as exc:
        sidebar(None, settings)
        show_missing_index(exc, settings)
        st.stop()
    use_llm = sidebar(engine, settings)

    chat = conversation()
    typed = st.chat_input("Ask a clinical question or a follow-up…", key="question")
    question = typed or st.session_state.pop("pending_question", None)
    if not chat.exchanges and not question:
        welcome()
    for index, exchange in enumerate(chat.exchanges):
        show_exchange(exchange, index)
    if question:
        with st.chat_message("user"):
            st.markdown(escape(question))
        with st.chat_message("assistant"):
            with st.spinner("Searching the guidelines and checking every citation…"):
                exchange = answer_question(engine, question, use_llm)
            show_reply(exchange, len(chat.exchanges))
        chat.exchanges.append(exchange)


main()
