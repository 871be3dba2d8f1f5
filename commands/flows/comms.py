"""What happens when someone sends a tenant notice, resolves an incident, drafts the RCA or
silences an alert (runbook §5.1, §6, §7). Each that speaks outside the thread re-checks the
person at that moment (uncached), is audited, and queues its posts as jobs, once per key; the
text is rendered by the ``Templates`` the front end hands in (Slack's escaping for Slack)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.comms import (
    CreatedSilence,
    Draft,
    IncidentFacts,
    RcaDraft,
    Templates,
    annotation,
    investigating,
    load_facts,
    render_rca,
    silence_tenant,
    stakeholder_resolved,
    tenant_resolved,
)
from commands.comms.lifecycle import already_resolved, incident_for
from commands.comms.rca import RCA_POSTED
from commands.context import Context
from commands.flows.actors import Actor, Refused
from commands.flows.gate import Gate
from commands.flows.jobs import Job, JobQueue
from commands.flows.record import Recorder
from commands.registry import UsageError
from commands.timeline import append
from commands.timeline.events import NoticeSent, RcaPosted, ResolvePosted
from integrations.store import Incident, Store

# Slack user id -> display name, for the drafts (the front end knows how to ask).
People = Callable[[set[str]], Awaitable[dict[str, str]]]


async def _nobody(actors: set[str]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class NoticeDraft:
    incident: Incident
    tenant: str
    draft: Draft
    channel: str | None  # the tenant's channel; None: the draft goes to the thread to copy


@dataclass(frozen=True)
class ResolveDraft:
    incident: Incident
    draft: Draft
    stakeholder_channel: str | None
    # The tenant may be sent its resolved update (it has a channel).
    tenant_update: bool


@dataclass(frozen=True)
class Resolved:
    incident: Incident
    text: str
    # False: another resolve of the same incident got there first and posted it.
    posted: bool


class CommsFlow:
    def __init__(
        self,
        ctx: Context,
        store: Store,
        gate: Gate,
        recorder: Recorder,
        jobs: JobQueue,
        templates: Templates,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.gate = gate
        self.record = recorder
        self.jobs = jobs
        self.templates = templates

    @property
    def comms(self) -> Any:
        return self.ctx.config.comms

    async def authorise(self, actor: Actor, action: str, what: str, incident: Incident | None, *, fresh: bool) -> None:
        tenant = incident.tenant if incident is not None else None
        await self.gate.check(actor, action, what, tenant, incident.id if incident is not None else None, fresh=fresh)

    def destination(self, tenant: str) -> str | None:
        return self.comms.tenant_channels.get(tenant)

    async def _facts(self, incident_id: int) -> IncidentFacts:
        return await load_facts(self.store, incident_id, now=datetime.now(UTC))

    # -- notices ------------------------------------------------------------------------------

    async def notice(self, actor: Actor, tenant: str | None, *, incident_id: int | None = None) -> NoticeDraft:
        """The tenant notice drafted from the incident, for a person to read and edit."""
        incident = await incident_for(self.store, "notify", incident_id=incident_id, tenant=tenant)
        await self.authorise(actor, "notify.open", "send tenant notices", incident, fresh=False)
        try:
            draft = investigating(await self._facts(incident.id), self.comms, tenant=tenant)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        name = draft.tenant or ""
        return NoticeDraft(incident, name, draft, self.destination(name))

    async def send_notice(
        self, actor: Actor, incident_id: int, tenant: str, fields: dict[str, str] | None, *, key: str
    ) -> NoticeDraft:
        """Send the investigating notice (with the person's edits); once per ``key``."""
        incident = await self.store.get(incident_id)
        await self.authorise(actor, "notify.send", "send tenant notices", incident, fresh=True)
        draft = investigating(await self._facts(incident_id), self.comms, tenant=tenant)
        if fields:
            draft = draft.with_fields(**fields)
        await self._queue_notice(actor, incident, tenant, "investigating", draft, key)
        return NoticeDraft(incident, tenant, draft, self.destination(tenant))

    async def _queue_notice(
        self, actor: Actor, incident: Incident, tenant: str, notice: str, draft: Draft, key: str
    ) -> None:
        text = draft.render(self.templates)
        channel = self.destination(tenant)
        await self.record.audit(actor, "notice.send", tenant, incident.id, {"notice": notice, "channel": channel})
        if channel is None:
            payload = {"notice": "no_channel", "kind": notice, "tenant": tenant, "text": text}
            await self.jobs.enqueue(Job.THREAD_NOTICE, payload, incident_id=incident.id, key=key)
            sent = NoticeSent(notice=notice, tenant=tenant, channel=None, text=text)
            await append(self.store, incident.id, actor.id, sent)
            return
        payload = {
            "channel": channel,
            "text": text,
            "tenant": tenant,
            "notice": notice,
            "user": actor.id,
            "incident_id": incident.id,
        }
        # Not ordered behind the thread: the tenant hears from us even while the thread is backed up.
        await self.jobs.enqueue(Job.POST_NOTICE, payload, key=key)

    # -- resolve ------------------------------------------------------------------------------

    async def resolve_draft(
        self, actor: Actor, tenant: str | None, *, incident_id: int | None = None, people: People = _nobody
    ) -> ResolveDraft:
        incident = await incident_for(self.store, "resolve", incident_id=incident_id, tenant=tenant, resolved_too=True)
        done = already_resolved(incident)
        if done:
            raise Refused(done)
        await self.authorise(actor, "resolve.open", "resolve incidents", incident, fresh=False)
        facts = await self._facts(incident.id)
        draft = stakeholder_resolved(facts, self.comms, await people(facts.actors))
        offer = bool(incident.tenant and self.destination(incident.tenant))
        return ResolveDraft(incident, draft, self.comms.stakeholder_channel, offer)

    async def resolve(
        self,
        actor: Actor,
        incident_id: int,
        fields: dict[str, str] | None,
        *,
        tenant_update: bool,
        people: People = _nobody,
    ) -> Resolved:
        """Resolve the incident: RESOLVED in the thread and to the stakeholders (once, however many
        resolve at once), the parent marked, the tenant's update if asked, the Grafana
        annotation, the incident's silences expired, and the RCA reminder."""
        before = await self.store.get(incident_id)
        done = already_resolved(before)
        if done:
            raise Refused(done)
        await self.authorise(actor, "resolve.submit", "resolve incidents", before, fresh=True)
        incident = await self.store.set_state(before.id, "resolved", actor=actor.id, reason="resolved")
        facts = await self._facts(incident.id)
        drafted = stakeholder_resolved(facts, self.comms, await people(facts.actors))
        draft = drafted.with_fields(**fields) if fields else drafted
        edited = tuple(k for k, v in draft.fields.items() if drafted.fields.get(k) != v)
        text = draft.render(self.templates)
        # Concurrent resolves (two people, two replicas) all get here: one posts RESOLVED.
        key = f"resolve:{incident.id}:{incident.resolved_at.isoformat() if incident.resolved_at else ''}"
        if not await self.store.keys.claim(key):
            return Resolved(incident, text, posted=False)
        await self.record.audit(actor, "incident.resolved", incident.tenant, incident.id, {"fields": draft.fields})
        await self.jobs.enqueue(Job.POST, {"text": text}, incident_id=incident.id, key=f"{key}:thread")
        stakeholders = self.comms.stakeholder_channel
        if stakeholders:
            await self.jobs.enqueue(Job.POST_TO, {"channel": stakeholders, "text": text}, key=f"{key}:stakeholders")
        await self.jobs.enqueue(Job.UPDATE_PARENT, {}, incident_id=incident.id)
        await append(
            self.store,
            incident.id,
            actor.id,
            ResolvePosted(fields=draft.fields, stakeholder_channel=stakeholders, edited=edited),
        )
        if incident.tenant and self.destination(incident.tenant) and tenant_update:
            update = tenant_resolved(facts, self.comms, tenant=incident.tenant)
            await self._queue_notice(actor, incident, incident.tenant, "resolved", update, f"{key}:tenant")
        mark = annotation(facts, self.comms, draft)
        payload = {
            "incident_id": incident.id,
            "text": mark.text,
            "tags": list(mark.tags),
            "start": mark.start.isoformat(),
            "end": mark.end.isoformat(),
        }
        await self.jobs.enqueue(Job.ANNOTATE, payload, key=f"{key}:annotate")
        await self.jobs.enqueue(
            Job.EXPIRE_SILENCES, {"incident_id": incident.id, "user": actor.id}, key=f"{key}:silences"
        )
        due = (incident.resolved_at or datetime.now(UTC)) + timedelta(seconds=self.comms.rca_reminder_s)
        await self.jobs.enqueue(
            Job.RCA_REMINDER,
            {"tenant": incident.tenant},
            key=f"{key}:rca-reminder",
            incident_id=incident.id,
            not_before=due,
        )
        return Resolved(incident, text, posted=True)

    # -- RCA and silences ---------------------------------------------------------------------

    async def rca(
        self, actor: Actor, tenant: str | None, *, incident_id: int | None = None, people: People = _nobody
    ) -> tuple[Incident, RcaDraft]:
        """The RCA draft and the tenant summaries, from the timeline (read-only: the front end
        shows or uploads them, then calls ``rca_posted``)."""
        incident = await incident_for(self.store, "rca", incident_id=incident_id, tenant=tenant, resolved_too=True)
        facts = await self._facts(incident.id)
        return incident, render_rca(facts, self.templates, self.comms, await people(facts.actors | {actor.id}))

    async def rca_posted(self, actor: Actor, incident: Incident, filename: str) -> None:
        await append(self.store, incident.id, actor.id, RcaPosted(kind=RCA_POSTED, filename=filename))

    async def silence(self, actor: Actor, tenant: str, duration_s: int, reason: str) -> tuple[Incident, CreatedSilence]:
        incident = await incident_for(self.store, "silence", tenant=tenant)
        await self.authorise(actor, "silence.create", "silence alerts", incident, fresh=True)
        alertmanager = self.ctx.alertmanager
        if alertmanager is None:
            raise UsageError("no Alertmanager is configured (FLK_ALERTMANAGER_URL)")
        created = await silence_tenant(
            self.store, alertmanager, self.ctx.config, incident, tenant, duration_s, reason, actor.id
        )
        await self.record.audit(actor, "silence.created", tenant, incident.id, {"silence_id": created.id})
        return incident, created
