"""``Thread`` as jobs: each notice queued once (its key) with only data in it (ids and values, no
markup), so the terminal and the bot queue the same thing and the Slack worker renders it."""

from __future__ import annotations

import dataclasses
from typing import Any

from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import (
    ApplyResumed,
    CheckReported,
    ExpiryDue,
    Extended,
    MitigationDone,
    MitigationHalfDone,
    Notice,
    PlanSettled,
    PlanShown,
)
from integrations.store import Incident


def job_for(notice: Notice) -> tuple[Job, dict[str, Any]]:
    match notice:
        case PlanShown(record=record):
            return Job.POST_PLAN, {"plan_id": record.id}
        case PlanSettled(record=record, by=by, reason=reason):
            return Job.UPDATE_PLAN, {"plan_id": record.id, "by": by, "reason": reason}
        case MitigationDone(record=record, confirmed_by=by, check_delays_s=delays):
            return Job.POST_OUTCOME, {"plan_id": record.id, "by": by, "delays": list(delays)}
        case MitigationHalfDone(record=record, reason=reason):
            return Job.POST_OUTCOME, {"plan_id": record.id, "reason": reason, "partial": True}
        case ApplyResumed(plan_id=plan_id):
            return Job.THREAD_NOTICE, {"notice": "resumed", "plan_id": plan_id}
        case CheckReported():
            return Job.THREAD_NOTICE, {"notice": "check", **dataclasses.asdict(notice)}
        case ExpiryDue():
            return Job.THREAD_NOTICE, {"notice": "expiry", **dataclasses.asdict(notice)}
        case Extended():
            return Job.THREAD_NOTICE, {"notice": "extended", **dataclasses.asdict(notice)}
    raise TypeError(f"not a thread notice: {notice!r}")


class QueuedThread:
    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    async def tell(self, incident: Incident, notice: Notice, *, key: str) -> None:
        job, payload = job_for(notice)
        await self.jobs.enqueue(job, payload, incident_id=incident.id, key=key)
