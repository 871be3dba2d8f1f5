"""A runbook step's result on the incident: a breaching tenant's report opens (or joins) its
incident and lands on the timeline as its verdict; a report that finds no breach joins only an
incident that is already open, and opens none."""

from __future__ import annotations

from commands.flows.actors import Actor
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.models import Report, Status
from commands.timeline import append
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
