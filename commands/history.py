"""Memory of past incidents: a tenant's earlier incidents (last 90 days) read from the store, each
with the cause found, the mitigations applied and whether their SLO checks passed; and, when the
cause found now was found before, what fixed it then. The store is the truth: nothing here is
kept in memory, so it reads the same after a restart and on every replica."""

from __future__ import annotations

from datetime import timedelta

from commands.models import History, PastChange, PastIncident, PastMitigation, Recurrence, Report
from commands.timeline.events import CheckRan, MitigationApplied, VerdictReached
from commands.timeline.read import read_timeline
from integrations.store import Incident, Store, StoreUnavailable

DAYS = 90
# At most this many earlier incidents are read and shown (the newest).
LIMIT = 10


async def past_incident(store: Store, incident: Incident) -> PastIncident:
    """One incident as memory keeps it, from its typed timeline."""
    entries = await read_timeline(store, incident.id)
    verdicts = [e.event for e in entries if isinstance(e.event, VerdictReached) and e.event.scenario]
    diagnosed = [v for v in verdicts if v.step == "diagnose"]
    found = (diagnosed or verdicts or [None])[-1]
    applied = [e.event for e in entries if isinstance(e.event, MitigationApplied)]
    undone = {a.undoes for a in applied if a.undoes}
    checks: dict[str, CheckRan] = {}
    for e in entries:
        if isinstance(e.event, CheckRan) and e.event.plan_id:
            checks[e.event.plan_id] = e.event  # the last one after each mitigation counts
    mitigations = tuple(
        PastMitigation(
            plan_id=a.plan_id,
            action=a.action,
            changes=tuple(PastChange(c.key, c.before, c.after) for c in a.changes),
            checks_passed=checks[a.plan_id].ok if a.plan_id in checks else None,
            undone=a.plan_id in undone,
        )
        for a in applied
        if not a.undoes
    )
    return PastIncident(
        id=incident.id,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        scenario=found.scenario if found else incident.scenario,
        cause=found.cause if found else None,
        mitigations=mitigations,
    )


def _same_cause(past: PastIncident, scenario: str | None, cause: str | None) -> bool:
    if scenario is None or past.scenario != scenario:
        return False
    return cause is None or past.cause is None or past.cause == cause


def recurrence(incidents: tuple[PastIncident, ...], scenario: str | None, cause: str | None) -> Recurrence | None:
    """The newest earlier incident with the same cause, with the mitigation that passed its checks
    then (the last such one), if any."""
    for past in incidents:
        if _same_cause(past, scenario, cause):
            fixes = [m for m in past.mitigations if m.checks_passed]
            return Recurrence(past, fixes[-1] if fixes else None)
    return None


async def history(
    store: Store,
    tenant: str,
    *,
    scenario: str | None = None,
    cause: str | None = None,
    exclude: int | None = None,
) -> History:
    """The tenant's earlier incidents, newest first; a store that cannot be read is said, not raised."""
    try:
        found = await store.tenant_incidents(tenant, timedelta(days=DAYS), limit=LIMIT + 1)
        past = tuple([await past_incident(store, i) for i in found if i.id != exclude][:LIMIT])
    except StoreUnavailable as exc:
        return History(DAYS, error=f"the incident store could not be read ({exc})"[:200])
    return History(DAYS, past, recurrence(past, scenario, cause))


async def remember(store: Store, report: Report) -> Report:
    """``report`` with the tenant's history, compared with the cause it names (the tenant's open
    incident, which the report joins, is not history)."""
    verdict = report.verdict
    try:
        current = await store.find_open(report.tenant)
    except StoreUnavailable:
        current = None
    report.history = await history(
        store,
        report.tenant,
        scenario=verdict.scenario if verdict else None,
        cause=verdict.cause if verdict else None,
        exclude=current.id if current else None,
    )
    return report
