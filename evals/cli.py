"""`cliniq eval ...`: run a suite, move suites and runs in and out of RAGAS JSONL, bench judges.

Exit codes of ``run``: 0 when every threshold is met, 1 when one is not, 2 on an error (bad
suite, missing index or judge), with one line saying what to do.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import ingest  # noqa: F401  (offline hub, pinned threads, before torch loads)
from ingest.errors import CliniqError

app = typer.Typer(
    name="eval",
    help="Evaluate answer faithfulness: suites, metrics, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Our errors become one line and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CliniqError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def default_thresholds(suite_path: Path) -> Path | None:
    """``rls.yaml`` -> ``rls.thresholds.yaml`` beside it, if that file exists."""
    candidate = suite_path.with_name(suite_path.stem + ".thresholds.yaml")
    return candidate if candidate.is_file() else None


def _progress() -> Progress:
    import os

    force = os.environ.get("CLINIQ_PROGRESS", "") == "1"
    return Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not (err_console.is_terminal or force),
    )


def _command(suite: Path, **options: Any) -> str:
    parts = ["cliniq eval run", str(suite)]
    for key, value in options.items():
        if value in (None, False, "", ()):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, list | tuple):
            parts.extend(f"{flag} {v}" for v in value)
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


@app.command("run")
@handle_errors
def run_command(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE", help="Suite YAML or RAGAS JSONL.")],
    system: Annotated[
        str, typer.Option("--system", "-s", help="cliniq | cliniq-llm | recorded")
    ] = "cliniq",
    recorded: Annotated[
        Path | None,
        typer.Option(
            "--recorded",
            help="Recorded answers: RAGAS JSONL, cliniq answer JSON, or an earlier report.json.",
        ),
    ] = None,
    judge: Annotated[
        str, typer.Option("--judge", "-j", help="Support judge for scoring ('default' or a name).")
    ] = "default",
    assistant_judge: Annotated[
        str,
        typer.Option(
            "--assistant-judge", help="Judge the assistant verifies its own sentences with."
        ),
    ] = "default",
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", help="Default: <suite>.thresholds.yaml beside the suite."),
    ] = None,
    no_thresholds: Annotated[
        bool, typer.Option("--no-thresholds", help="Check no thresholds.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report directory (default reports/<suite>).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="First N cases only.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only cases with this tag (repeatable).")
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index", help="Index directory for the cliniq systems (.cliniq/eval-index)."
        ),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus", help="Corpus to index (default: the suite's 'corpus', else corpus/)."
        ),
    ] = None,
    judge_quotes: Annotated[
        bool,
        typer.Option(
            "--judge-quotes",
            help="Send verbatim quotes of the cited passage to the judge too (default: a quote "
            "is supported by containment).",
        ),
    ] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=100)] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Answer every case, judge each sentence against what it cites, score, and report."""
    from evals.report import print_summary, write_all
    from evals.runner import (
        DEFAULT_EVAL_INDEX,
        SYSTEMS,
        RecordedSystem,
        build_cliniq,
        build_cliniq_llm,
        metric_names,
        resolve_judge,
        run_suite,
        suite_index_dir,
    )
    from evals.suite import SuiteDataMissing, load_suite, materialize_index, with_references
    from evals.thresholds import load_thresholds
    from ingest.settings import Settings

    if system not in SYSTEMS:
        raise CliniqError(f"--system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    suite = load_suite(suite_path)
    threshold_path = None if no_thresholds else (thresholds or default_thresholds(suite_path))
    bars = load_thresholds(threshold_path, metric_names()) if threshold_path else []

    settings = Settings()
    settings.store.index_dir = index or DEFAULT_EVAL_INDEX
    suite_corpus = None
    if suite.index is not None:
        # The suite defines its own index: kept apart from the corpus suites' index.
        settings.store.index_dir = index or suite_index_dir(suite.name)
        data_dir = Path(str(settings.store.index_dir) + "-data")
        try:
            suite_corpus, references = materialize_index(suite, data_dir)
        except SuiteDataMissing as exc:
            err_console.print(f"[bold yellow]skipped:[/] {exc}", highlight=False, soft_wrap=True)
            return
        suite = with_references(suite, references)
    embedder = None
    if system == "recorded":
        if recorded is not None:
            runner_system: Any = RecordedSystem.from_file(recorded, suite)
        else:
            runner_system = RecordedSystem.from_suite(suite)
    else:
        from ingest.embedding import get_embedder

        embedder = get_embedder(settings.embedding)
        corpus_dir = corpus or suite_corpus or suite.corpus_path() or Path("corpus")
        build = build_cliniq if system == "cliniq" else build_cliniq_llm
        err_console.print(f"[dim]indexing {corpus_dir} into {settings.store.index_dir} ...[/]")
        runner_system = build(
            settings, corpus_dir, embedder=embedder, verifier_judge=assistant_judge
        )
    scorer = resolve_judge(judge, settings, embedder)

    selected = suite.select(limit, tag or ())
    command = _command(
        suite_path,
        system=system if system != "cliniq" else None,
        recorded=recorded,
        judge=judge if judge != "default" else None,
        assistant_judge=assistant_judge if assistant_judge != "default" else None,
        thresholds=thresholds,
        limit=limit,
        tag=tag or (),
        judge_quotes=judge_quotes,
    )
    with _progress() as bar:
        task = bar.add_task("cases", total=len(selected))

        def advance(result: Any) -> None:
            mark = "" if result.passed else " (failing)"
            bar.update(task, advance=1, description=f"{result.id}{mark}"[:28])

        report = run_suite(
            suite,
            runner_system,
            scorer,
            thresholds=bars,
            thresholds_file=str(threshold_path) if threshold_path else None,
            limit=limit,
            tags=tag or (),
            resamples=resamples,
            seed=seed,
            extractive=not judge_quotes,
            progress=advance,
            command=command,
        )
    out_dir = out or Path("reports") / suite.name
    paths = write_all(report, out_dir)
    print_summary(report, console)
    console.print(
        f"[dim]{report.elapsed_s:.0f} s; reports: "
        + ", ".join(str(p) for p in paths.values())
        + "[/]",
        highlight=False,
    )
    if not report.passed:
        raise typer.Exit(code=1)


@app.command("import-ragas")
@handle_errors
def import_ragas_command(
    jsonl: Annotated[Path, typer.Argument(help="RAGAS JSONL: one SingleTurnSample per line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Suite YAML to write.")],
    name: Annotated[str | None, typer.Option("--name", help="Suite name.")] = None,
) -> None:
    """Turn recorded RAGAS samples into a suite (scored with --system recorded)."""
    from evals.ragas_io import read_ragas_jsonl
    from evals.suite import dump_suite

    suite = read_ragas_jsonl(jsonl, name=name or output.stem)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dump_suite(suite), encoding="utf-8")
    console.print(f"{len(suite.cases)} cases written to {output}", highlight=False)


@app.command("export-ragas")
@handle_errors
def export_ragas_command(
    run_json: Annotated[Path, typer.Argument(metavar="RUN.json", help="A report.json of a run.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="RAGAS JSONL to write.")],
) -> None:
    """Write a run's answers as RAGAS JSONL (citation markers numbered into retrieved_contexts)."""
    from evals.ragas_io import export_run

    count = export_run(run_json, output)
    console.print(f"{count} samples written to {output}", highlight=False)


@app.command(
    "judges",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def judges_command(ctx: typer.Context) -> None:
    """Benchmark the support judges on WiCE and HealthVer (options: --limit, --judges, ...)."""
    from evals import judges_bench

    raise typer.Exit(code=judges_bench.main(list(ctx.args)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
