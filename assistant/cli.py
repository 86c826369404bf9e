"""The `cliniq` command line. Settings are built here, once, and passed down."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

import ingest  # noqa: F401  (offline hub, pinned threads)
from ingest.errors import CliniqError
from ingest.settings import Settings

app = typer.Typer(
    name="cliniq",
    help="Guideline-grounded clinical answers with verified citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Inspect, check and repair the index.", no_args_is_help=True)
app.add_typer(index_app, name="index")

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index", help="Index directory (default: CLINIQ_STORE__INDEX_DIR or .cliniq/index)."
    ),
]


def handle_errors(func: F) -> F:
    """Our errors become one clear line and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CliniqError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def build_settings(index: Path | None = None) -> Settings:
    settings = Settings()
    if index is not None:
        settings.store.index_dir = index
    return settings


class RichProgress:
    """Progress bars for the ingest phases: files scanned, chunks embedded, documents written."""

    _labels: ClassVar[dict[str, str]] = {
        "files": "files",
        "chunks": "chunks embedded",
        "documents": "documents written",
    }

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start(self, phase: str, total: int) -> None:
        label = self._labels.get(phase, phase)
        self._tasks[phase] = self._progress.add_task(label, total=total)

    def advance(self, phase: str, amount: int = 1) -> None:
        if phase in self._tasks:
            self._progress.advance(self._tasks[phase], amount)


class RateColumn(ProgressColumn):
    """Items per second, for any unit (rich's speed column assumes bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "-/s", style="cyan")


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not (err_console.is_terminal or _force_progress()),
    )


def _force_progress() -> bool:
    import os

    return os.environ.get("CLINIQ_PROGRESS", "") == "1"


@app.command("ingest")
@handle_errors
def ingest_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories (default: corpus/).")
    ] = None,
    index: IndexOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero if any file was skipped.")
    ] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the index and build it from scratch.")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for another ingest's lock.")
    ] = 0.0,
) -> None:
    """Ingest documents into the index, incrementally: unchanged files cost nothing."""
    from ingest.pipeline import ingest_paths

    settings = build_settings(index)
    settings.ingest.lock_timeout_s = wait
    targets = paths or [Path("corpus")]
    with _progress_bar() as bar:
        report = ingest_paths(targets, settings, progress=RichProgress(bar), rebuild=rebuild)
    _print_ingest_report(report, settings)
    if report.documents_ingested == 0:
        err_console.print("[bold red]nothing was ingested[/] from " + ", ".join(map(str, targets)))
        raise typer.Exit(code=1)
    if strict and report.skipped:
        err_console.print(f"[bold red]--strict:[/] {len(report.skipped)} file(s) skipped")
        raise typer.Exit(code=1)


def _print_ingest_report(report: Any, settings: Settings) -> None:
    table = Table(title=f"Ingest into {settings.store.index_dir}", show_header=True)
    table.add_column("")
    table.add_column("added", justify="right")
    table.add_column("updated", justify="right")
    table.add_column("removed", justify="right")
    table.add_column("unchanged", justify="right")
    table.add_row(
        "documents",
        str(report.documents_added),
        str(report.documents_updated),
        str(report.documents_removed),
        str(report.documents_unchanged),
    )
    table.add_row(
        "chunks",
        str(report.chunks_added),
        "",
        str(report.chunks_removed),
        str(report.chunks_kept),
    )
    console.print(table)
    rate = ""
    if report.documents_added + report.documents_updated and report.elapsed_s > 0:
        docs = report.documents_added + report.documents_updated
        chunks = report.chunks_added
        rate = (
            f", {docs / report.elapsed_s:.1f} documents/s, {chunks / report.elapsed_s:.1f} chunks/s"
        )
    console.print(
        f"{report.files_seen} files ({report.files_unchanged} unchanged, {len(report.skipped)} "
        f"skipped); embedded {report.chunks_embedded} chunks, reused {report.embeddings_reused} "
        f"cached embeddings; {report.elapsed_s:.1f} s{rate}",
        highlight=False,
        soft_wrap=True,
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if report.skipped:
        console.print(f"[bold]Skipped files ({len(report.skipped)}):[/]")
        for item in report.skipped:
            console.print(
                f"  [yellow]skipped[/] {item.path}: {item.reason}", highlight=False, soft_wrap=True
            )


@index_app.command("stats")
@handle_errors
def index_stats(index: IndexOption = None) -> None:
    """Documents, chunks and vectors in the index, and how it was built."""
    from ingest.store import Index

    settings = build_settings(index)
    idx = Index.open(settings)
    stats = idx.stats()
    table = Table(title="Index", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for label, value in (
        ("location", stats.location),
        ("vectors", stats.vector_backend),
        ("embedding model", f"{stats.embedding_model} (dim {stats.dimension})"),
        ("documents", str(stats.documents)),
        ("  by type", ", ".join(f"{k} {v}" for k, v in sorted(stats.by_doc_type.items()))),
        ("  by status", ", ".join(f"{k} {v}" for k, v in sorted(stats.by_status.items()))),
        ("pending documents", str(stats.pending_documents)),
        ("chunks", str(stats.chunks)),
        ("vectors stored", str(stats.vectors)),
        ("cached embeddings", str(stats.cached_embeddings)),
        ("generation", f"manifest {stats.manifest_generation}, bm25 {stats.lexical_generation}"),
    ):
        table.add_row(label, value)
    console.print(table)


@index_app.command("check")
@handle_errors
def index_check(index: IndexOption = None) -> None:
    """Check every part of the index (manifest, BM25, vectors) against the manifest."""
    from ingest.repair import check_index

    settings = build_settings(index)
    report = check_index(settings)
    for part in report.parts:
        mark = "[green]ok[/]" if part.ok else "[bold red]damaged[/]"
        console.print(
            f"{mark:<22} [bold]{part.name}[/] {part.location}: {part.detail}",
            highlight=False,
            soft_wrap=True,
        )
    if not report.ok:
        names = ", ".join(p.name for p in report.damaged())
        fix = (
            "ingest the sources again with --rebuild"
            if any(p.name == "manifest" for p in report.damaged())
            else f"`cliniq index rebuild --index {settings.store.index_dir}` restores them"
        )
        err_console.print(f"[bold red]damaged:[/] {names}; {fix}", highlight=False)
        raise typer.Exit(code=1)


@index_app.command("rebuild")
@handle_errors
def index_rebuild(
    index: IndexOption = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for another ingest's lock.")
    ] = 0.0,
) -> None:
    """Rebuild BM25 and the vectors from the manifest and its embedding cache (no source is
    read again)."""
    from ingest.repair import rebuild_index

    settings = build_settings(index)
    settings.ingest.lock_timeout_s = wait
    report = rebuild_index(settings)
    console.print(
        f"rebuilt {settings.store.index_dir}: {report.chunks} chunks, {report.vectors_from_cache} "
        f"vectors from the embedding cache, {report.vectors_embedded} embedded again; "
        f"{report.elapsed_s:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    if report.pending_documents:
        console.print(
            f"[yellow]warning:[/] {report.pending_documents} document(s) are pending from an "
            "interrupted ingest; the next `cliniq ingest` repairs them",
            highlight=False,
        )


@app.command("search")
@handle_errors
def search_command(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("-k", help="Number of passages.", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option("--mode", help="bm25 | dense | hybrid")] = "hybrid",
    index: IndexOption = None,
) -> None:
    """Ranked chunks with their scores and sources (no answer composed)."""
    from assistant.retrieve import Retriever
    from ingest.store import Index

    if mode not in {"bm25", "dense", "hybrid"}:
        raise CliniqError(f"--mode must be bm25, dense or hybrid, not {mode!r}")
    if not query.strip():
        raise CliniqError("the query is empty; give some words to search for")
    settings = build_settings(index)
    idx = Index.open(settings)
    passages = Retriever(idx, settings.retrieval).retrieve(query, k=k, mode=mode)  # type: ignore[arg-type]
    if not passages:
        console.print("no matching passages")
        return
    for p in passages:
        doc = p.document
        scores = [f"score {p.score:.4f}"]
        if p.dense_score is not None:
            scores.append(f"dense {p.dense_score:.3f} (#{p.dense_rank})")
        if p.lexical_score is not None:
            scores.append(f"bm25 {p.lexical_score:.2f} (#{p.lexical_rank})")
        console.print(
            f"[bold]{p.rank}.[/] {doc.title} — {doc.source_name}, {doc.year or 'n.d.'}"
            f" [dim]({doc.doc_type}, {doc.status})[/]",
            highlight=False,
        )
        console.print(f"   [dim]{p.chunk.heading or '(no section)'} · {' · '.join(scores)}[/]")
        text = p.chunk.text if len(p.chunk.text) < 400 else p.chunk.text[:400] + "…"
        console.print(f"   {text}\n", highlight=False)


def _print_answer(answer: Any, fmt: str, show_passages: bool, brief: bool = False) -> None:
    from rich.markdown import Markdown

    from assistant.render import to_json, to_markdown, to_text

    if fmt == "json":
        sys.stdout.write(to_json(answer) + "\n")
        return
    if fmt == "text":
        sys.stdout.write(to_text(answer, brief=brief))
    elif console.is_terminal:
        console.print(Markdown(to_markdown(answer, brief=brief)))
    else:
        sys.stdout.write(to_markdown(answer, brief=brief))
    if show_passages:
        sys.stdout.write("\nRetrieved passages:\n")
        for p in answer.passages:
            dense = f"{p.dense_score:.3f}" if p.dense_score is not None else "-"
            lexical = f"{p.lexical_score:.2f}" if p.lexical_score is not None else "-"
            sys.stdout.write(
                f"  {p.rank}. [{p.chunk.id[:10]}] {p.document.id} > {p.chunk.heading}"
                f"  score={p.score:.4f} dense={dense} bm25={lexical}\n"
            )
    timings = ", ".join(f"{k} {v:.0f}" for k, v in answer.timings_ms.items())
    err_console.print(f"[dim]{timings}[/]", highlight=False)


FormatOption = Annotated[str, typer.Option("--format", "-f", help="markdown | text | json")]


LLMOption = Annotated[
    bool,
    typer.Option(
        "--llm",
        help="Let the model at CLINIQ_LLM__BASE_URL write the answer (OpenAI-compatible); "
        "only cited sentences its passages support are shown.",
    ),
]


def _make_assistant(index: Path | None, llm: bool = False) -> Any:
    settings = build_settings(index)
    if llm:
        from assistant.generate import LLMAssistant

        return LLMAssistant(settings)
    from assistant.engine import Assistant

    return Assistant(settings)


@app.command("ask")
@handle_errors
def ask_command(
    question: Annotated[str, typer.Argument(help="A clinical question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    fmt: FormatOption = "markdown",
    show_passages: Annotated[
        bool, typer.Option("--show-passages", help="Also list the retrieved passages.")
    ] = False,
    index: IndexOption = None,
    llm: LLMOption = False,
    brief: Annotated[
        bool,
        typer.Option(
            "--brief",
            help="Print only the first screen (summary and key points) and its references.",
        ),
    ] = False,
) -> None:
    """Answer one question from the index, every sentence cited: the first screen, then More
    from the sources."""
    if fmt not in {"markdown", "text", "json"}:
        raise CliniqError(f"--format must be markdown, text or json, not {fmt!r}")
    assistant = _make_assistant(index, llm)
    answer = assistant.ask(question)
    _print_answer(answer, "json" if as_json else fmt, show_passages, brief)


@app.command("chat")
@handle_errors
def chat_command(
    fmt: FormatOption = "markdown",
    show_passages: Annotated[bool, typer.Option("--show-passages")] = False,
    index: IndexOption = None,
    llm: LLMOption = False,
) -> None:
    """Interactive questions with follow-ups; /new starts over, /quit or end of input ends."""
    from assistant.conversation import Session

    assistant = _make_assistant(index, llm)
    session = Session()
    interactive = sys.stdin.isatty()
    if interactive:
        console.print("[bold]cliniq chat[/] — ask a question; /new to start over, /quit to end.")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        question = line.strip()
        if not question:
            continue
        if question in {"/quit", "/exit"}:
            break
        if question == "/new":
            session.reset()
            console.print("[dim]new conversation[/]")
            continue
        if not interactive:
            sys.stdout.write(f"\n>>> {question}\n\n")
        try:
            answer = assistant.ask(question, session=session)
        except CliniqError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        _print_answer(answer, fmt, show_passages)
        sys.stdout.flush()


HostOption = Annotated[
    str | None, typer.Option("--host", help="Interface (default: CLINIQ_SERVE__HOST, 127.0.0.1).")
]


@app.command("serve")
@handle_errors
def serve_command(
    host: HostOption = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: CLINIQ_SERVE__PORT, 8400).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (CLINIQ_SERVE__WORKERS).")
    ] = None,
    index: IndexOption = None,
) -> None:
    """Serve over HTTP: an OpenAI-compatible chat endpoint and JSON routes."""
    from assistant.server import run_server

    settings = build_settings(index)
    for name, value in (("host", host), ("port", port), ("workers", workers)):
        if value is not None:
            setattr(settings.serve, name, value)
    run_server(settings, announce=lambda line: err_console.print(line, highlight=False))


@app.command("mcp")
@handle_errors
def mcp_command(
    http: Annotated[
        bool, typer.Option("--http", help="Streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: HostOption = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: CLINIQ_SERVE__MCP_PORT, 8401).")
    ] = None,
    index: IndexOption = None,
) -> None:
    """Serve the MCP tools search_sources, ask and get_passage (stdio, or --http)."""
    import contextlib

    from assistant.mcp_server import serve_http, serve_stdio
    from assistant.service import Cliniq

    settings = build_settings(index)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the stdio protocol's channel
        service = Cliniq(settings)
    if http:
        host = host or settings.serve.host
        port = port or settings.serve.mcp_port
        err_console.print(f"cliniq MCP on http://{host}:{port}/mcp", highlight=False)
        serve_http(service, host, port)
    else:
        serve_stdio(service)


def _add_plugin_commands() -> None:
    """Command groups registered under the `cliniq.commands` entry point (e.g. `cliniq eval`).

    Discovered, not imported by name: `evals` depends on the assistant, never the reverse.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group="cliniq.commands"):
        try:
            app.add_typer(entry.load(), name=entry.name)
        except Exception as exc:  # a broken plugin must not break the CLI
            err_console.print(f"[yellow]warning:[/] `cliniq {entry.name}` unavailable: {exc}")


def main() -> None:  # pragma: no cover - console script entry
    _add_plugin_commands()
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
