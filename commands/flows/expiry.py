"""Temporary mitigations (degraded mode, quota, key window, IP block): at their expiry the thread
is reminded, with Revert (an ordinary undo, ``MitigationFlow.undo``) and Extend.

The reminder is a job queued with ``not_before`` at the expiry, so it survives a restart and runs
once across replicas. It is queued without the incident: a job of an incident holds that
incident's later jobs until it is done, and this one waits for hours. Extend moves the expiry
(gated, audited, one conditional update) and queues the next reminder; the earlier reminder
then finds the expiry moved and says nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from commands import mitigate
from commands.flows.actors import Actor, Refused
from commands.flows.gate import Gate
from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import ExpiryDue, Extended, Thread
from commands.flows.record import Recorder
from commands.timeline.events import MitigationExpiryDue, MitigationExtended
from integrations.store import Store

# Mitigations whose change ends by itself (the key window's end time is in the ConfigMap): moving
# the reminder would not keep them, so they are not extended, only reverted or planned again.
SELF_ENDING = frozenset({"key-window"})


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def remind_at(jobs: JobQueue, plan_id: str, until: datetime) -> None:
    """Queue the reminder of ``plan_id`` at ``until`` (once per plan and expiry)."""
    at = stamp(until)
    await jobs.enqueue(
        Job.MITIGATION_EXPIRY, {"plan_id": plan_id, "until": at}, key=f"expiry:{plan_id}:{at}", not_before=until
    )


def temporary(plan: mitigate.Plan, applied: mitigate.Applied) -> mitigate.Applied:
    """``applied`` with its expiry, when the plan is a temporary mitigation (an undo is not)."""
    if plan.lasts_s is None or plan.undoes:
        return applied
    return replace(applied, until=applied.applied_at + timedelta(seconds=plan.lasts_s))


class Expiries:
    def __init__(self, store: Store, gate: Gate, recorder: Recorder, thread: Thread, jobs: JobQueue) -> None:
        self.store = store
        self.gate = gate
        self.record = recorder
        self.thread = thread
        self.jobs = jobs

    async def due(self, plan_id: str, until: str) -> None:
        """The reminder job: said once per expiry; nothing when the expiry was moved since."""
        record = await self.store.plans.find(plan_id)
        if record is None or record.applied is None:
            return
        applied = mitigate.Applied.from_dict(record.applied)
        if applied.until is not None and stamp(applied.until) != until:
            return  # extended: the reminder of the new expiry is queued
        plan = mitigate.Plan.from_dict(record.plan)
        in_place = record.state in ("applied", "partial")
        incident = await self.store.get(record.incident_id)
        await self.record.timeline(
            incident.id, Actor("bot"), MitigationExpiryDue(plan_id=plan_id, until=until, in_place=in_place)
        )
        extendable = in_place and plan.action not in SELF_ENDING
        notice = ExpiryDue(
            plan_id, plan.action, plan.tenant, until, in_place, (plan.lasts_s or 0.0) if extendable else 0.0
        )
        await self.thread.tell(incident, notice, key=f"plan:{plan_id}:expiry:{until}")

    async def extend(self, actor: Actor, plan_id: str, lasts_s: float | None = None) -> datetime:
        """Keep the mitigation ``lasts_s`` longer (default: as long as it was planned for), counted
        from its current expiry, or from now when that has passed. Returns the new expiry."""
        record = await self.store.plans.find(plan_id)
        if record is None:
            raise Refused("This plan is unknown (or from another installation).")
        plan = mitigate.Plan.from_dict(record.plan)
        await self.gate.check(
            actor, "mitigation.extend", "change the cluster", plan.tenant, record.incident_id, plan_id=plan_id
        )
        if record.state != "applied" or record.applied is None:
            raise Refused(f"This mitigation is {record.state.replace('_', ' ')}, not in place: nothing to extend.")
        applied = mitigate.Applied.from_dict(record.applied)
        if applied.until is None:
            raise Refused("This mitigation is not temporary: it stays until undone.")
        if plan.action in SELF_ENDING:
            raise Refused(
                f"The key window closes by itself at its end: plan `mitigate {plan.tenant} key-window for <duration>`"
                " to open it longer."
            )
        seconds = lasts_s or plan.lasts_s or 0.0
        until = max(applied.until, datetime.now(UTC)) + timedelta(seconds=seconds)
        incident = await self.store.get(record.incident_id)
        # On the audit log before the expiry moves; if it cannot be written, it does not move.
        await self.record.both(
            actor, incident, MitigationExtended(plan_id=plan_id, previous=stamp(applied.until), until=stamp(until))
        )
        moved = await self.store.plans.replace_applied(
            plan_id, record.updated_at, replace(applied, until=until).to_dict()
        )
        if moved is None:
            raise Refused("Someone changed this mitigation at the same moment: look at the thread and try again.")
        await remind_at(self.jobs, plan_id, until)
        await self.thread.tell(
            incident, Extended(plan_id, actor.id, stamp(until)), key=f"plan:{plan_id}:extended:{stamp(until)}"
        )
        return until
