"""Opening an incident for a tenant: in the store at once, its Slack thread through a job, so a
terminal on the day Slack is down opens the same incident a running bot later posts."""

from __future__ import annotations

from commands.flows.actors import Actor
from commands.flows.jobs import Job, JobQueue
from commands.timeline import append
from commands.timeline.events import ThreadOpened
from integrations.store import Incident, Store


class IncidentOpener:
    def __init__(self, store: Store, jobs: JobQueue, channel: str | None) -> None:
        self.store = store
        self.jobs = jobs
        self.channel = channel

    async def open_for_tenant(
        self,
        tenant: str,
        actor: Actor,
        title: str,
        *,
        source: str = "command",
        thread: tuple[str, str] | None = None,
    ) -> tuple[Incident, bool]:
        """The tenant's open incident, or a new one. ``thread`` (channel, ts): a message already
        posted that becomes the new incident's parent (a triage's checklist that found a breach),
        so that the incident's thread holds the report that opened it."""
        incident, created = await self.store.open_or_get_incident(
            tenant, title=title, channel=thread[0] if thread else self.channel, actor=actor.id, source=source
        )
        if created and thread is not None:
            incident = await self.store.set_thread(incident.id, *thread)
            await append(self.store, incident.id, "bot", ThreadOpened(channel=thread[0], ts=thread[1]))
            await self.jobs.enqueue(Job.UPDATE_PARENT, {}, incident_id=incident.id)
        elif incident.thread_ts is None:
            await self.jobs.enqueue(Job.POST_PARENT, {}, incident_id=incident.id, key=f"parent:{incident.id}")
        return incident, created
