"""Incidents in Slack: one thread per incident, opened through the outbox so that a Slack outage
or a restart loses nothing, and the work (triage) queued behind the thread's parent post."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.slack.posted import marker, posted_before
from bot.slack.render_incident import parent_message
from commands.flows.actors import Actor
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import JobQueue
from commands.flows.steps import StepRecords
from commands.models import Report
from commands.timeline import append
from commands.timeline.events import ThreadOpened
from integrations.store import Incident, JobItem, Store

if TYPE_CHECKING:
    from bot.service.runtime import Runtime

log = logging.getLogger(__name__)


class IncidentThreads:
    def __init__(self, rt: Runtime, store: Store) -> None:
        self.rt = rt
        self.store = store
        self._thread_ready: dict[int, asyncio.Event] = {}
        jobs = JobQueue(store, rt.kick_jobs)
        self.opener = IncidentOpener(store, jobs, rt.settings.incident_channel)
        self.steps = StepRecords(store, jobs, self.opener)

    @property
    def channel(self) -> str:
        return self.rt.settings.incident_channel

    def dashboard(self, tenant: str | None) -> str | None:
        return self.rt.config.grafana_dashboard.format(tenant=tenant) if tenant else None

    async def open_for_tenant(
        self, tenant: str, actor: str, title: str, *, source: str = "command"
    ) -> tuple[Incident, bool]:
        """The tenant's open incident, or a new one opened by ``actor`` (``source``: an ``alert`` or
        a person's ``command``) with its parent message queued."""
        return await self.opener.open_for_tenant(tenant, Actor(actor), title, source=source)

    async def queue(self, incident: Incident, op: str, payload: dict, dedupe_key: str | None = None) -> None:
        await self.store.jobs.enqueue(op, payload, incident_id=incident.id, dedupe_key=dedupe_key)
        self.rt.kick_jobs()

    async def thread(self, incident_id: int) -> tuple[str, str]:
        incident = await self.store.get(incident_id)
        if incident.thread_ts is None or incident.channel is None:
            raise RuntimeError(f"incident {incident_id} has no thread yet")
        return incident.channel, incident.thread_ts

    # -- outbox operations ------------------------------------------------------------

    async def op_post_parent(self, item: JobItem) -> None:
        assert item.incident_id is not None
        incident = await self.store.get(item.incident_id)
        if incident.thread_ts is not None:
            return
        alerts = await self.store.alerts(incident.id)
        text, blocks = parent_message(incident, alerts, self.dashboard(incident.tenant))
        channel = incident.channel or self.channel
        # A retry may follow a post whose ts the store never got: find that post, not a second one.
        ts = (
            await posted_before(self.rt.io, channel, incident, "parent", item.created_at) if item.attempts > 1 else None
        )
        if ts is None:
            ts = str((await self.rt.io.post(channel, text, blocks, metadata=marker(incident, "parent")))["ts"])
        await self.store.set_thread(incident.id, channel, ts)
        await append(self.store, incident.id, "bot", ThreadOpened(ts=ts, channel=channel))

    async def op_update_parent(self, item: JobItem) -> None:
        assert item.incident_id is not None
        incident = await self.store.get(item.incident_id)
        if incident.thread_ts is None or incident.channel is None:
            raise RuntimeError("parent not posted yet")
        alerts = await self.store.alerts(incident.id)
        text, blocks = parent_message(incident, alerts, self.dashboard(incident.tenant))
        await self.rt.io.update(incident.channel, incident.thread_ts, text, blocks)

    async def op_post(self, item: JobItem) -> None:
        assert item.incident_id is not None
        channel, ts = await self.thread(item.incident_id)
        await self.rt.io.post(channel, item.payload.get("text", ""), thread_ts=ts)

    async def op_post_blocks(self, item: JobItem) -> None:
        assert item.incident_id is not None
        channel, ts = await self.thread(item.incident_id)
        await self.rt.io.post(channel, item.payload.get("text", ""), item.payload.get("blocks"), thread_ts=ts)

    async def record_report(self, incident: Incident, report: Report, actor: str) -> None:
        await self.steps.record_on(incident, Actor(actor), report)
