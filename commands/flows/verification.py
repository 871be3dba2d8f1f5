"""Runbook §6 as a flow: the SLO checks scheduled after a mitigation, a check asked for by hand,
and what a check that ran says (only the last check after a mitigation escalates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from commands.context import Context
from commands.flows.actors import Actor, Unknown
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import CheckReported, Thread
from commands.flows.record import Recorder
from commands.models import Finding
from commands.timeline.events import CheckRan, SliValue
from commands.verify import check_slo
from integrations.store import Incident, JobItem, PlanRecord, Store


def _slis(data: dict[str, Any]) -> tuple[SliValue, ...]:
    slo = data.get("slo") or {}
    pairs = (("escalations", "escalation_ratio"), ("signature_errors", "signature_error_ratio"))
    return tuple(SliValue(sli=sli, value=data.get(key), slo=slo[key]) for sli, key in pairs if key in slo)


class Verification:
    def __init__(
        self,
        ctx: Context,
        store: Store,
        jobs: JobQueue,
        recorder: Recorder,
        thread: Thread,
        incidents: IncidentOpener,
        gate: Gate,
    ) -> None:
        self.gate = gate
        self.ctx = ctx
        self.store = store
        self.jobs = jobs
        self.record = recorder
        self.thread = thread
        self.incidents = incidents

    async def after_mitigation(self, incident: Incident, record: PlanRecord) -> tuple[float, ...]:
        """Schedule the checks after an applied plan (none after an undo); their delays."""
        if record.undoes:
            return ()
        delays = self.ctx.config.mitigations.verify_delays_s
        now = datetime.now(UTC)
        for n, delay in enumerate(delays, 1):
            payload = {
                "tenant": record.tenant,
                "plan_id": record.id,
                "action": record.action,
                "n": n,
                "of": len(delays),
            }
            # Keyed by plan and number: a resumed apply that scheduled them before queues none again.
            await self.jobs.enqueue(
                Job.SLO_CHECK,
                payload,
                key=f"slo-check:{record.id}:{n}",
                incident_id=incident.id,
                not_before=now + timedelta(seconds=delay),
            )
        return tuple(delays)

    async def request(self, actor: Actor, tenant: str, delay_s: int) -> Incident:
        """`verify <tenant> [in <duration>]`: one check, now or later, on the tenant's incident."""
        await self.gate.check(actor, "verify.schedule", "schedule SLO checks", tenant, None, fresh=False)
        refusal = await self.ctx.tenants.refuse(tenant)
        if refusal:
            raise Unknown(refusal)
        incident, _ = await self.incidents.open_for_tenant(tenant, actor, f"{tenant}: SLO check requested")
        due = datetime.now(UTC) + timedelta(seconds=delay_s)
        payload = {"tenant": tenant, "action": None, "n": 1, "of": 1, "requested_by": actor.id}
        await self.jobs.enqueue(Job.SLO_CHECK, payload, incident_id=incident.id, not_before=due)
        await self.record.audit(actor, "verify.scheduled", tenant, incident.id, {"delay_s": delay_s})
        return incident

    async def run_check(self, check: JobItem, late_s: float) -> tuple[CheckReported, Finding]:
        """Run it, say it, record it; the finding too (a failed backend is counted by the caller)."""
        assert check.incident_id is not None  # checks are queued for an incident
        incident = await self.store.get(check.incident_id)
        p = check.payload
        tenant, n, of = p["tenant"], int(p.get("n", 1)), int(p.get("of", 1))
        finding = await check_slo(self.ctx, tenant)
        ok = finding.status.value == "ok"
        plan_id = p.get("plan_id")
        report = CheckReported(
            n=n,
            of=of,
            ok=ok,
            summary=finding.summary,
            action=p.get("action"),
            tenant=tenant,
            late_s=late_s,
            # Only a mitigation's last check speaks of the mitigation failing.
            escalate=not ok and n == of and plan_id is not None,
            oncall_group=self.ctx.config.mitigations.oncall_group,
        )
        event = CheckRan(
            n=n,
            of=of,
            ok=ok,
            plan_id=plan_id,
            summary=finding.summary,
            slis=_slis(finding.data),
            late_s=round(late_s, 1),
            status=finding.status.value,
        )
        await self.record.timeline(incident.id, Actor("bot"), event)
        await self.thread.tell(incident, report, key=f"check-job:{check.id}")
        return report, finding
