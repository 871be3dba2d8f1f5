"""Communications in Slack (runbook §5.1, §6, §7): the tenant notice and the RESOLVED update as
editable modals, the RCA draft as files in the thread, silences. What is decided (who may, what
is sent, once) is the flow's (``commands.flows.comms``); here the modals, the names and the
uploads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.service.runtime import Runtime
from bot.service.telemetry import note_outcome
from bot.slack.comms_views import Target, notify_view, resolve_view, tenant_update_chosen, typed_fields
from bot.slack.incidents import IncidentThreads
from bot.slack.mrkdwn import escape, is_user, mention
from bot.slack.steps import Respond
from commands.comms import TemplateError
from commands.comms.lifecycle import already_resolved
from commands.flows.actors import Actor, Refused
from commands.flows.comms import CommsFlow
from integrations.errors import BackendError

log = logging.getLogger(__name__)


@dataclass
class Communications:
    rt: Runtime
    threads: IncidentThreads
    flow: CommsFlow
    _names: dict[str, str] = field(default_factory=dict)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.rt.store

    async def _refused(self, respond: Respond, exc: Refused) -> None:
        note_outcome("refused")
        await respond(text=f":no_entry: {exc}", replace_original=False)

    async def people(self, actors: set[str]) -> dict[str, str]:
        """Slack user id -> display name, for the RCA (actors that are not users stay as they are)."""
        for user in sorted(a for a in actors if a not in self._names and is_user(a)):
            try:
                profile = (await self.rt.io.client.users_info(user=user)).get("user") or {}
                self._names[user] = profile.get("real_name") or profile.get("name") or user
            except SlackApiError:
                self._names[user] = user
        return dict(self._names)

    # -- /flk notify -------------------------------------------------------------------------

    async def open_notify(
        self, tenant: str | None, user: str, respond: Respond, trigger_id: str, incident_id: int | None = None
    ) -> None:
        try:
            notice = await self.flow.notice(Actor(user), tenant, incident_id=incident_id)
        except Refused as exc:
            await self._refused(respond, exc)
            return
        where = (
            f"To *{escape(notice.tenant)}* in <#{notice.channel}>, as you leave it below."
            if notice.channel
            else f":warning: No notification channel is configured for `{escape(notice.tenant)}`"
            " (`comms.tenant_channels`): the notice will be posted in the incident thread for you to copy."
        )
        view = notify_view(Target(notice.incident.id, notice.tenant), notice.draft, where)
        await self.rt.io.client.views_open(trigger_id=trigger_id, view=view)

    async def submit_notify(self, view: dict[str, Any], user: str) -> None:
        target = Target.of(view)
        assert target is not None and target.tenant is not None
        fields = typed_fields(view)
        await self.flow.send_notice(Actor(user), target.incident_id, target.tenant, fields, key=f"notice:{view['id']}")

    # -- /flk resolve ------------------------------------------------------------------------

    async def open_resolve(
        self, tenant: str | None, user: str, respond: Respond, trigger_id: str, incident_id: int | None = None
    ) -> None:
        try:
            ready = await self.flow.resolve_draft(Actor(user), tenant, incident_id=incident_id, people=self.people)
        except Refused as exc:
            await respond(text=f":information_source: {exc}", replace_original=False)
            return
        incident, stakeholders = ready.incident, ready.stakeholder_channel
        where = (
            f"The RESOLVED update goes to the incident thread and <#{stakeholders}>."
            if stakeholders
            else "The RESOLVED update goes to the incident thread (no `comms.stakeholder_channel` configured)."
        )
        offer = f"Also send {incident.tenant} the resolved update" if ready.tenant_update else None
        view = resolve_view(Target(incident.id, incident.tenant), ready.draft, where, offer)
        await self.rt.io.client.views_open(trigger_id=trigger_id, view=view)

    async def check_resolve(self, view: dict[str, Any]) -> str | None:
        """Before the ack: why this submission must change nothing (shown on the modal), or None."""
        target = Target.of(view)
        if target is None:
            return "This form is not from flk; open it again with /flk resolve."
        return already_resolved(await self.store.get(target.incident_id))

    async def submit_resolve(self, view: dict[str, Any], user: str) -> None:
        target = Target.of(view)
        assert target is not None
        fields = typed_fields(view)
        try:
            await self.flow.resolve(
                Actor(user), target.incident_id, fields, tenant_update=tenant_update_chosen(view), people=self.people
            )
        except Refused as exc:
            if "already resolved" not in str(exc):
                raise
        self.rt.kick_jobs()

    # -- /flk rca ----------------------------------------------------------------------------

    async def post_rca(self, tenant: str | None, user: str, respond: Respond, incident_id: int | None = None) -> None:
        try:
            incident, rca = await self.flow.rca(Actor(user), tenant, incident_id=incident_id, people=self.people)
        except TemplateError as exc:
            await respond(text=f":x: The RCA template failed: {exc}", replace_original=False)
            return
        if incident.thread_ts is None or incident.channel is None:
            await respond(text=f":hourglass: Incident #{incident.id} has no thread yet; try again in a moment.")
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
        await self.flow.rca_posted(Actor(user), incident, rca.filename)

    # -- /flk silence ------------------------------------------------------------------------

    async def silence(self, args: dict[str, Any], user: str, respond: Respond) -> None:
        try:
            incident, created = await self.flow.silence(Actor(user), args["tenant"], args["duration_s"], args["reason"])
        except Refused as exc:
            await self._refused(respond, exc)
            return
        except BackendError as exc:
            await respond(text=f":x: The silence was not created: {exc.system}: {exc.reason}")
            return
        # The reason is typed text: escaped, so it cannot mention a channel or forge a link.
        said = escape(created.text)
        await self.threads.queue(incident, "post", {"text": f":mute: {said} ({mention(user)})"})
        await respond(text=f":mute: {said}. It is expired when the incident is resolved.")
