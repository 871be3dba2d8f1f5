"""Reports in a terminal (and as the plain-text file attached to long Slack reports)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from commands.history_text import cause_text, changes_text, incident_line
from commands.models import SCENARIO_TITLE, History, Report, Status, Verdict

STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.BREACH: "bold red",
    Status.ERROR: "red",
    Status.UNKNOWN: "dim",
}


def basis_line(verdict: Verdict) -> str | None:
    """How sure the verdict is and why, with the runner-up or the scenarios it could not tell apart."""
    if verdict.confidence is None:
        return None
    line = f"{verdict.confidence} confidence"
    if verdict.rule:
        line += f": {verdict.rule}"
    if len(verdict.inconclusive) >= 2:
        line += " · could be " + " or ".join(SCENARIO_TITLE[s] for s in verdict.inconclusive)
    elif verdict.runner_up:
        line += f" · runner-up {SCENARIO_TITLE[verdict.runner_up]}"
    if verdict.overturns:
        line += f" · overturns triage's {SCENARIO_TITLE[verdict.overturns]}"
    return line


def print_report(report: Report, console: Console) -> None:
    console.rule(f"{report.step} · {report.tenant} · {report.status.value}")
    if report.verdict is not None:
        console.print(Text(report.verdict.headline, style="bold"))
        if (basis := basis_line(report.verdict)) is not None:
            console.print(f"  {basis}", style="dim", markup=False)
        for line in report.verdict.evidence:
            console.print(f"  • {line}", markup=False)
        for step in report.verdict.next_steps:
            console.print(f"  next: flk {step}", style="cyan", markup=False)
    table = Table(show_lines=False, expand=True)
    table.add_column("status", no_wrap=True)
    table.add_column("probe", no_wrap=True)
    table.add_column("finding")
    for finding in report.findings:
        body = Text(finding.summary)
        for key, value in finding.facts.items():
            body.append(f"\n{key}: {value}", style="dim")
        for line in finding.evidence:
            body.append(f"\n  {line}", style="dim")
        table.add_row(Text(finding.status.value, style=STYLE[finding.status]), finding.title, body)
    console.print(table)
    if report.history is not None:
        print_history(report.history, console)
    console.print(f"{len(report.findings)} probes in {report.wall_ms:.0f} ms", style="dim")


_CHECKS = {True: "checks passed", False: "checks failed", None: "no checks ran"}


def print_history(history: History, console: Console) -> None:
    """The tenant's earlier incidents: when, the cause found, each mitigation and its checks."""
    title = f"past incidents ({history.days} days)"
    if history.error:
        console.print(Text(f"{title}: {history.error}", style="red"))
        return
    if not history.incidents:
        console.print(Text(f"{title}: none", style="dim"))
        return
    console.print(Text(title, style="bold"))
    if history.recurrence is not None:
        console.print(Text(f"  {cause_text(history.recurrence)}", style="yellow"))
    for past in history.incidents:
        done = "; ".join(
            f"{m.action} {changes_text(m)} ({_CHECKS[m.checks_passed]}{', undone' if m.undone else ''})"
            for m in past.mitigations
        )
        console.print(Text(f"  {incident_line(past)} · {done or 'no mitigation applied'}"))


def report_text(report: Report, width: int = 160) -> str:
    """The whole report as plain text, for a file attached to a Slack thread."""
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return buffer.getvalue()
