"""Opening an incident for a tenant: in the store at once, its Slack thread through a job, so a
terminal on the day Slack is down opens the same incident a running bot later posts."""

from __future__ import annotations

from commands.flows.actors import Actor
from commands.flows.jobs import Job, JobQueue
from integrations.store import Incident, Store


class IncidentOpener:
    def __init__(self, store: Store, jobs: JobQueue, channel: str | None) -> None:
        self.store = store
        self.jobs = jobs
        self.channel = channel

    async def open_for_tenant(
        self, tenant: str, actor: Actor, title: str, *, source: str = "command"
    ) -> tuple[Incident, bool]:
        incident, created = await self.store.open_or_get_incident(
            tenant, title=title, channel=self.channel, actor=actor.id, source=source
        )
        if incident.thread_ts is None:
            await self.jobs.enqueue(Job.POST_PARENT, {}, incident_id=incident.id, key=f"parent:{incident.id}")
        return incident, created
