"""Plain words for the typed memory of past incidents, shared by the Slack and terminal edges."""

from __future__ import annotations

from commands.models import SCENARIO_LETTER, PastIncident, PastMitigation, Recurrence


def changes_text(m: PastMitigation) -> str:
    """``token_rate 140 → 300``; several changes joined by commas."""
    return ", ".join(f"{c.key} {c.before or '(unset)'} → {c.after or '(unset)'}" for c in m.changes)


def found_text(past: PastIncident) -> str:
    if past.scenario is None:
        return "no cause found"
    letter = SCENARIO_LETTER.get(past.scenario, "?")
    return f"{letter} {past.scenario}" + (f" · {past.cause.replace('_', ' ')}" if past.cause else "")


def incident_line(past: PastIncident) -> str:
    """``#12 · 2026-11-20 14:05 UTC (resolved) · C quota · legitimate burst``."""
    state = "resolved" if past.resolved_at else "open"
    return f"#{past.id} · {past.opened_at:%Y-%m-%d %H:%M} UTC ({state}) · {found_text(past)}"


def cause_text(r: Recurrence) -> str:
    """What the same cause met last time: ``last time quota token_rate 140 → 300 fixed this``."""
    when = f"incident #{r.incident.id}, {r.incident.opened_at:%Y-%m-%d}"
    if r.fix is None:
        return f"the same cause as {when}; no mitigation passed its checks then"
    return f"last time {r.fix.action} {changes_text(r.fix)} fixed this ({when})"
