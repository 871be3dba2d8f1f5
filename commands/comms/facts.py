"""What the incident's own records say: alerts, verdicts, mitigations, checks, in one read.

Every draft (notices, the RESOLVED update, the RCA) is built from ``IncidentFacts``, so they
all tell the same story. They come from the typed timeline (``commands.timeline``): the alerts'
values (``AlertNotified``), the verdicts with the SLIs their step measured (``VerdictReached``),
the mitigations as applied (``MitigationApplied``, an undo naming the plan it ``undoes``) with
their SLO checks (``CheckRan``). No recorded text is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from commands.comms.cause import CurrentCause, VerdictFact, current_cause
from commands.timeline import Entry, read_timeline
from commands.timeline.describe import change_text, check_text
from commands.timeline.events import (
    SLI_NAMES,
    AlertNotified,
    ChangeRef,
    CheckRan,
    MitigationApplied,
    MitigationApproved,
    MitigationPlanned,
    VerdictReached,
)
from integrations.store import Alert, Incident, Store


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Degradation:
    """One degraded SLI: from an alert (``firing`` / ``resolved``), or ``measured`` by a step
    when no alert was raised (an incident opened by a triage)."""

    tenant: str
    sli: str
    name: str
    value: float | None
    slo: float | None
    status: str
    started_at: datetime  # measured: when it was measured
    ended_at: datetime | None


@dataclass(frozen=True)
class CheckFact:
    at: datetime
    actor: str
    check: CheckRan
    action: str = ""  # the action of the mitigation it checked, when known

    @property
    def ok(self) -> bool:
        return self.check.ok

    @property
    def plan_id(self) -> str | None:
        return self.check.plan_id

    @property
    def text(self) -> str:
        return check_text(self.check, self.action)


@dataclass(frozen=True)
class MitigationFact:
    at: datetime
    actor: str
    applied: MitigationApplied
    planned_by: str
    approved_by: tuple[str, ...] = ()
    checks: tuple[CheckFact, ...] = ()
    undone: bool = False  # a later undo names this plan

    @property
    def kind(self) -> str:
        return "undone" if self.applied.undoes else "applied"

    @property
    def plan_id(self) -> str:
        return self.applied.plan_id

    @property
    def action(self) -> str:
        return self.applied.action

    @property
    def changes(self) -> tuple[ChangeRef, ...]:
        return self.applied.changes

    @property
    def restart(self) -> str | None:
        return self.applied.restart

    @property
    def confirmed_by(self) -> str:
        return self.applied.confirmed_by

    @property
    def target(self) -> str:
        """The objects changed."""
        return ", ".join(dict.fromkeys(c.object for c in self.changes))

    @property
    def verified(self) -> CheckFact | None:
        """The last check after it, when that check passed."""
        return self.checks[-1] if self.checks and self.checks[-1].ok else None

    def describe(self, people: Mapping[str, str] | None = None) -> str:
        """One line: action, changes before → after, who confirmed, whether a check verified it."""
        names = people or {}
        changes = ", ".join(change_text(c) for c in self.changes)
        line = self.action + (f" on {self.target}" if self.target else "") + (f" ({changes})" if changes else "")
        line += f", confirmed by {names.get(self.confirmed_by, self.confirmed_by)}"
        if self.verified is not None:
            line += f", verified at {self.verified.at:%H:%M} UTC"
        elif self.checks:
            line += ", last check still failing"
        return line


@dataclass(frozen=True)
class IncidentFacts:
    incident: Incident
    alerts: tuple[Alert, ...]
    entries: tuple[Entry, ...]
    degraded: tuple[Degradation, ...]
    verdicts: tuple[VerdictFact, ...]
    mitigations: tuple[MitigationFact, ...]
    checks: tuple[CheckFact, ...]
    now: datetime
    by_kind: dict[str, tuple[Entry, ...]] = field(default_factory=dict, repr=False)

    @property
    def tenant(self) -> str:
        i = self.incident
        return i.tenant or ", ".join(i.tenants)

    @property
    def impact_start(self) -> datetime:
        """The first alert's start (when the breach began), else when the incident opened."""
        i = self.incident
        return min([i.opened_at, *(a.starts_at for a in self.alerts), *filter(None, [i.first_alert_at])])

    @property
    def detected_at(self) -> datetime:
        return self.incident.opened_at

    @property
    def mitigated_at(self) -> datetime | None:
        applied = [m.at for m in self.mitigations if m.kind == "applied"]
        return min(applied) if applied else None

    @property
    def resolved_at(self) -> datetime | None:
        return self.incident.resolved_at

    def until(self, moment: datetime | None) -> timedelta | None:
        return None if moment is None else max(moment - self.impact_start, timedelta(0))

    @property
    def time_to_detect(self) -> timedelta | None:
        return self.until(self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return self.until(self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        """To the resolve, or to ``now`` while it is still open (the resolve modal's duration)."""
        return self.until(self.resolved_at or self.now)

    @property
    def root_cause(self) -> CurrentCause | None:
        """The one current root cause (``commands.comms.cause``): every draft states it."""
        return current_cause(self.verdicts, self.entries)

    @property
    def active_mitigations(self) -> list[MitigationFact]:
        """Applied and not undone since."""
        return [m for m in self.mitigations if m.kind == "applied" and not m.undone]

    @property
    def actors(self) -> set[str]:
        return {e.actor for e in self.entries}

    def kind(self, kind: str) -> tuple[Entry, ...]:
        """The entries of one event kind (``notice.sent``, ``note``…), in order."""
        return self.by_kind.get(kind, ())


def _alert_degradations(alerts: Sequence[Alert], entries: Sequence[Entry]) -> list[Degradation]:
    """Each alert with the highest value it was notified with (the webhook events keep each one)."""
    values: dict[str, list[float]] = {}
    slos: dict[str, float] = {}
    for e in entries:
        if isinstance(e.event, AlertNotified):
            if e.event.value is not None:
                values.setdefault(e.event.fingerprint, []).append(e.event.value)
            if e.event.slo is not None:
                slos[e.event.fingerprint] = e.event.slo
    found = []
    for a in alerts:
        sli = a.labels.get("sli", "")
        seen = [*values.get(a.fingerprint, []), *filter(None, [_float(a.annotations.get("value"))])]
        slo = _float(a.annotations.get("slo"))
        found.append(
            Degradation(
                tenant=a.tenant,
                sli=sli,
                name=SLI_NAMES.get(sli, sli or "SLI"),
                value=max(seen) if seen else None,
                slo=slo if slo is not None else slos.get(a.fingerprint),
                status=a.status,
                started_at=a.starts_at,
                ended_at=a.ends_at if a.status == "resolved" else None,
            )
        )
    return found


def _measured(incident: Incident, entries: Sequence[Entry], alerted: set[str]) -> list[Degradation]:
    """For each tenant without an alert: the SLIs its latest measuring step found above their SLO."""
    latest: dict[str, tuple[Entry, VerdictReached]] = {}
    for e in entries:
        if isinstance(e.event, VerdictReached) and e.event.slis:
            tenant = e.event.tenant or incident.tenant
            if tenant and tenant in incident.tenants and tenant not in alerted:
                latest[tenant] = (e, e.event)
    return [
        Degradation(tenant, s.sli, s.name, s.value, s.slo, "measured", e.at, None)
        for tenant, (e, verdict) in latest.items()
        for s in verdict.slis
        if s.breached
    ]


def _mitigations(entries: Sequence[Entry]) -> tuple[list[MitigationFact], list[CheckFact]]:
    """Each applied mitigation (or undo) with who planned and approved it and the checks after it
    (by plan id; a check without one belongs to the latest mitigation before it), undone when a
    later undo names its plan."""
    planned: dict[str, str] = {}
    approvals: dict[str, list[str]] = {}
    applied: list[MitigationFact] = []
    raw_checks: list[tuple[Entry, CheckRan]] = []
    for e in entries:
        match e.event:
            case MitigationPlanned(plan_id=plan_id):
                planned.setdefault(plan_id, e.actor)
            case MitigationApproved(plan_id=plan_id, approver=approver):
                approvals.setdefault(plan_id, []).append(approver)
            case MitigationApplied() as done:
                approvers = done.approvers or tuple(dict.fromkeys(approvals.get(done.plan_id, ())))
                applied.append(MitigationFact(e.at, e.actor, done, planned.get(done.plan_id, e.actor), approvers))
            case CheckRan() as check:
                raw_checks.append((e, check))
    actions = {m.plan_id: m.action for m in applied}
    checks = [CheckFact(e.at, e.actor, c, actions.get(c.plan_id or "", "")) for e, c in raw_checks]
    forward = [m for m in applied if m.kind == "applied"]
    own: dict[str, list[CheckFact]] = {m.plan_id: [] for m in forward}
    for c in checks:
        if c.plan_id:
            owner = c.plan_id if c.plan_id in own else None  # an undo's check belongs to no mitigation
        else:
            owner = next((m.plan_id for m in reversed(forward) if m.at <= c.at), None)
        if owner is not None:
            own[owner].append(c)
    undone = {m.applied.undoes for m in applied if m.applied.undoes}
    return [
        replace(m, checks=tuple(own[m.plan_id]), undone=m.plan_id in undone) if m.kind == "applied" else m
        for m in applied
    ], checks


def build_facts(
    incident: Incident, alerts: Sequence[Alert], entries: Sequence[Entry], *, now: datetime
) -> IncidentFacts:
    """Facts from records already read (pure: the benchmark and the tests call it directly)."""
    by_kind: dict[str, list[Entry]] = {}
    verdicts = []
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
        if isinstance(e.event, VerdictReached):
            verdicts.append(VerdictFact(e.at, e.actor, e.event))
    from_alerts = _alert_degradations(alerts, entries)
    measured = _measured(incident, entries, {d.tenant for d in from_alerts})
    mitigations, checks = _mitigations(entries)
    return IncidentFacts(
        incident=incident,
        alerts=tuple(alerts),
        entries=tuple(entries),
        degraded=(*from_alerts, *measured),
        verdicts=tuple(verdicts),
        mitigations=tuple(mitigations),
        checks=tuple(checks),
        now=now,
        by_kind={k: tuple(v) for k, v in by_kind.items()},
    )


async def load_facts(store: Store, incident_id: int, *, now: datetime) -> IncidentFacts:
    """Read the incident, its alerts and its whole timeline (three short reads)."""
    incident = await store.get(incident_id)
    return build_facts(incident, await store.alerts(incident_id), await read_timeline(store, incident_id), now=now)
