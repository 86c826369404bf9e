"""Reports of a run: JSON (everything), one self-contained HTML file, JUnit XML, a terminal table.

The HTML needs nothing but itself (inline CSS, native ``<details>`` for the per-case views), so
it can be attached to a CI job and opened anywhere. JUnit has one testcase per case and one per
threshold, so a CI server lists exactly which expectation or bar failed, and why.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.metrics import Aggregate, JudgedClaim
from evals.runner import CaseResult, RunReport, TurnResult
from evals.thresholds import ThresholdResult

EXCERPT = 240


def fmt_value(agg: Aggregate | None, value: float | None = None) -> str:
    value = agg.value if value is None and agg is not None else value
    if value is None:
        return "n/a"
    unit = agg.unit if agg is not None else "fraction"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "count":
        return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"
    return f"{value:.3f}"


def fmt_ci(agg: Aggregate) -> str:
    if agg.ci_low is None or agg.ci_high is None:
        return ""
    return f"{fmt_value(agg, agg.ci_low)} – {fmt_value(agg, agg.ci_high)}"


def scored_by_the_verifier(report: RunReport) -> bool:
    """True when the scoring judge is the one the assistant verified its own sentences with:
    faithfulness is then a consistency check (an upper bound), not an independent measure."""
    verifier = report.system.details.get("verifier")
    return isinstance(verifier, dict) and (
        verifier.get("name"),
        verifier.get("version"),
    ) == (report.judge.name, report.judge.version)


INDEPENDENCE_NOTE = (
    "Scored with the same judge the assistant verified its sentences with, so faithfulness is "
    "an upper bound; score again with an independent judge (--judge NAME) to measure it."
)


def _thresholds_by_metric(report: RunReport) -> dict[str, list[ThresholdResult]]:
    out: dict[str, list[ThresholdResult]] = {}
    for t in report.thresholds:
        out.setdefault(t.metric, []).append(t)
    return out


# ------------------------------------------------------------------------------ JSON


def write_json(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return path


def read_json(path: Path | str) -> RunReport:
    return RunReport.model_validate_json(Path(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ JUnit


def junit_xml(report: RunReport) -> str:
    """One testcase per case and per threshold; each failure carries its reasons."""
    suite_name = report.suite.name
    root = ET.Element("testsuites", name=f"cliniq eval {suite_name}")
    failures = len(report.failed_cases) + sum(not t.passed for t in report.thresholds)
    tests = len(report.cases) + len(report.thresholds)
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{report.elapsed_s:.2f}",
        timestamp=report.started_at,
    )
    props = ET.SubElement(ts, "properties")
    for key, value in (
        ("system", report.system.name),
        ("judge", f"{report.judge.name}@{report.judge.version}"),
        ("resamples", str(report.resamples)),
        ("seed", str(report.seed)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for case in report.cases:
        tc = ET.SubElement(
            ts,
            "testcase",
            classname=f"{suite_name}.cases",
            name=case.id,
            time=f"{case.elapsed_s:.3f}",
        )
        if case.failures:
            failure = ET.SubElement(
                tc, "failure", message=case.failures[0][:300], type="ExpectationFailed"
            )
            failure.text = "\n".join(case.failures)
        out = ET.SubElement(tc, "system-out")
        out.text = _case_text(case)
    for t in report.thresholds:
        tc = ET.SubElement(
            ts, "testcase", classname=f"{suite_name}.thresholds", name=t.label(), time="0"
        )
        if not t.passed:
            failure = ET.SubElement(tc, "failure", message=t.reason, type="ThresholdFailed")
            failure.text = f"{t.label()}: {t.reason}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _case_text(case: CaseResult) -> str:
    lines = []
    for turn in case.turns:
        lines.append(f"Q{turn.turn + 1}: {turn.question[:300]}")
        if turn.answer is None:
            lines.append(f"  (no answer: {turn.error})")
            continue
        a = turn.answer
        lines.append(f"  abstained: {a.abstained}; claims: {len(turn.claims)}")
        for claim in turn.claims:
            if claim.label != "supported":
                lines.append(f"  [{claim.label}] {claim.text[:200]}")
    return "\n".join(lines)


def write_junit(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#566;margin-bottom:16px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #d5dae2;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.pass{color:#17723a;font-weight:600}.fail{color:#b3261e;font-weight:600}.na{color:#888}
details{border:1px solid #d5dae2;border-radius:6px;margin:6px 0;padding:4px 10px}
details[open]{background:#fbfcfe}summary{cursor:pointer;font-weight:600}
.tag{display:inline-block;background:#eef1f6;border-radius:10px;padding:0 8px;margin:0 2px;
font-size:12px;font-weight:400}
.label-supported{color:#17723a}.label-not_supported{color:#a15c00}
.label-contradicted{color:#b3261e;font-weight:600}.label-uncited{color:#b3261e}
.excerpt{color:#445;font-size:13px}.small{font-size:12px;color:#667}
pre{white-space:pre-wrap;background:#f6f7f9;padding:8px;border-radius:4px;margin:4px 0}
ul.fail{margin:4px 0 8px 18px;font-weight:400}
"""


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _status(passed: bool | None) -> str:
    if passed is None:
        return '<span class="na">–</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _summary_table(report: RunReport) -> str:
    by_metric = _thresholds_by_metric(report)
    rows = []
    for name, agg in report.metrics.items():
        ts = by_metric.get(name, [])
        bar = ", ".join(f"{t.op} {t.bound:g}" for t in ts)
        status = _status(all(t.passed for t in ts)) if ts else _status(None)
        n = f"{agg.n}" + (f" <span class='small'>({agg.skipped} n/a)</span>" if agg.skipped else "")
        rows.append(
            f"<tr><td><b>{_e(name)}</b><div class='small'>{_e(agg.description)}</div></td>"
            f"<td class='num'>{_e(fmt_value(agg))}</td><td class='num'>{_e(fmt_ci(agg))}</td>"
            f"<td class='num'>{n}</td><td>{_e(bar)}</td><td>{status}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>95% CI</th><th>n</th>"
        "<th>threshold</th><th></th></tr>" + "".join(rows) + "</table>"
    )


def _thresholds_table(report: RunReport) -> str:
    if not report.thresholds:
        return "<p class='na'>No thresholds were checked.</p>"
    rows = "".join(
        f"<tr><td>{_e(t.label())}</td><td>{_e(t.reason)}</td><td>{_status(t.passed)}</td></tr>"
        for t in report.thresholds
    )
    return f"<table><tr><th>threshold</th><th>result</th><th></th></tr>{rows}</table>"


def _claims_table(turn: TurnResult) -> str:
    if not turn.claims:
        return "<p class='na'>No content sentences to judge.</p>"
    rows = []
    for i, claim in enumerate(turn.claims, start=1):
        rows.append(_claim_row(i, claim, turn))
    return (
        "<table><tr><th>#</th><th>sentence</th><th>verdict</th><th>score</th>"
        "<th>cited → supporting passage</th><th>why</th></tr>" + "".join(rows) + "</table>"
    )


def _claim_row(i: int, claim: JudgedClaim, turn: TurnResult) -> str:
    answer = turn.answer
    doc_of = {p.id: p.document_id for p in answer.passages} if answer else {}
    cited = ", ".join(f"{c} ({doc_of.get(c) or '?'})" for c in claim.citations) or "none"
    support = ""
    if claim.supporting_passage:
        support = f"<div>→ <code>{_e(claim.supporting_passage)}</code></div>"
    excerpt = (
        f"<div class='excerpt'>“{_e((claim.excerpt or '')[:EXCERPT])}”</div>"
        if claim.excerpt
        else ""
    )
    why = []
    if claim.joint is not None:
        why.extend(claim.joint.rules)
    why.extend(claim.citation_errors)
    if claim.joint is None and not claim.citation_errors:
        why.append("no citation")
    imprecise = [c for c in claim.citations if claim.supported and not claim.precise(c)]
    if imprecise:
        why.append("irrelevant citation: " + ", ".join(imprecise))
    score = "" if claim.score is None else f"{claim.score:.2f}"
    return (
        f"<tr><td class='num'>{i}</td><td>{_e(claim.text)}<div class='small'>{_e(claim.kind)}"
        f"</div></td><td class='label-{_e(claim.label)}'>{_e(claim.label)}</td>"
        f"<td class='num'>{score}</td><td class='small'>{_e(cited)}{support}{excerpt}</td>"
        f"<td class='small'>{'<br>'.join(_e(w) for w in why)}</td></tr>"
    )


def _passages_list(turn: TurnResult) -> str:
    answer = turn.answer
    if answer is None or not answer.passages:
        return ""
    items = "".join(
        f"<li><code>{_e(p.id)}</code> <b>{_e(p.document_id or '')}</b> "
        f"<span class='excerpt'>{_e(p.text[:EXCERPT])}{'…' if len(p.text) > EXCERPT else ''}"
        "</span></li>"
        for p in answer.passages
    )
    return (
        f"<details><summary>Passages ({len(answer.passages)}, in rank order)</summary>"
        f"<ol>{items}</ol></details>"
    )


def _turn_html(case: CaseResult, turn: TurnResult) -> str:
    parts = [f"<h4>Q{turn.turn + 1}: {_e(turn.question[:500])}</h4>"]
    if turn.answer is None:
        parts.append(f"<p class='fail'>No answer: {_e(turn.error)}</p>")
        return "".join(parts)
    a = turn.answer
    facts = []
    if a.standalone_query and a.standalone_query != turn.question:
        facts.append(f"retrieved for: <i>{_e(a.standalone_query[:300])}</i>")
    if a.abstained:
        facts.append(f"<b>refused</b> ({_e(a.abstention_source)}): {_e(a.abstention_reason or '')}")
    if a.normalization and a.normalization.concepts:
        facts.append("read as: " + _e(", ".join(dict.fromkeys(a.normalization.concepts))))
    if a.latency_ms is not None:
        facts.append(f"{a.latency_ms:,.0f} ms")
    if facts:
        parts.append("<p class='small'>" + " · ".join(facts) + "</p>")
    scored = {k: v for k, v in turn.scores.items() if v.skipped is None and v.value is not None}
    if scored:
        parts.append(
            "<p class='small'>"
            + " · ".join(
                f"{_e(k)} {v.value:.3g}" for k, v in scored.items() if not k.startswith("latency")
            )
            + "</p>"
        )
    parts.append(f"<details><summary>Answer text</summary><pre>{_e(a.text)}</pre></details>")
    parts.append(_claims_table(turn))
    parts.append(_passages_list(turn))
    return "".join(parts)


def _case_html(case: CaseResult) -> str:
    tags = "".join(f"<span class='tag'>{_e(t)}</span>" for t in case.tags)
    fails = ""
    if case.failures:
        fails = "<ul class='fail'>" + "".join(f"<li>{_e(f)}</li>" for f in case.failures) + "</ul>"
    verdicts: dict[str, int] = {}
    for turn in case.turns:
        for claim in turn.claims:
            verdicts[claim.label] = verdicts.get(claim.label, 0) + 1
    counts = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
    body = "".join(_turn_html(case, t) for t in case.turns)
    return (
        f"<details id='case-{_e(case.id)}'><summary>{_status(case.passed)} {_e(case.id)} {tags} "
        f"<span class='small'>{_e(counts)}</span></summary>{fails}{body}</details>"
    )


def html_report(report: RunReport) -> str:
    judge = report.judge
    settings = ", ".join(f"{k}={v}" for k, v in judge.settings.items())
    verdict = "PASSED" if report.passed else "FAILED"
    cls = "pass" if report.passed else "fail"
    failed = report.failed_cases
    cases_html = "".join(_case_html(c) for c in sorted(report.cases, key=lambda c: c.passed))
    system_details = ", ".join(
        f"{k}={v}" for k, v in report.system.details.items() if isinstance(v, str | int | float)
    )
    verifier = report.system.details.get("verifier")
    if isinstance(verifier, dict):
        system_details += f", verifier={verifier.get('name')}@{verifier.get('version')}"
    quoted = f", {report.pairs_quoted} settled as verbatim quotes" if report.extractive else ""
    note = ""
    if scored_by_the_verifier(report):
        note = f"<p class='small'><b>Note:</b> {_e(INDEPENDENCE_NOTE)}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cliniq eval: {_e(report.suite.name)}</title><style>{_CSS}</style></head>
<body>
<h1>cliniq eval: {_e(report.suite.name)} <span class="{cls}">{verdict}</span></h1>
<div class="meta">system <b>{_e(report.system.name)}</b> ({_e(system_details)}) ·
judge <b>{_e(judge.name)}@{_e(judge.version)}</b> ({_e(settings)}) ·
{report.suite.cases_run} of {report.suite.cases_total} cases · {len(failed)} failing ·
{report.pairs_judged} claim–passage pairs judged{quoted} · {report.elapsed_s:.0f} s ·
{_e(report.started_at)} · bootstrap {report.resamples} resamples, seed {report.seed}</div>
{f"<p class='small'>Reproduce: <code>{_e(report.command)}</code></p>" if report.command else ""}
{note}
<h2>Summary</h2>
{_summary_table(report)}
<h2>Thresholds{f" ({_e(report.thresholds_file)})" if report.thresholds_file else ""}</h2>
{_thresholds_table(report)}
{_categories_html(report)}
<h2>Cases</h2>
<p class="small">Failing cases first. A case fails on a deterministic check (a missing fact, a
forbidden phrase, a wrong refusal, a misread question, no expected source, a citation error);
judge verdicts per sentence are shown inside each case and gate the run through thresholds.</p>
{cases_html}
</body></html>
"""


def _categories_html(report: RunReport) -> str:
    if not report.failure_categories:
        return ""
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in report.failure_categories.items()
    )
    head = "<tr><th>category</th><th>answers</th></tr>"
    return f"<h2>Failure categories</h2><table>{head}{rows}</table>"


def write_html(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(report), encoding="utf-8")
    return path


def write_all(report: RunReport, out_dir: Path) -> dict[str, Path]:
    """report.json, report.html and junit.xml in ``out_dir``."""
    return {
        "json": write_json(report, out_dir / "report.json"),
        "html": write_html(report, out_dir / "report.html"),
        "junit": write_junit(report, out_dir / "junit.xml"),
    }


# ------------------------------------------------------------------------------ terminal


def summary_table(report: RunReport) -> Table:
    by_metric = _thresholds_by_metric(report)
    table = Table(
        title=f"{report.suite.name}: {report.system.name}, judge {report.judge.name}"
        f"@{report.judge.version} ({report.suite.cases_run} cases)",
        title_justify="left",
    )
    for col, justify in (
        ("metric", "left"),
        ("value", "right"),
        ("95% CI", "right"),
        ("n", "right"),
        ("threshold", "left"),
        ("", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, agg in report.metrics.items():
        ts = by_metric.get(name, [])
        bar = ", ".join(f"{t.op} {t.bound:g}" for t in ts)
        status = ""
        if ts:
            status = "[green]pass[/]" if all(t.passed for t in ts) else "[bold red]FAIL[/]"
        table.add_row(name, fmt_value(agg), fmt_ci(agg), str(agg.n), bar, status)
    return table


def print_summary(report: RunReport, console: Console, max_failures: int = 15) -> None:
    console.print(summary_table(report))
    if scored_by_the_verifier(report):
        console.print(f"[yellow]note:[/] {INDEPENDENCE_NOTE}", highlight=False)
    if report.failure_categories:
        console.print(
            "[bold]failure categories:[/] "
            + "; ".join(f"{k}: {v}" for k, v in report.failure_categories.items()),
            highlight=False,
            soft_wrap=True,
        )
    failed = report.failed_cases
    if failed:
        console.print(f"[bold]{len(failed)} case(s) failing:[/]")
        for case in failed[:max_failures]:
            console.print(
                f"  [red]{case.id}[/]: {case.failures[0]}", highlight=False, soft_wrap=True
            )
        if len(failed) > max_failures:
            console.print(f"  ... and {len(failed) - max_failures} more (see the HTML report)")
    for t in report.thresholds:
        if not t.passed:
            console.print(
                f"[bold red]threshold failed[/] {t.label()}: {t.reason}",
                highlight=False,
                soft_wrap=True,
            )
    if report.thresholds:
        word = "[green]all thresholds met[/]" if report.passed else "[bold red]thresholds failed[/]"
        console.print(word)
