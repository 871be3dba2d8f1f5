"""What happens when Alertmanager says FLKTenantSLOBreach fires or resolves (runbook §1): the
tenant's incident opened (or found) and its triage queued; more tenants than the threshold
starting within the window open one isolation-breach incident instead (the runbook's "other
tenants are isolated" no longer holds); every notification on the incident's timeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from commands.flows.actors import Actor
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.timeline import append
from commands.timeline.events import AlertNotified
from integrations.store import AlertIn, Incident, Store

ALERTMANAGER = Actor("alertmanager")


@dataclass
class Batch:
    firing: list[AlertIn] = field(default_factory=list)
    resolved: list[AlertIn] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _number(value: str | None) -> float | None:
    """An annotation's number (Alertmanager sends text); None when it is not a finite one."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class AlertIntake:
    def __init__(
        self, store: Store, jobs: JobQueue, incidents: IncidentOpener, *, threshold: int, window_s: float
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.incidents = incidents
        self.threshold = threshold
        self.window = timedelta(seconds=window_s)

    async def process(self, batch: Batch) -> None:
        isolation = await self._isolation_incident(batch.firing)
        for alert in batch.firing:
            if isolation is not None and alert.tenant in isolation.tenants:
                await self._record(isolation, alert)
                continue
            title = f"FLKTenantSLOBreach · {alert.tenant}"
            incident, created = await self.incidents.open_for_tenant(alert.tenant, ALERTMANAGER, title, source="alert")
            await self._record(incident, alert)
            if created:
                payload = {"tenant": alert.tenant, "actor": "bot"}
                await self.jobs.enqueue(Job.TRIAGE, payload, incident_id=incident.id, key=f"triage:{incident.id}")
        for alert in batch.resolved:
            incident = await self.store.find_open(alert.tenant)
            if incident is not None:
                await self._record(incident, alert)

    async def _record(self, incident: Incident, alert: AlertIn) -> None:
        update = await self.store.record_alert(incident.id, alert)
        if (update.new and alert.status == "firing") or update.status_changed:
            event = AlertNotified(
                kind=f"alert.{alert.status}",
                fingerprint=alert.fingerprint,
                tenant=alert.tenant,
                sli=alert.labels.get("sli", ""),
                value=_number(alert.annotations.get("value")),
                slo=_number(alert.annotations.get("slo")),
            )
            await append(self.store, incident.id, ALERTMANAGER.id, event)
        # New, changed or repeated: the parent message shows it (a repeat only refreshes "last notification").
        if incident.thread_ts is not None:
            await self.jobs.enqueue(Job.UPDATE_PARENT, {}, incident_id=incident.id)

    async def _isolation_incident(self, firing: list[AlertIn]) -> Incident | None:
        """The isolation incident these alerts belong to, opened when too many tenants start at once."""
        if not firing:
            return None
        fresh = []
        for alert in firing:
            if await self.store.find_open(alert.tenant) is None:
                fresh.append(alert.tenant)
        # Only the isolation incident: reading every open incident per webhook grew with the storm.
        current = next(iter(await self.store.open_incidents(kind="isolation")), None)
        if current is not None and not fresh:
            return current
        if not fresh:
            return None
        recent = {b.tenant for b in await self.store.recent_breach_starts(self.window)}
        starting = sorted(recent | set(fresh))
        if current is None and len(starting) <= self.threshold:
            return None
        tenants = starting if current is None else fresh
        title = f"Isolation breach: {len(starting)} tenants"
        incident, created = await self.store.open_isolation_incident(
            tenants, title=title, channel=self.incidents.channel, actor=ALERTMANAGER.id
        )
        if incident.thread_ts is None:
            await self.jobs.enqueue(Job.POST_PARENT, {}, incident_id=incident.id, key=f"parent:{incident.id}")
        if created:
            await self.jobs.enqueue(Job.ISOLATION_TRIAGE, {}, incident_id=incident.id, key=f"triage:{incident.id}")
        else:
            await self.jobs.enqueue(Job.UPDATE_PARENT, {}, incident_id=incident.id)
        return incident
