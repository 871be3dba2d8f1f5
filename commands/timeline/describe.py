"""What an event says, as spans an edge renders in its own markup: plain text, a person (a
Slack mention, a display name in the RCA, an id in a terminal) and code (a command, a plan id).
Words only, no markup: Slack mrkdwn, the RCA's Markdown and the terminal's rich text are written
from these by ``bot/slack/render_timeline``, ``commands/comms/markdown`` and ``bot/terminal/timeline``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from commands.promql import pct
from commands.timeline.events import (
    SLI_NAMES,
    AlertNotified,
    AnnotationAdded,
    ChangeRef,
    CheckRan,
    CommandRun,
    Event,
    ExportPosted,
    IncidentOpened,
    LegacyEvent,
    MitigationApplied,
    MitigationApproved,
    MitigationExpiryDue,
    MitigationExtended,
    MitigationPlanned,
    MitigationResumed,
    MitigationStopped,
    NotePinned,
    NoticeFailed,
    NoticeSent,
    RcaPosted,
    Refused,
    ResolvePosted,
    RestartRetried,
    SilenceChanged,
    SliValue,
    StateChanged,
    TenantsAdded,
    ThreadOpened,
    VerdictReached,
)


@dataclass(frozen=True)
class Person:
    """Someone named by their id (a Slack user id, or ``bot``, ``alertmanager``)."""

    id: str


@dataclass(frozen=True)
class Code:
    text: str


Span = str | Person | Code
_OPENED_BY = {"alert": "by an alert", "command": "by a command", "isolation": "as an isolation breach"}


def shown(value: str | None) -> str:
    """A configuration value before or after a change; None: the key is absent."""
    return "(unset)" if value is None else value


def change_text(change: ChangeRef) -> str:
    return f"{change.key} {shown(change.before)} → {shown(change.after)}"


def changes_text(changes: Iterable[ChangeRef]) -> str:
    """``configmap/x: quota 1 → 2, burst 3 → 4`` (one object after the other)."""
    by_object: dict[str, list[str]] = {}
    for c in changes:
        by_object.setdefault(c.object, []).append(change_text(c))
    return "; ".join(f"{obj}: {', '.join(lines)}" for obj, lines in by_object.items())


def sli_text(sli: SliValue) -> str:
    return f"{sli.name} {pct(sli.value)} (SLO {pct(sli.slo)})"


def _clock(iso: str | None) -> str:
    try:
        return f"{datetime.fromisoformat(iso or ''):%H:%M} UTC"
    except ValueError:
        return "?"


def check_text(e: CheckRan, action: str = "") -> str:
    """``SLO check 1/2 after quota failed: escalation ratio 3.1% (SLO 2%)``."""
    said = e.summary or ", ".join(sli_text(s) for s in e.slis)
    late = f" ({e.late_s:.0f} s late)" if e.late_s > 3 else ""
    after = f" after {action}" if action else ""
    return f"SLO check {e.n}/{e.of}{after} {'passed' if e.ok else 'failed'}" + (f": {said}" if said else "") + late


def _planned(e: MitigationPlanned) -> tuple[Span, ...]:
    what = [changes_text(e.changes)] if e.changes else []
    if e.restart:
        what.append(f"then restart {e.restart}")
    notes = [n for n, on in (("dry run", e.dry_run), ("needs a second approver", e.needs_second_approver)) if on]
    head = f"undo of {e.undoes}" if e.undoes else e.action
    tail = (": " + "; ".join(what) if what else "") + (f" ({', '.join(notes)})" if notes else "")
    return (f"{head} planned for {e.tenant}, plan ", Code(e.plan_id), tail)


def _applied(e: MitigationApplied) -> tuple[Span, ...]:
    head = f"undo of {e.action} (plan {e.undoes})" if e.undoes else e.action
    changes = f" ({changes_text(e.changes)})" if e.changes else ""
    until = f", until {_clock(e.until)}" if e.until else ""
    return (f"{head} applied{changes}{until}, confirmed by ", Person(e.confirmed_by))


def _silence(e: SilenceChanged) -> tuple[Span, ...]:
    if e.kind == "silence.created":
        return (f"alert of {e.tenant} silenced until {_clock(e.ends_at)}" + (f": {e.reason}" if e.reason else ""),)
    return ("silence ", Code(e.silence_id), " already gone from Alertmanager" if e.gone else " expired")


def _notice(e: NoticeSent) -> tuple[Span, ...]:
    if e.channel is None:
        return (f"{e.notice} notice for {e.tenant} drafted in the thread (no channel configured)",)
    return (f"{e.notice} notice sent to {e.tenant}",)


def _verdict(e: VerdictReached) -> tuple[Span, ...]:
    step = "isolation triage" if e.step == "isolation" else e.step
    return (f"{step}: {e.headline}",)


def tone(event: Event) -> str:
    """The kind, refined where it alone does not say what happened (an edge picks an icon or a
    style by it): ``check.passed`` / ``check.failed``, ``mitigation.undone``, ``verdict.diagnose``."""
    match event:
        case CheckRan(ok=ok):
            return "check.passed" if ok else "check.failed"
        case MitigationApplied(undoes=undoes) if undoes:
            return "mitigation.undone"
        case VerdictReached(step=step):
            return f"verdict.{step}"
    return event.kind


def describe(event: Event) -> tuple[Span, ...]:
    """The event in words; spans an edge joins in its own markup."""
    match event:
        case IncidentOpened():
            return (f"incident opened {_OPENED_BY[event.source]}: {event.title} ({event.severity})",)
        case TenantsAdded():
            return (f"{len(event.tenants)} more tenant(s) breaching: {', '.join(event.tenants)}",)
        case StateChanged():
            moved = f"{event.previous} → {event.state}" if event.previous else event.state
            return (moved + (f": {event.reason}" if event.reason else ""),)
        case AlertNotified():
            sli = SLI_NAMES.get(event.sli, event.sli or "SLI")
            value = f" at {pct(event.value)}" if event.value is not None else ""
            status = "firing" if event.kind == "alert.firing" else "resolved"
            return (f"{sli} alert {status} for {event.tenant or 'a tenant'}{value}",)
        case CommandRun():
            return (Code(("/flk " if event.via == "slack" else "flk ") + event.text),)
        case Refused():
            plan: tuple[Span, ...] = (" (plan ", Code(event.plan_id), ")") if event.plan_id else ()
            return (f"refused {event.action}: {event.reason}", *plan)
        case VerdictReached():
            return _verdict(event)
        case ThreadOpened():
            return ("incident thread opened",)
        case ExportPosted():
            return (f"escalations exported: {event.filename} ({event.rows:,} rows)",)
        case MitigationPlanned():
            return _planned(event)
        case MitigationApproved():
            return (Person(event.approver), " approved plan ", Code(event.plan_id))
        case MitigationApplied():
            return _applied(event)
        case MitigationStopped():
            return ("plan ", Code(event.plan_id), f" {event.outcome}" + (f": {event.reason}" if event.reason else ""))
        case MitigationResumed():
            return ("plan ", Code(event.plan_id), " resumed after an interrupted attempt")
        case MitigationExtended():
            return ("plan ", Code(event.plan_id), f" extended until {_clock(event.until)}")
        case MitigationExpiryDue(in_place=True):
            return ("plan ", Code(event.plan_id), f" reached its expiry ({_clock(event.until)}): revert or extend")
        case MitigationExpiryDue():
            return ("plan ", Code(event.plan_id), " reached its expiry, already undone")
        case RestartRetried():
            outcome = "done" if event.ok else "failed" + (f": {event.reason}" if event.reason else "")
            return ("restart of plan ", Code(event.plan_id), f" retried: {outcome}")
        case CheckRan():
            return (check_text(event),)
        case NoticeSent():
            return _notice(event)
        case NoticeFailed():
            return (f"{event.notice} notice for {event.tenant} not posted: {event.reason}",)
        case ResolvePosted():
            return ("RESOLVED update posted",)
        case SilenceChanged():
            return _silence(event)
        case AnnotationAdded():
            return ("dashboard annotated",)
        case RcaPosted():
            return (
                ("RCA reminder posted",) if event.kind == "rca.reminded" else (f"RCA draft posted: {event.filename}",)
            )
        case NotePinned():
            return (event.text,)
        case LegacyEvent():
            return (event.text,)
    raise TypeError(f"no description for {type(event).__name__}")  # a new event type without one


def plain(spans: Iterable[Span], people: Mapping[str, str] | None = None) -> str:
    """The spans as plain text (a person by name when ``people`` knows them, else their id)."""
    names = people or {}
    return "".join(
        s if isinstance(s, str) else names.get(s.id, s.id) if isinstance(s, Person) else s.text for s in spans
    )
