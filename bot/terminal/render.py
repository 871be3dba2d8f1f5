"""How outcomes look in a terminal (rich), and as JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.text_report import STYLE
from commands.incidents import IncidentLine, IncidentStatus, age
from commands.mitigate import Plan
from commands.models import Finding
from commands.triage import Breaching
from integrations.store import PlanRecord

__all__ = ["STYLE", "breaching", "emit_json", "finding", "incidents", "outcome", "plan", "status"]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def emit_json(data: Any, console: Console) -> None:
    # Plain print: rich would wrap and colour what a script parses.
    console.file.write(json.dumps(_plain(data), ensure_ascii=False, default=str) + "\n")


def breaching(rows: list[Breaching], console: Console) -> None:
    if not rows:
        console.print("No tenant breaches its SLO.")
        return
    table = Table("tenant", "SLI", "value", "SLO")
    for row in rows:
        table.add_row(Text(row.tenant), row.sli, f"{row.value:.2%}", f"{row.slo:.2%}")
    console.print(table)


def finding(f: Finding, console: Console) -> None:
    console.print(Text(f"{f.status.value}", style=STYLE[f.status]), Text(f" {f.title} · {f.summary}"))
    for key, value in f.facts.items():
        console.print(f"  {key}: {value}", style="dim", markup=False)


def incidents(lines: list[IncidentLine], console: Console) -> None:
    if not lines:
        console.print("No open incident.")
        return
    table = Table("#", "who", "state", "age", "last event")
    for line in lines:
        last = line.last.kind if line.last else ""
        table.add_row(str(line.incident.id), Text(line.who), line.incident.state, age(line.age_s), Text(last))
    console.print(table)


def status(s: IncidentStatus, console: Console) -> None:
    i = s.incident
    console.rule(Text(f"incident #{i.id} · {i.tenant or ', '.join(i.tenants)} · {i.state}"))
    console.print(Text(i.title))
    for alert in s.alerts:
        console.print(Text(f"alert {alert.status} since {alert.starts_at:%H:%M} UTC · {alert.labels}"), style="dim")
    for event in s.recent:
        console.print(Text(f"{event.at:%H:%M:%S} {event.actor} {event.kind}"), style="dim")


def plan(p: Plan, state: str, console: Console) -> None:
    title = "Undo" if p.undoes else f"Mitigation {p.action}"
    console.rule(Text(f"{title} for {p.tenant} · plan {p.id} · {state.replace('_', ' ')}"))
    for line in p.lines():
        console.print(Text(f"  • {line}"))
    for note in p.notes:
        console.print(Text(f"  {note}", style="italic"))
    if p.needs_second_approver:
        console.print(Text("  needs two different approvers: " + "; ".join(p.approval_reasons), style="yellow"))
    if p.lasts_s and not p.undoes:
        console.print(
            Text(f"  temporary: lasts {p.lasts_s / 3600:.3g} h, then the thread is asked to revert or extend it")
        )
    console.print(Text(f"  confirm by {p.expires_at:%H:%M} UTC", style="dim"))


def outcome(record: PlanRecord, console: Console) -> None:
    style = "green" if record.state == "applied" else "red"
    console.print(Text(f"plan {record.id}: {record.state}", style=f"bold {style}"))
    if record.reason:
        console.print(Text(record.reason))
    for obj in (record.applied or {}).get("objects", []):
        for change in obj.get("changes", []):
            console.print(Text(f"  {obj['ref']['name']} · {change['key']}: {change['before']} → {change['after']}"))
    until = (record.applied or {}).get("until")
    if until:
        console.print(
            Text(f"  until {until[11:16]} UTC (then a reminder: flk undo {record.id} or flk extend {record.id})")
        )
