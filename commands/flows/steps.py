"""A runbook step's result on the incident: a breaching tenant's report opens (or joins) its
incident and lands on the timeline as its verdict; a report that finds no breach joins only an
incident that is already open, and opens none."""

from __future__ import annotations

from typing import get_args

from commands.diagnose import Lead
from commands.flows.actors import Actor
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.models import Report, Scenario, Status
from commands.timeline import append, read_timeline
from commands.timeline.events import VerdictReached
from commands.timeline.steps import verdict_reached
from integrations.store import Incident, Store


class StepRecords:
    def __init__(self, store: Store, jobs: JobQueue, incidents: IncidentOpener) -> None:
        self.store = store
        self.jobs = jobs
        self.incidents = incidents

    async def record(self, actor: Actor, report: Report, *, thread: tuple[str, str] | None = None) -> Incident | None:
        """``thread``: the message the step was shown in, the parent of an incident it opens."""
        incident = await self.store.find_open(report.tenant)
        if incident is None and report.status is Status.BREACH:
            title = f"{report.tenant}: {report.step} by {actor.id}"
            incident, _ = await self.incidents.open_for_tenant(report.tenant, actor, title, thread=thread)
        if incident is None:
            return None
        await self.record_on(incident, actor, report)
        return incident

    async def record_on(self, incident: Incident, actor: Actor, report: Report) -> None:
        """The report's verdict on ``incident``'s timeline; the scenario it names onto the incident."""
        verdict = verdict_reached(report)
        await append(self.store, incident.id, actor.id, verdict)
        if verdict.scenario and incident.kind == "tenant":
            await self.store.update_incident(incident.id, scenario=verdict.scenario)
            await self.jobs.enqueue(Job.UPDATE_PARENT, {}, incident_id=incident.id)


def _scenario(value: str | None) -> Scenario | None:
    return value if value in get_args(Scenario) else None  # type: ignore[return-value]


async def triage_lead(store: Store, incident_id: int) -> Lead | None:
    """The incident's latest triage verdict as a diagnosis is steered by it (None: no triage)."""
    for e in reversed(await read_timeline(store, incident_id)):
        if isinstance(e.event, VerdictReached) and e.event.step == "triage":
            v = e.event
            pair = tuple(s for x in v.inconclusive if (s := _scenario(x)))
            return Lead(_scenario(v.scenario), e.at, v.confidence, _scenario(v.runner_up), pair)
    return None
