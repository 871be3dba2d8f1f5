"""Runbook §6 as a flow: the SLO checks scheduled after a mitigation, a check asked for by hand,
and what a check that ran says (only the last check after a mitigation escalates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from commands.context import Context
from commands.flows.actors import Actor, Unknown
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.notices import CheckReported, Thread
from commands.flows.record import Recorder
from commands.models import Finding
from commands.timeline.events import CheckRan, SliValue
from commands.verify import check_slo
from integrations.store import Incident, PlanRecord, ScheduledCheck, Store

SLO_CHECK = "slo"


class Scheduler(Protocol):
    async def schedule(self, incident_id: int, kind: str, due_at: datetime, payload: dict[str, Any]) -> Any: ...


class StoreScheduler:
    """Checks written to the store only: the running bot's sweep fires them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def schedule(self, incident_id: int, kind: str, due_at: datetime, payload: dict[str, Any]) -> Any:
        return await self.store.checks.schedule(incident_id, kind, due_at, payload)


def _slis(data: dict[str, Any]) -> tuple[SliValue, ...]:
    slo = data.get("slo") or {}
    pairs = (("escalations", "escalation_ratio"), ("signature_errors", "signature_error_ratio"))
    return tuple(SliValue(sli=sli, value=data.get(key), slo=slo[key]) for sli, key in pairs if key in slo)


class Verification:
    def __init__(
        self,
        ctx: Context,
        store: Store,
        scheduler: Scheduler,
        recorder: Recorder,
        thread: Thread,
        incidents: IncidentOpener,
        gate: Gate,
    ) -> None:
        self.gate = gate
        self.ctx = ctx
        self.store = store
        self.scheduler = scheduler
        self.record = recorder
        self.thread = thread
        self.incidents = incidents

    async def after_mitigation(self, incident: Incident, record: PlanRecord, *, resumed: bool) -> tuple[float, ...]:
        """Schedule the checks after an applied plan (none after an undo); their delays."""
        if record.undoes:
            return ()
        delays = self.ctx.config.mitigations.verify_delays_s
        # A resumed apply: the attempt before may have scheduled them already.
        scheduled = await self.store.checks.for_incident(incident.id) if resumed else []
        if any(c.payload.get("plan_id") == record.id for c in scheduled):
            return tuple(delays)
        now = datetime.now(UTC)
        for n, delay in enumerate(delays, 1):
            payload = {
                "tenant": record.tenant,
                "plan_id": record.id,
                "action": record.action,
                "n": n,
                "of": len(delays),
            }
            await self.scheduler.schedule(incident.id, SLO_CHECK, now + timedelta(seconds=delay), payload)
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
        await self.scheduler.schedule(incident.id, SLO_CHECK, due, payload)
        await self.record.audit(actor, "verify.scheduled", tenant, incident.id, {"delay_s": delay_s})
        return incident

    async def run_check(self, check: ScheduledCheck, late_s: float) -> tuple[CheckReported, Finding]:
        """Run it, say it, record it; the finding too (a failed backend is counted by the caller)."""
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
        await self.thread.tell(incident, report, key=f"check:{check.id}")
        return report, finding
