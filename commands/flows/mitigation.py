"""What happens when someone plans, confirms, cancels, undoes or retries a mitigation (runbook §5).

Every step that changes the cluster re-checks the person at that moment (uncached), is audited
before it happens, moves the plan's record on by one conditional UPDATE (so two clicks or two
replicas cannot both win), and is told in the thread through ``Thread``, never by Slack calls
here. The apply itself runs as a job (``apply``): if its worker dies part-way, the next worker
resumes from what the cluster shows.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from commands import mitigate
from commands.context import Context
from commands.flows.actors import Actor, AuditUnavailable, FlowError, Refused, Unknown
from commands.flows.expiry import Expiries, remind_at, stamp, temporary
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.flows.notices import (
    ApplyResumed,
    MitigationDone,
    MitigationHalfDone,
    PlanSettled,
    PlanShown,
    Thread,
)
from commands.flows.record import Recorder
from commands.flows.verification import Verification
from commands.timeline.events import (
    ChangeRef,
    CommandRun,
    MitigationApplied,
    MitigationApproved,
    MitigationPlanned,
    MitigationResumed,
    MitigationStopped,
    RestartRetried,
)
from integrations.errors import BackendError
from integrations.store import Incident, PlanRecord, Store, StoreUnavailable

log = logging.getLogger(__name__)

# A plan in these may still be confirmed or cancelled.
_OPEN = ("planned", "approved")


@dataclass(frozen=True)
class Planned:
    record: PlanRecord
    plan: mitigate.Plan
    incident: Incident


@dataclass(frozen=True)
class Confirmed:
    """``applying``: the apply job is queued; ``approved``: one of two approvals is in."""

    record: PlanRecord
    state: str


def _changes(objects: tuple[mitigate.ObjectChange, ...]) -> tuple[ChangeRef, ...]:
    return tuple(
        ChangeRef(
            object=f"{o.ref.kind.lower()}/{o.ref.name}",
            namespace=o.ref.namespace,
            key=c.key,
            before=c.before,
            after=c.after,
        )
        for o in objects
        for c in o.changes
    )


class MitigationFlow:
    def __init__(
        self,
        ctx: Context,
        store: Store,
        gate: Gate,
        recorder: Recorder,
        thread: Thread,
        jobs: JobQueue,
        incidents: IncidentOpener,
        verification: Verification,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.gate = gate
        self.record = recorder
        self.thread = thread
        self.jobs = jobs
        self.incidents = incidents
        self.verification = verification
        # Temporary mitigations' reminders and Extend, on the same store, gate, audit and thread.
        self.expiries = Expiries(store, gate, recorder, thread, jobs)

    async def _authorise(self, actor: Actor, what: str, tenant: str, incident_id: int | None, **details: Any) -> None:
        await self.gate.check(actor, what, "change the cluster", tenant, incident_id, **details)

    async def _load(self, plan_id: str) -> tuple[PlanRecord, mitigate.Plan]:
        record = await self.store.plans.find(plan_id)
        if record is None:
            raise Unknown("This plan is unknown (or from another installation).")
        return record, mitigate.Plan.from_dict(record.plan)

    # -- plan -------------------------------------------------------------------------------

    async def plan(self, actor: Actor, args: dict[str, Any], text: str) -> Planned:
        tenant, action = args["tenant"], args["action"]
        open_incident = await self.store.find_open(tenant)
        await self._authorise(actor, "mitigation.plan", tenant, open_incident.id if open_incident else None)
        refusal = await self.ctx.tenants.refuse(tenant)
        if refusal:
            raise Unknown(refusal)
        incident, _ = await self.incidents.open_for_tenant(tenant, actor, f"{tenant}: mitigation requested")
        await self.record.timeline(incident.id, actor, CommandRun(verb="mitigate", text=text, via=actor.via))
        try:
            plan = await mitigate.plan(self.ctx, tenant, action, args)
        except (mitigate.MitigationError, BackendError) as exc:
            await self.record.refused(actor, "mitigation.plan", str(exc), tenant, incident.id)
            raise FlowError(f"Cannot plan `{action}` for `{tenant}`: {exc}") from None
        return await self._store_plan(actor, incident, plan, dry_run=bool(args.get("dry_run")))

    async def _store_plan(self, actor: Actor, incident: Incident, plan: mitigate.Plan, *, dry_run: bool) -> Planned:
        record = await self.store.plans.create(
            plan.id,
            incident_id=incident.id,
            tenant=plan.tenant,
            action=plan.action,
            plan=plan.to_dict(),
            planned_by=actor.id,
            expires_at=plan.expires_at,
            undoes=plan.undoes,
            dry_run=dry_run,
        )
        event = MitigationPlanned(
            plan_id=plan.id,
            action=plan.action,
            tenant=plan.tenant,
            changes=_changes(plan.objects),
            restart=str(plan.restart) if plan.restart else None,
            needs_second_approver=plan.needs_second_approver,
            dry_run=dry_run,
            undoes=plan.undoes,
        )
        await self.record.both(actor, incident, event)
        await self.thread.tell(incident, PlanShown(record, plan), key=f"plan:{plan.id}:shown")
        return Planned(record, plan, incident)

    # -- confirm ----------------------------------------------------------------------------

    async def confirm(self, actor: Actor, plan_id: str, *, queue: bool = True) -> Confirmed:
        """``queue``: the apply runs as a job (the bot); False: the caller runs ``apply`` itself
        (the terminal, which waits for it)."""
        record, plan = await self._load(plan_id)
        incident = await self.store.get(record.incident_id)
        await self._authorise(actor, "mitigation.confirm", plan.tenant, incident.id, plan_id=plan_id)
        if record.state == "dry_run":
            raise Refused("A dry run cannot be confirmed: plan it again without `--dry-run`.")
        if record.state not in _OPEN:
            raise Refused(f"This plan is {record.state.replace('_', ' ')}: nothing to confirm.")
        if plan.expired():
            expired = await self.store.plans.transition(plan_id, _OPEN, "expired", reason="not confirmed in time")
            if expired is not None:
                await self.record.both(actor, incident, MitigationStopped(plan_id=plan_id, outcome="expired"))
                await self.thread.tell(incident, PlanSettled(expired, plan, actor.id), key=f"plan:{plan_id}:expired")
            raise Refused("This plan expired before it was confirmed: nothing was applied; plan it again.")
        if plan.needs_second_approver and record.state == "planned":
            approved = await self.store.plans.approve(plan_id, actor.id)
            if approved is not None:
                await self.record.both(actor, incident, MitigationApproved(plan_id=plan_id, approver=actor.id))
                await self.thread.tell(incident, PlanSettled(approved, plan, actor.id), key=f"plan:{plan_id}:approved")
                return Confirmed(approved, "approved")
            record = await self.store.plans.get(plan_id)  # someone approved it a moment before
        if plan.needs_second_approver and actor.id in record.approvers:
            raise Refused("A second, different person must confirm.")
        expected = ("approved",) if plan.needs_second_approver else ("planned",)
        approvers = [*record.approvers, actor.id] if plan.needs_second_approver else [actor.id]
        applying = await self.store.plans.transition(
            plan_id, expected, "applying", confirmed_by=actor.id, approvers=approvers
        )
        if applying is None:
            return Confirmed(await self.store.plans.get(plan_id), "already")
        # The intent is on the audit log before anything is patched; if it cannot be, nothing is.
        try:
            await self.record.audit(
                actor,
                "mitigation.confirmed",
                plan.tenant,
                incident.id,
                {"plan": plan.to_dict(), "approvers": approvers},
            )
        except AuditUnavailable:
            await self.store.plans.transition(
                plan_id, ("applying",), record.state, confirmed_by=None, approvers=list(record.approvers)
            )
            raise
        if queue:
            await self.jobs.enqueue(Job.APPLY_PLAN, {"plan_id": plan_id}, key=f"apply_plan:{plan_id}")
        return Confirmed(applying, "applying")

    # -- the apply job ----------------------------------------------------------------------

    async def apply(self, plan_id: str) -> PlanRecord | None:
        """Apply a confirmed plan; a second run of the job resumes or does nothing."""
        started = await self.store.plans.start_apply(plan_id)
        if started is None:
            return None
        record, resumed = started
        try:
            return await self._apply(record, resumed)
        except Exception:
            # Stopped part-way by the audit log or the store (the cluster may already be changed):
            # the job's retry must resume from what the cluster shows, not find the apply "running"
            # and do nothing, which left a changed cluster unaudited and the plan applying for ever.
            with contextlib.suppress(StoreUnavailable):
                await self.store.plans.stop_apply(plan_id)
            raise

    async def _apply(self, record: PlanRecord, resumed: bool) -> PlanRecord | None:
        plan_id = record.id
        plan = mitigate.Plan.from_dict(record.plan)
        incident = await self.store.get(record.incident_id)
        confirmer = Actor(record.confirmed_by or "bot")
        known = None
        if resumed:
            await self.record.timeline(incident.id, Actor("bot"), MitigationResumed(plan_id=plan_id))
            await self.thread.tell(incident, ApplyResumed(plan_id), key=f"plan:{plan_id}:resumed")
            saved = record.applied
            known = mitigate.Applied.from_dict(saved) if saved and not saved["restart_pending"] else None
        try:
            applied = known or temporary(plan, await mitigate.apply(self.ctx, plan, resume=resumed))
        except mitigate.PartialApply as exc:
            return await self._half_done(record, plan, incident, confirmer, exc)
        except (mitigate.MitigationError, BackendError) as exc:
            return await self._not_applied(record, plan, incident, confirmer, exc)
        # Before → after on the audit log right after the patch, before any message.
        await self.store.plans.set_applied(plan_id, applied.to_dict())
        event = MitigationApplied(
            plan_id=plan_id,
            action=plan.action,
            tenant=plan.tenant,
            changes=_changes(applied.objects),
            confirmed_by=confirmer.id,
            approvers=record.approvers,
            restart=applied.restarted_at,
            undoes=plan.undoes,
            until=stamp(applied.until) if applied.until else None,
        )
        await self.record.both(confirmer, incident, event)
        done = await self.store.plans.transition(plan_id, ("applying",), "applied", applied=applied.to_dict())
        if done is None:
            return await self.store.plans.get(plan_id)
        if applied.until is not None:
            await remind_at(self.jobs, plan_id, applied.until)
        delays = await self.verification.after_mitigation(incident, done)
        # The outcome first: it is what the people in the thread wait for; the plan's edit follows.
        await self.thread.tell(
            incident, MitigationDone(done, applied, confirmer.id, delays), key=f"plan:{plan_id}:done"
        )
        await self.thread.tell(incident, PlanSettled(done, plan, confirmer.id), key=f"plan:{plan_id}:settled")
        if plan.undoes:
            await self.store.plans.transition(
                plan.undoes, ("applied", "partial"), "undone", reason=f"undone by {plan_id}"
            )
        if incident.state == "open":
            await self.store.set_state(incident.id, "verifying", actor=confirmer.id, reason=f"{plan.action} applied")
        return done

    async def _half_done(
        self, record: PlanRecord, plan: mitigate.Plan, incident: Incident, confirmer: Actor, exc: mitigate.PartialApply
    ) -> PlanRecord:
        applied = exc.applied.to_dict()
        event = MitigationStopped(
            plan_id=plan.id, outcome="partial", reason=str(exc), changes=_changes(exc.applied.objects)
        )
        await self.record.both(confirmer, incident, event)
        done = await self.store.plans.transition(plan.id, ("applying",), "partial", applied=applied, reason=str(exc))
        done = done or await self.store.plans.get(plan.id)
        await self.thread.tell(incident, PlanSettled(done, plan, confirmer.id, str(exc)), key=f"plan:{plan.id}:settled")
        await self.thread.tell(incident, MitigationHalfDone(done, exc.applied, str(exc)), key=f"plan:{plan.id}:partial")
        return done

    async def _not_applied(
        self, record: PlanRecord, plan: mitigate.Plan, incident: Incident, confirmer: Actor, exc: Exception
    ) -> PlanRecord:
        outcome = "conflict" if isinstance(exc, mitigate.Conflict) else "failed"
        await self.record.both(
            confirmer, incident, MitigationStopped(plan_id=plan.id, outcome=outcome, reason=str(exc))
        )
        done = await self.store.plans.transition(plan.id, ("applying",), outcome, reason=str(exc))
        done = done or await self.store.plans.get(plan.id)
        await self.thread.tell(incident, PlanSettled(done, plan, confirmer.id, str(exc)), key=f"plan:{plan.id}:settled")
        return done

    # -- cancel, undo, retry ----------------------------------------------------------------

    async def cancel(self, actor: Actor, plan_id: str) -> PlanRecord:
        record, plan = await self._load(plan_id)
        await self._authorise(actor, "mitigation.cancel", plan.tenant, record.incident_id, plan_id=plan_id)
        cancelled = await self.store.plans.transition(plan_id, _OPEN, "cancelled", reason=f"cancelled by {actor.id}")
        if cancelled is None:
            raise Refused("This plan was already applied or cancelled.")
        incident = await self.store.get(record.incident_id)
        await self.record.both(actor, incident, MitigationStopped(plan_id=plan_id, outcome="cancelled"))
        await self.thread.tell(incident, PlanSettled(cancelled, plan, actor.id), key=f"plan:{plan_id}:settled")
        return cancelled

    async def undo(self, actor: Actor, plan_id: str) -> Planned:
        record, plan = await self._load(plan_id)
        await self._authorise(actor, "mitigation.undo", plan.tenant, record.incident_id, plan_id=plan_id)
        if record.state not in ("applied", "partial") or record.applied is None:
            raise Refused("Nothing to undo for this plan.")
        pending = await self.store.plans.undo_of(plan_id)
        if pending is not None:
            raise Refused(f"An undo of this plan is already {pending.state} (plan `{pending.id}`).")
        applied = mitigate.Applied.from_dict(record.applied)
        reapplies = None
        if plan.undoes:
            # Undoing an undo applies the original change again: it needs what the original needed.
            original = await self.store.plans.find(plan.undoes)
            reapplies = mitigate.Plan.from_dict(original.plan) if original else None
        try:
            back = await mitigate.plan_undo(self.ctx, applied, reapplies=reapplies)
        except (mitigate.MitigationError, BackendError) as exc:
            raise FlowError(f"Cannot plan the undo: {exc}") from None
        return await self._store_plan(actor, await self.store.get(record.incident_id), back, dry_run=False)

    async def retry_restart(self, actor: Actor, plan_id: str) -> PlanRecord:
        record, plan = await self._load(plan_id)
        await self._authorise(actor, "mitigation.retry_restart", plan.tenant, record.incident_id, plan_id=plan_id)
        if record.state != "partial" or record.applied is None:
            raise Refused("There is no restart to retry for this plan.")
        incident = await self.store.get(record.incident_id)
        try:
            applied = await mitigate.retry_restart(self.ctx, mitigate.Applied.from_dict(record.applied))
        except (mitigate.MitigationError, BackendError) as exc:
            await self.record.both(actor, incident, RestartRetried(plan_id=plan_id, ok=False, reason=str(exc)))
            raise FlowError(f"The restart failed again: {exc}") from None
        # In effect only now: a temporary mitigation's expiry is set (and reminded) here.
        applied = temporary(plan, applied)
        done = await self.store.plans.transition(plan_id, ("partial",), "applied", applied=applied.to_dict())
        await self.record.both(actor, incident, RestartRetried(plan_id=plan_id, ok=True))
        if done is not None and applied.until is not None:
            await remind_at(self.jobs, plan_id, applied.until)
        return done or await self.store.plans.get(plan_id)
