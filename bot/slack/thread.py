"""How the runbook's thread notices look in Slack, and how they get there: each one rendered and
queued as a job (once per key), so a Slack outage or a restart loses none and repeats none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.slack.render_mitigation import applied_blocks, partial_blocks, plan_blocks
from bot.slack.sender import SlackIO
from bot.slack.steps import mention
from commands import mitigate
from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import (
    ApplyResumed,
    CheckReported,
    MitigationDone,
    MitigationHalfDone,
    Notice,
    PlanSettled,
    PlanShown,
)
from integrations.store import Incident, OutboxItem, PlanRecord, Store


def _delay(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def checks_line(delays: tuple[float, ...], undo: bool) -> str:
    if undo:
        return "the previous values are back; no verification checks for an undo"
    if not delays:
        return "no verification checks scheduled"
    shown = ", ".join(_delay(d) for d in delays)
    return f":stopwatch: the SLO will be checked {shown} after this change; the last check escalates if it fails"


def plan_status(record: PlanRecord, by: str | None, reason: str) -> tuple[str | None, str]:
    """(final status, note): a final status removes the plan's buttons, a note keeps them."""
    who = mention(by) if by else "someone"
    state = record.state
    if state == "approved":
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
    return final.get(state), ""


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


class SlackThread:
    """``commands.flows.notices.Thread`` for Slack."""

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    async def tell(self, incident: Incident, notice: Notice, *, key: str) -> None:
        match notice:
            case PlanShown(record=record):
                await self._queue(incident, Job.POST_PLAN, {"plan_id": record.id}, key)
            case PlanSettled(record=record, by=by, reason=reason):
                payload = {"plan_id": record.id, "by": by, "reason": reason}
                await self._queue(incident, Job.UPDATE_PLAN, payload, key)
            case MitigationDone(applied=applied, confirmed_by=by, check_delays_s=delays):
                blocks = applied_blocks(applied, mention(by), checks_line(delays, bool(applied.plan.undoes)))
                await self._blocks(incident, f"{applied.plan.action} applied", blocks, key)
            case MitigationHalfDone(applied=applied, reason=reason):
                await self._blocks(incident, reason, partial_blocks(applied, reason), key)
            case ApplyResumed(plan_id=plan_id):
                text = (
                    f":arrows_counterclockwise: An earlier attempt at plan `{plan_id}` stopped part-way"
                    " (its replica died or Slack failed): reading the cluster to finish it."
                )
                await self._queue(incident, Job.POST, {"text": text}, key)
            case CheckReported():
                await self._queue(incident, Job.POST, {"text": check_text(notice)}, key)

    async def _blocks(self, incident: Incident, text: str, blocks: list, key: str) -> None:
        await self._queue(incident, Job.POST_BLOCKS, {"text": text, "blocks": [b.to_dict() for b in blocks]}, key)

    async def _queue(self, incident: Incident, job: Job, payload: dict, key: str) -> None:
        await self.jobs.enqueue(job, payload, incident_id=incident.id, key=key)


class PlanMessages:
    """The jobs that post a plan and edit its state into it."""

    def __init__(self, store: Store, io: SlackIO, thread_of: Callable[[int], Awaitable[tuple[str, str]]]) -> None:
        self.store = store
        self.io = io
        self.thread_of = thread_of

    async def op_post_plan(self, item: OutboxItem) -> None:
        record = await self.store.plans.get(item.payload["plan_id"])
        channel, ts = await self.thread_of(record.incident_id)
        plan = mitigate.Plan.from_dict(record.plan)
        blocks = plan_blocks(plan, dry_run=record.state == "dry_run")
        text = f"{plan.action} plan for {plan.tenant}"
        response = await self.io.post(channel, text, blocks, thread_ts=ts)
        await self.store.plans.set_message(record.id, channel, response["ts"])

    async def op_update_plan(self, item: OutboxItem) -> None:
        record = await self.store.plans.get(item.payload["plan_id"])
        if record.channel is None or record.message_ts is None:
            return  # never shown (its post gave up): nothing to edit
        plan = mitigate.Plan.from_dict(record.plan)
        status, note = plan_status(record, item.payload.get("by"), item.payload.get("reason") or "")
        blocks = plan_blocks(plan, status, note=note)
        await self.io.update(record.channel, record.message_ts, f"plan {record.state}", blocks)
