"""A step's probes as a live checklist in the terminal, ticked off as each one answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bot.terminal.render import STYLE
from commands.models import Finding, Probe

OnFinding = Callable[[Finding], Awaitable[None]]


def _table(probes: list[Probe], done: dict[str, Finding]) -> Table:
    table = Table.grid(padding=(0, 1))
    for probe in probes:
        finding = done.get(probe.key)
        if finding is None:
            table.add_row(Text("…", style="dim"), Text(probe.title, style="dim"))
        else:
            table.add_row(Text(finding.status.value, style=STYLE[finding.status]), Text(probe.title))
    return table


@contextlib.asynccontextmanager
async def live_checklist(console: Console, probes: list[Probe], *, quiet: bool = False) -> AsyncIterator[OnFinding]:
    """Yields the ``on_finding`` callback for ``run_probes``; nothing is drawn when ``quiet``
    (``--json``) or when the output is not a terminal."""
    done: dict[str, Finding] = {}
    if quiet or not console.is_terminal:

        async def record(finding: Finding) -> None:
            done[finding.key] = finding

        yield record
        return
    with Live(_table(probes, done), console=console, transient=True, refresh_per_second=8) as live:

        async def tick(finding: Finding) -> None:
            done[finding.key] = finding
            live.update(_table(probes, done))

        yield tick
