"""The jobs and scheduled work behind communications: a notice to a tenant's
channel, a post to the stakeholder channel, the Grafana annotation and the silences expired on
resolve (retried by the job queue while Grafana or Alertmanager are down, the trouble said once in
the thread), the 48 h RCA reminder, and messages pinned into the timeline with a reaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.service.runtime import Runtime
from bot.slack.incidents import IncidentThreads
from bot.slack.mrkdwn import escape, mention, plain_text
from bot.slack.posted import marker, posted_before
from commands.comms import expire_silences
from commands.comms.lifecycle import OverdueRca, overdue_rca
from commands.comms.templates import duration
from commands.timeline import append
from commands.timeline.events import AnnotationAdded, NotePinned, NoticeFailed, NoticeSent, RcaPosted
from integrations.errors import BackendError
from integrations.store import JobItem

log = logging.getLogger(__name__)

# Errors that no retry cures: say so in the thread at once instead of retrying for an hour.
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action", "ekm_access_denied"}
SYSTEMS = {"annotate": "Grafana annotation", "expire_silences": "Alertmanager silences"}


def reminder_text(due: OverdueRca) -> str:
    """The 48 h reminder of runbook §7 in the incident thread."""
    since = duration(due.resolved_for) if due.resolved_for is not None else "a while"
    who = escape(due.tenant or "the isolation breach")
    command = f"/flk rca {due.tenant}" if due.tenant else "/flk rca"
    return (
        f":memo: The RCA for incident #{due.incident_id} ({who}) is due: resolved {since} ago and no RCA "
        f"has been posted (runbook §7). `{escape(command)}` drafts it from the timeline."
    )


class CommsOps:
    def __init__(self, rt: Runtime, threads: IncidentThreads) -> None:
        self.rt = rt
        self.threads = threads
        self.store = threads.store

    async def _say(self, incident_id: int, text: str, dedupe_key: str | None = None) -> None:
        incident = await self.store.get(incident_id)
        await self.threads.queue(incident, "post", {"text": text}, dedupe_key=dedupe_key)

    async def op_post_notice(self, item: JobItem) -> None:
        p = item.payload
        incident_id, tenant, notice, channel = p["incident_id"], p["tenant"], p["notice"], p["channel"]
        kind, incident = f"notice:{notice}:{tenant}", await self.store.get(incident_id)
        try:
            # A retry may follow a post the store never recorded (a blip after Slack's answer).
            if item.attempts <= 1 or not await posted_before(self.rt.io, channel, incident, kind, item.created_at):
                await self.rt.io.post(channel, p["text"], metadata=marker(incident, kind))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error not in PERMANENT:
                raise  # the outbox retries it
            await append(self.store, incident_id, p["user"], NoticeFailed(notice=notice, tenant=tenant, reason=error))
            await self._say(
                incident_id,
                (
                    f":x: The {notice} notice could not be posted to <#{channel}>: `{error}`. Invite the bot to the "
                    f"channel and send it again, or copy it from here:\n\n{p['text']}"
                ),
            )
            return
        sent = NoticeSent(notice=notice, tenant=tenant, channel=channel, text=p["text"])
        await append(self.store, incident_id, p["user"], sent)
        await self._say(
            incident_id,
            f":incoming_envelope: The {notice} notice was sent to <#{channel}> by {mention(p['user'])}:\n\n{p['text']}",
            dedupe_key=f"notice-sent:{item.id}",
        )

    async def op_post_to(self, item: JobItem) -> None:
        await self.rt.io.post(item.payload["channel"], item.payload["text"])

    async def _trouble(self, item: JobItem, reason: str) -> None:
        """Said in the thread on the first failure only; the outbox keeps retrying."""
        if item.attempts <= 1:
            what = SYSTEMS[item.op]
            await self._say(
                item.payload["incident_id"],
                f":warning: {what} failed: {escape(reason)}."
                " The incident is resolved; this part is retried in the background.",
            )

    async def op_annotate(self, item: JobItem) -> None:
        p = item.payload
        grafana = self.rt.ctx.grafana
        if grafana is None:
            await self._say(p["incident_id"], ":information_source: No Grafana annotation: FLK_GRAFANA_URL is not set.")
            return
        try:
            annotation_id = await grafana.annotate(
                p["text"],
                start=datetime.fromisoformat(p["start"]),
                end=datetime.fromisoformat(p["end"]),
                tags=p["tags"],
                dashboard_uid=self.rt.config.comms.grafana_dashboard_uid,
            )
        except BackendError as exc:
            await self._trouble(item, f"{exc.system}: {exc.reason}")
            raise
        await append(self.store, p["incident_id"], "bot", AnnotationAdded(annotation_id=str(annotation_id)))
        if item.attempts > 1:
            await self._say(p["incident_id"], ":white_check_mark: Grafana annotation added after all.")

    async def op_expire_silences(self, item: JobItem) -> None:
        p = item.payload
        alertmanager = self.rt.ctx.alertmanager
        if alertmanager is None:
            return  # no Alertmanager: no silence can have been created
        outcome = await expire_silences(self.store, alertmanager, p["incident_id"], p.get("user", "bot"))
        if outcome.failed:
            reasons = "; ".join(sorted(set(outcome.failed.values())))
            await self._trouble(item, f"{len(outcome.failed)} silence(s) not expired ({reasons})")
            raise BackendError("Alertmanager", reasons)
        done = len(outcome.expired) + len(outcome.unknown)
        if done:
            await self._say(
                p["incident_id"], f":bell: {done} silence(s) of this incident expired: alerts are live again."
            )

    async def remind_rca(self, job: JobItem, late_s: float) -> dict[str, Any]:
        assert job.incident_id is not None  # the reminder is queued for an incident
        due = await overdue_rca(self.store, job.incident_id, now=datetime.now(UTC))
        if due is None:
            return {"reminded": False, "reason": "RCA posted"}
        await self._say(job.incident_id, reminder_text(due), dedupe_key=f"rca-reminder-job:{job.id}")
        await append(self.store, job.incident_id, "bot", RcaPosted(kind="rca.reminded"))
        return {"reminded": True}

    async def on_reaction(self, event: dict[str, Any]) -> None:
        """A message in an incident thread marked with the configured reaction joins the timeline."""
        item = event.get("item") or {}
        if event.get("reaction") != self.rt.config.comms.timeline_reaction or item.get("type") != "message":
            return
        channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
        message = await self._message(channel, ts)
        if message is None:
            return
        incident = await self.store.find_by_thread(channel, message.get("thread_ts") or ts)
        if incident is None or not await self.rt.claim(f"note:{channel}:{ts}"):
            return  # not an incident thread, or already on the timeline
        author = str(message.get("user") or message.get("bot_id") or "someone")
        note = NotePinned(
            text=plain_text(str(message.get("text", "")))[:3000],
            author=author,
            message_ts=ts,
            pinned_by=str(event.get("user") or ""),
        )
        await append(self.store, incident.id, author, note)

    async def _message(self, channel: str, ts: str) -> dict[str, Any] | None:
        try:
            answer = await self.rt.io.client.conversations_replies(
                channel=channel, ts=ts, oldest=ts, latest=ts, inclusive=True
            )
        except SlackApiError as exc:
            log.warning("pinned message %s not readable: %s", ts, exc.response.get("error"))
            return None
        return next((m for m in answer.get("messages", []) if m.get("ts") == ts), None)
