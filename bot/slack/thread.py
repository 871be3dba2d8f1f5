"""How the runbook's thread notices look in Slack: the jobs that ``QueuedThread`` queued, rendered
and sent (a plan with its buttons, its state edited into it, the outcome, a check's result)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError

from bot.slack.mrkdwn import escape, mention
from bot.slack.render_mitigation import applied_blocks, expiry_blocks, partial_blocks, plan_blocks
from bot.slack.sender import SlackIO
from commands import mitigate
from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import CheckReported, ExpiryDue
from integrations.store import JobItem, PlanRecord, Store

log = logging.getLogger(__name__)
# Slack's answers for a message that no longer exists to be edited.
GONE = {"message_not_found", "cant_update_message", "channel_not_found", "is_archived"}


def _delay(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def checks_line(delays: list[float], undo: bool) -> str:
    if undo:
        return "the previous values are back; no verification checks for an undo"
    if not delays:
        return "no verification checks scheduled"
    shown = ", ".join(_delay(d) for d in delays)
    return f":stopwatch: the SLO will be checked {shown} after this change; the last check escalates if it fails"


def plan_status(record: PlanRecord, by: str | None, reason: str) -> tuple[str | None, str]:
    """(final status, note): a final status removes the plan's buttons, a note keeps them."""
    who = mention(by) if by else "someone"
    # The reason quotes ConfigMap values and API errors: text, never markup.
    reason = escape(reason)
    if record.state == "approved":
        return None, f":ballot_box_with_check: approved by {who}; waiting for a second, different approver"
    final = {
        "applied": f":white_check_mark: applied by {who}",
        "undone": f":white_check_mark: applied by {who}",
        "partial": f":warning: {reason}",
        "conflict": f":x: {reason}",
        "failed": f":x: {reason}",
        "cancelled": f":no_entry_sign: cancelled by {who}",
        "expired": ":hourglass: expired: re-plan",
    }
    return final.get(record.state), ""


def check_text(c: CheckReported) -> str:
    late = f" (ran {c.late_s:.0f} s late: the bot was down)" if c.late_s > 3 else ""
    icon = ":white_check_mark:" if c.ok else ":x:"
    after = f"after `{c.action}`" if c.action else "asked for by hand"
    text = f"{icon} SLO check {c.n}/{c.of} {after}: {c.summary}{late}"
    if c.escalate:
        who = f"<!subteam^{c.oncall_group}>" if c.oncall_group else "on-call"
        text += (
            f"\n:rotating_light: {who}: the SLO is still breached after the mitigation."
            f" Next: `/flk diagnose {c.tenant} all` and the other scenarios' steps"
        )
    return text


async def tell_given_up(jobs: JobQueue, item: JobItem) -> None:
    """A job set aside for good is said in its incident's thread (once)."""
    if item.incident_id is None or item.op == Job.THREAD_NOTICE:
        return
    payload = {"notice": "given_up", "op": item.op, "attempts": item.attempts, "error": item.last_error or ""}
    await jobs.enqueue(Job.THREAD_NOTICE, payload, incident_id=item.incident_id, key=f"given_up:{item.id}")


class ThreadMessages:
    def __init__(self, store: Store, io: SlackIO, thread_of: Callable[[int], Awaitable[tuple[str, str]]]) -> None:
        self.store = store
        self.io = io
        self.thread_of = thread_of

    async def op_post_plan(self, item: JobItem) -> None:
        record = await self.store.plans.get(item.payload["plan_id"])
        channel, ts = await self.thread_of(record.incident_id)
        plan = mitigate.Plan.from_dict(record.plan)
        blocks = plan_blocks(plan, dry_run=record.state == "dry_run")
        response = await self.io.post(channel, f"{plan.action} plan for {plan.tenant}", blocks, thread_ts=ts)
        await self.store.plans.set_message(record.id, channel, response["ts"])

    async def op_update_plan(self, item: JobItem) -> None:
        record = await self.store.plans.get(item.payload["plan_id"])
        if record.channel is None or record.message_ts is None:
            return  # never shown (its post gave up): nothing to edit
        plan = mitigate.Plan.from_dict(record.plan)
        status, note = plan_status(record, item.payload.get("by"), item.payload.get("reason") or "")
        blocks = plan_blocks(plan, status, note=note)
        try:
            await self.io.update(record.channel, record.message_ts, f"plan {record.state}", blocks)
        except SlackApiError as exc:
            # The plan's message is gone (deleted, channel archived): no retry brings it back, and
            # retrying would hold the thread's later posts (the outcome) behind it.
            if exc.response is None or exc.response.get("error") not in GONE:
                raise
            log.warning("plan %s: its message cannot be edited (%s)", record.id, exc.response.get("error"))

    async def op_post_outcome(self, item: JobItem) -> None:
        p = item.payload
        record = await self.store.plans.get(p["plan_id"])
        if record.applied is None:
            return
        applied = mitigate.Applied.from_dict(record.applied)
        channel, ts = await self.thread_of(record.incident_id)
        if p.get("partial"):
            text, blocks = p["reason"], partial_blocks(applied, p["reason"])
        else:
            line = checks_line(p.get("delays") or [], bool(applied.plan.undoes))
            text, blocks = f"{applied.plan.action} applied", applied_blocks(applied, mention(p.get("by") or ""), line)
        await self.io.post(channel, text, blocks, thread_ts=ts)

    async def op_thread_notice(self, item: JobItem) -> None:
        assert item.incident_id is not None
        p = dict(item.payload)
        channel, ts = await self.thread_of(item.incident_id)
        notice = p.pop("notice")
        if notice == "expiry":
            text, blocks = expiry_blocks(ExpiryDue(**p))
            await self.io.post(channel, text, blocks, thread_ts=ts)
            return
        if notice == "check":
            text = check_text(CheckReported(**p))
        elif notice == "no_channel":
            text = (
                f":warning: No notification channel is configured for `{escape(p['tenant'])}` (`comms.tenant_channels`"
                f" in the runbook config), so the {p['kind']} notice was not sent. Here it is to copy:\n\n{p['text']}"
            )
        elif notice == "extended":
            until = p["until"][11:16]
            text = f":hourglass_flowing_sand: {mention(p['by'])} extended plan `{p['plan_id']}` until {until} UTC."
        elif notice == "given_up":
            text = (
                f":warning: The bot gave up on a `{p['op']}` job of this incident after {p['attempts']} attempts"
                f" ({p['error']}). Nothing more will be tried for it; run the step again by hand."
            )
        else:
            text = (
                f":arrows_counterclockwise: An earlier attempt at plan `{p['plan_id']}` stopped part-way"
                " (its replica died): reading the cluster to finish it."
            )
        await self.io.post(channel, text, thread_ts=ts)
