"""Communications in Slack (runbook §5.1, §6, §7): the tenant notice and the RESOLVED update as
editable modals, the RCA draft as files in the thread, silences. Who may send is governed like
mitigations (the authorised user groups). Every post goes through the outbox: a restart or a
Slack outage loses nothing, and a modal submitted twice posts once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.service.checks import CheckScheduler
from bot.service.runtime import Runtime
from bot.service.telemetry import note_outcome
from bot.slack.authz import Authoriser
from bot.slack.comms_views import Target, notify_view, resolve_view, submitted, tenant_update_chosen
from bot.slack.incidents import IncidentThreads
from bot.slack.mrkdwn import SLACK, escape, is_user, mention
from bot.slack.steps import Respond
from commands.comms import (
    Draft,
    TemplateError,
    Templates,
    annotation,
    investigating,
    load_facts,
    render_rca,
    silence_tenant,
    stakeholder_resolved,
    tenant_resolved,
)
from commands.comms.lifecycle import RCA_REMINDER, already_resolved, incident_for
from commands.comms.rca import RCA_POSTED
from commands.flows.actors import Actor, AuthorityUnavailable
from commands.flows.record import Recorder
from commands.registry import UsageError
from commands.timeline import append
from commands.timeline.events import NoticeSent, RcaPosted, ResolvePosted
from integrations.errors import BackendError
from integrations.store import Incident

log = logging.getLogger(__name__)


@dataclass
class Communications:
    rt: Runtime
    threads: IncidentThreads
    authz: Authoriser
    recorder: Recorder
    checks: CheckScheduler | None = None
    _names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.templates = Templates(self.rt.config.comms.templates_dir, messages=SLACK)

    @property
    def comms(self):  # type: ignore[no-untyped-def]
        return self.rt.config.comms

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.rt.store

    async def _refused(self, user: str, action: str, what: str, incident: Incident | None, respond: Respond) -> bool:
        """True (and audited as refused) when ``user`` is not in an authorised group."""
        if await self.may(user, action, what, incident, fresh=False):
            return False
        await respond(text=f":no_entry: Only members of the authorised groups may {what}.", replace_original=False)
        return True

    async def may(self, user: str, action: str, what: str, incident: Incident | None, *, fresh: bool) -> bool:
        """Whether ``user`` may ``what`` now; a no is counted, audited and on the timeline.
        ``fresh``: asked of Slack, not the cache (every submission that speaks outside the thread)."""
        try:
            allowed = await self.authz.allowed(user, fresh=fresh)
        except AuthorityUnavailable:
            allowed = False
        if allowed:
            return True
        note_outcome("refused")
        tenant = incident.tenant if incident is not None else None
        await self.recorder.refused(
            Actor(user), action, f"may not {what}", tenant, incident.id if incident is not None else None
        )
        return False

    async def people(self, actors: set[str]) -> dict[str, str]:
        """Slack user id -> display name, for the RCA (actors that are not users stay as they are)."""
        for user in sorted(a for a in actors if a not in self._names and is_user(a)):
            try:
                profile = (await self.rt.io.client.users_info(user=user)).get("user") or {}
                self._names[user] = profile.get("real_name") or profile.get("name") or user
            except SlackApiError:
                self._names[user] = user
        return dict(self._names)

    def destination(self, tenant: str) -> str | None:
        return self.comms.tenant_channels.get(tenant)

    # -- /flk notify -------------------------------------------------------------------------

    async def open_notify(
        self, tenant: str | None, user: str, respond: Respond, trigger_id: str, incident_id: int | None = None
    ) -> None:
        incident = await incident_for(self.store, "notify", incident_id=incident_id, tenant=tenant)
        if await self._refused(user, "notify", "send tenant notices", incident, respond):
            return
        facts = await load_facts(self.store, incident.id, now=datetime.now(UTC))
        try:
            draft = investigating(facts, self.comms, tenant=tenant)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        channel = self.destination(draft.tenant or "")
        where = (
            f"To *{draft.tenant}* in <#{channel}>, as you leave it below."
            if channel
            else f":warning: No notification channel is configured for `{draft.tenant}` (`comms.tenant_channels`):"
            " the notice will be posted in the incident thread for you to copy."
        )
        view = notify_view(Target(incident.id, draft.tenant), draft, where)
        await self.rt.io.client.views_open(trigger_id=trigger_id, view=view)

    async def submit_notify(self, view: dict[str, Any], user: str) -> bool:
        """False when ``user`` may no longer send (removed from the group since the modal opened)."""
        target = Target.of(view)
        assert target is not None and target.tenant is not None
        incident = await self.store.get(target.incident_id)
        if not await self.may(user, "notify.send", "send tenant notices", incident, fresh=True):
            return False
        facts = await load_facts(self.store, target.incident_id, now=datetime.now(UTC))
        draft = investigating(facts, self.comms, tenant=target.tenant)
        draft = draft.with_fields(**submitted(view, list(draft.fields)))
        await self.send_notice(facts.incident, target.tenant, "investigating", draft, user, key=f"notice:{view['id']}")
        return True

    async def send_notice(
        self, incident: Incident, tenant: str, notice: str, draft: Draft, user: str, key: str
    ) -> None:
        text = draft.render(self.templates)
        channel = self.destination(tenant)
        if channel is None:
            note = (
                f":warning: No notification channel is configured for `{tenant}` (`comms.tenant_channels` in the"
                f" runbook config), so the {notice} notice was not sent. Here it is to copy:\n\n{text}"
            )
            await self.threads.queue(incident, "post", {"text": note}, dedupe_key=key)
            await append(
                self.store, incident.id, user, NoticeSent(notice=notice, tenant=tenant, channel=None, text=text)
            )
            return
        payload = {
            "channel": channel,
            "text": text,
            "tenant": tenant,
            "notice": notice,
            "user": user,
            "incident_id": incident.id,
        }
        # Not ordered behind the thread: the tenant hears from us even while the thread is backed up.
        await self.store.outbox.enqueue("post_notice", payload, dedupe_key=key)
        self.rt.kick_outbox()

    # -- /flk resolve ------------------------------------------------------------------------

    async def open_resolve(
        self, tenant: str | None, user: str, respond: Respond, trigger_id: str, incident_id: int | None = None
    ) -> None:
        incident = await incident_for(self.store, "resolve", incident_id=incident_id, tenant=tenant, resolved_too=True)
        done = already_resolved(incident)
        if done:
            await respond(text=f":information_source: {done}", replace_original=False)
            return
        if await self._refused(user, "resolve", "resolve incidents", incident, respond):
            return
        facts = await load_facts(self.store, incident.id, now=datetime.now(UTC))
        draft = stakeholder_resolved(facts, self.comms, await self.people(facts.actors))
        stakeholders = self.comms.stakeholder_channel
        where = (
            f"The RESOLVED update goes to the incident thread and <#{stakeholders}>."
            if stakeholders
            else "The RESOLVED update goes to the incident thread (no `comms.stakeholder_channel` configured)."
        )
        offer = None
        if incident.tenant and self.destination(incident.tenant):
            offer = f"Also send {incident.tenant} the resolved update"
        view = resolve_view(Target(incident.id, incident.tenant), draft, where, offer)
        await self.rt.io.client.views_open(trigger_id=trigger_id, view=view)

    async def check_resolve(self, view: dict[str, Any]) -> str | None:
        """Before the ack: why this submission must change nothing (shown on the modal), or None."""
        target = Target.of(view)
        if target is None:
            return "This form is not from flk; open it again with /flk resolve."
        return already_resolved(await self.store.get(target.incident_id))

    async def submit_resolve(self, view: dict[str, Any], user: str) -> bool:
        """False when ``user`` may no longer resolve (removed from the group since the modal opened)."""
        target = Target.of(view)
        assert target is not None
        before = await self.store.get(target.incident_id)
        if already_resolved(before):
            return True  # a second submission raced the first one past the check
        if not await self.may(user, "resolve.submit", "resolve incidents", before, fresh=True):
            return False
        incident = await self.store.set_state(before.id, "resolved", actor=user)
        # Concurrent submissions (two people, two replicas) both get here: one posts RESOLVED.
        key = f"resolve:{incident.id}:{incident.resolved_at.isoformat() if incident.resolved_at else ''}"
        if not await self.store.keys.claim(key):
            return True
        facts = await load_facts(self.store, incident.id, now=datetime.now(UTC))
        people = await self.people(facts.actors)
        draft = stakeholder_resolved(facts, self.comms, people)
        draft = draft.with_fields(**submitted(view, list(draft.fields)))
        text = draft.render(self.templates)
        await self.threads.queue(incident, "post", {"text": text}, dedupe_key=f"{key}:thread")
        stakeholders = self.comms.stakeholder_channel
        if stakeholders:
            await self.store.outbox.enqueue(
                "post_to", {"channel": stakeholders, "text": text}, dedupe_key=f"{key}:stakeholders"
            )
        await self.threads.queue(incident, "update_parent", {})
        await append(
            self.store, incident.id, user, ResolvePosted(fields=draft.fields, stakeholder_channel=stakeholders)
        )
        if incident.tenant and self.destination(incident.tenant) and tenant_update_chosen(view):
            update = tenant_resolved(facts, self.comms, tenant=incident.tenant)
            await self.send_notice(incident, incident.tenant, "resolved", update, user, key=f"{key}:tenant")
        mark = annotation(facts, self.comms, draft)
        await self.store.outbox.enqueue(
            "annotate",
            {
                "incident_id": incident.id,
                "text": mark.text,
                "tags": list(mark.tags),
                "start": mark.start.isoformat(),
                "end": mark.end.isoformat(),
            },
            dedupe_key=f"{key}:annotate",
        )
        await self.store.outbox.enqueue(
            "expire_silences", {"incident_id": incident.id, "user": user}, dedupe_key=f"{key}:silences"
        )
        if self.checks is not None:
            due = (incident.resolved_at or datetime.now(UTC)) + timedelta(seconds=self.comms.rca_reminder_s)
            await self.checks.schedule(incident.id, RCA_REMINDER, due, {"tenant": incident.tenant})
        self.rt.kick_outbox()
        return True

    # -- /flk rca ----------------------------------------------------------------------------

    async def post_rca(self, tenant: str | None, user: str, respond: Respond, incident_id: int | None = None) -> None:
        incident = await incident_for(self.store, "rca", incident_id=incident_id, tenant=tenant, resolved_too=True)
        if incident.thread_ts is None or incident.channel is None:
            await respond(text=f":hourglass: Incident #{incident.id} has no thread yet; try again in a moment.")
            return
        now = datetime.now(UTC)
        facts = await load_facts(self.store, incident.id, now=now)
        people = await self.people(facts.actors | {user})
        try:
            rca = render_rca(facts, self.templates, self.comms, people)
        except TemplateError as exc:
            await respond(text=f":x: The RCA template failed: {exc}", replace_original=False)
            return
        channel, ts = incident.channel, incident.thread_ts
        await self.rt.io.upload(
            channel,
            ts,
            rca.filename,
            rca.document,
            f"RCA draft · incident #{incident.id}",
            f"RCA draft for incident #{incident.id}, from its timeline; asked for by {mention(user)}",
        )
        for who, summary in rca.tenant_summaries.items():
            await self.rt.io.upload(
                channel,
                ts,
                f"rca-summary-{who}-incident-{incident.id}.md",
                summary,
                f"RCA summary for {who} (shareable: no internal details)",
            )
        await append(self.store, incident.id, user, RcaPosted(kind=RCA_POSTED, filename=rca.filename))

    # -- /flk silence ------------------------------------------------------------------------

    async def silence(self, args: dict[str, Any], user: str, respond: Respond) -> None:
        tenant = args["tenant"]
        incident = await incident_for(self.store, "silence", tenant=tenant)
        if await self._refused(user, "silence", "silence alerts", incident, respond):
            return
        alertmanager = self.rt.ctx.alertmanager
        if alertmanager is None:
            raise UsageError("no Alertmanager is configured (FLK_ALERTMANAGER_URL)")
        try:
            created = await silence_tenant(
                self.store, alertmanager, self.rt.config, incident, tenant, args["duration_s"], args["reason"], user
            )
        except BackendError as exc:
            await respond(text=f":x: The silence was not created: {exc.system}: {exc.reason}")
            return
        # The reason is typed text: escaped, so it cannot mention a channel or forge a link.
        said = escape(created.text)
        await self.threads.queue(incident, "post", {"text": f":mute: {said} ({mention(user)})"})
        await respond(text=f":mute: {said}. It is expired when the incident is resolved.")
