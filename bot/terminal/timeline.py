"""An incident's timeline in a terminal: a line each, time, who, what (from the event's words,
``commands.timeline.describe``), styled by what happened; as plain text for a file."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import UTC

from rich.console import Console
from rich.text import Text

from commands.timeline import Code, Entry, Person, describe, tone
from commands.timeline.events import VerdictReached

STYLE = {
    "incident.opened": "bold red",
    "alert.firing": "red",
    "alert.resolved": "green",
    "check.passed": "green",
    "check.failed": "red",
    "mitigation.applied": "bold",
    "mitigation.undone": "bold",
    "mitigation.stopped": "yellow",
    "refused": "yellow",
    "notice.failed": "yellow",
    "incident.state": "cyan",
    "legacy": "dim",
}


def _style(entry: Entry) -> str:
    if isinstance(entry.event, VerdictReached):
        return "bold red" if entry.event.breach else "green"
    return STYLE.get(tone(entry.event), "")


def entry_text(entry: Entry, people: Mapping[str, str] | None = None) -> Text:
    """``12:04:20 U_ALICE  diagnose: …`` with people named and code in its own style."""
    names = people or {}
    line = Text(f"{entry.at.astimezone(UTC):%H:%M:%S} ", style="dim")
    line.append(names.get(entry.actor, entry.actor), style="bold")
    line.append("  ")
    style = _style(entry)
    for span in describe(entry.event):
        if isinstance(span, Person):
            line.append(names.get(span.id, span.id), style="bold")
        elif isinstance(span, Code):
            line.append(span.text, style="cyan")
        else:
            line.append(span, style=style)
    return line


def print_timeline(entries: Iterable[Entry], console: Console, people: Mapping[str, str] | None = None) -> None:
    for entry in entries:
        console.print(entry_text(entry, people))


def timeline_text(entries: Iterable[Entry], width: int = 160) -> str:
    """The timeline as plain text (no colours)."""
    buffer = io.StringIO()
    print_timeline(entries, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return buffer.getvalue()
