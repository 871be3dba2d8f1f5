"""Mitigations in Slack (runbook §5, §6): a plan first, confirmed by an authorised person (two
for some), applied once with the plan's resourceVersion, audited, undoable, and checked by
itself afterwards. Every refusal is ephemeral and audited."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bot.service.checks import CheckScheduler
from bot.service.logs import bind
from bot.service.outbox import until_stored
from bot.service.runtime import Runtime
from bot.service.telemetry import count_backend_errors, note_outcome
from bot.slack.authz import Authoriser
from bot.slack.incidents import IncidentThreads
from bot.slack.render_mitigation import applied_blocks, partial_blocks, plan_blocks
from bot.slack.steps import Respond, mention
from commands import mitigate
from commands.registry import UsageError
from commands.verify import check_slo
from integrations.audit import AuditLog
from integrations.errors import BackendError
from integrations.store import Incident, OutboxItem, ScheduledCheck

log = logging.getLogger(__name__)


@dataclass
class Mitigations:
    rt: Runtime
    threads: IncidentThreads
    authz: Authoriser
    audit: AuditLog
    checks: CheckScheduler | None = None

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.rt.store

    async def record(
        self,
        incident: Incident | None,
        tenant: str,
        actor: str,
        action: str,
        text: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Every mitigation step goes to the audit log and, when there is one, the incident's timeline."""
        await self.audit.append_async(
            actor,
            action,
            incident_id=str(incident.id) if incident else None,
            tenant=tenant,
            details={"text": text, **(details or {})},
        )
        if incident is not None:
            await self.store.add_event(incident.id, actor, action, text, details or {})

    async def _refuse_unauthorised(self, user: str, tenant: str, what: str, respond: Respond) -> bool:
        if await self.authz.allowed(user):
            return False
        note_outcome("refused")
        await respond(
            text=":no_entry: Only members of the authorised groups may change the cluster.",
            response_type="ephemeral",
            replace_original=False,
        )
        await self.record(
            await self.store.find_open(tenant),
            tenant,
            user,
            "mitigation.refused",
            f"{mention(user)} may not {what}",
            {"reason": "not in an authorised group"},
        )
        return True

    # -- /flk mitigate ------------------------------------------------------------------

    async def request(self, args: dict[str, Any], user: str, respond: Respond, text: str) -> None:
        tenant = args["tenant"]
        if await self._refuse_unauthorised(user, tenant, f"run `/flk {text}`", respond):
            return
        refusal = await self.rt.ctx.tenants.refuse(tenant)
        if refusal:
            note_outcome("usage")
            await respond(text=f":information_source: {refusal}")
            return
        incident, _ = await self.threads.open_for_tenant(tenant, user, f"{tenant}: mitigation requested by {user}")
        bind(incident_id=incident.id)
        await self.store.add_event(incident.id, user, "command", f"/flk {text}")
        try:
            plan = await mitigate.plan(self.rt.ctx, tenant, args["action"], args)
        except (mitigate.MitigationError, UsageError, BackendError) as exc:
            note_outcome("error" if isinstance(exc, BackendError) else "refused")
            await respond(text=f":x: Cannot plan `{args['action']}` for `{tenant}`: {exc}")
            await self.record(incident, tenant, user, "mitigation.refused", str(exc))
            return
        await self._post_plan(incident, plan, user, dry_run=args.get("dry_run", False))

    async def _post_plan(self, incident: Incident, plan: mitigate.Plan, user: str, *, dry_run: bool) -> None:
        await self.store.keys.put(f"plan:{plan.id}", {"plan": plan.to_dict(), "incident": incident.id})
        await self.record(
            incident,
            plan.tenant,
            user,
            "mitigation.planned",
            f"{plan.action}: " + "; ".join(plan.lines()),
            {"plan_id": plan.id, "dry_run": dry_run},
        )
        await self.threads.queue(
            incident,
            "post_blocks",
            {
                "text": f"{plan.action} plan for {plan.tenant}",
                "blocks": [b.to_dict() for b in plan_blocks(plan, dry_run=dry_run)],
            },
        )

    async def _load(self, plan_id: str) -> tuple[mitigate.Plan, Incident] | None:
        stored = await self.store.keys.result(f"plan:{plan_id}")
        if not stored:
            return None
        plan = mitigate.Plan.from_dict(stored["plan"])
        bind(incident_id=stored["incident"], tenant_id=plan.tenant)  # the button's log lines name them
        return plan, await self.store.get(stored["incident"])

    # -- buttons ------------------------------------------------------------------------

    async def confirm(self, plan_id: str, user: str, respond: Respond, channel: str, ts: str) -> None:
        loaded = await self._load(plan_id)
        if loaded is None:
            await respond(text=":x: This plan is unknown (or from another installation).", replace_original=False)
            return
        plan, incident = loaded
        if await self._refuse_unauthorised(user, plan.tenant, f"confirm plan {plan_id}", respond):
            return
        if plan.expired():
            await self.rt.io.update(channel, ts, "plan expired", plan_blocks(plan, ":hourglass: expired: re-plan"))
            await self.record(incident, plan.tenant, user, "mitigation.expired", f"plan {plan_id} expired")
            return
        if plan.needs_second_approver and not await self._second_approval(plan, incident, user, respond, channel, ts):
            return
        # A double click or a Slack retry: the first one applies, the rest do nothing.
        if not await self.rt.claim(f"apply:{plan_id}"):
            return
        # Applied by the outbox, whose lease hands the item to another replica if this one dies
        # part-way: the plan never stays confirmed with nothing said about it.
        payload = {"plan_id": plan_id, "actor": user, "channel": channel, "ts": ts, "tenant": plan.tenant}
        await self.store.outbox.enqueue("apply_plan", payload, dedupe_key=f"apply_plan:{plan_id}")
        self.rt.kick_outbox()

    async def op_apply(self, item: OutboxItem) -> None:
        """The outbox item of a confirmed plan. A run that finds the attempt mark of a run before it
        takes over from a replica that stopped part-way: it resumes from what the cluster shows."""
        p = item.payload
        plan_id = p["plan_id"]
        loaded = await self._load(plan_id)
        if loaded is None or await self.store.keys.result(f"outcome:{plan_id}"):
            return
        plan, incident = loaded
        known = None
        resume = not await self.store.keys.claim(f"attempt:{plan_id}")
        if resume:
            text = (
                f":arrows_counterclockwise: An earlier attempt at plan `{plan_id}` stopped part-way"
                " (its replica died or Slack failed): reading the cluster to finish it."
            )
            await self.rt.io.post(p["channel"], text, thread_ts=incident.thread_ts)
            await self.record(incident, plan.tenant, "bot", "mitigation.resumed", text, {"plan_id": plan_id})
            # Fully applied before it stopped: only the messages are missing.
            stored = await self.store.keys.result(f"applied:{plan_id}")
            known = mitigate.Applied.from_dict(stored) if stored and not stored["restart_pending"] else None
        await self._apply(plan, incident, p["actor"], p["channel"], p["ts"], resume=resume, known=known)

    async def _second_approval(
        self, plan: mitigate.Plan, incident: Incident, user: str, respond: Respond, channel: str, ts: str
    ) -> bool:
        """True once two different authorised people have confirmed. The first approval is an
        atomic claim, so concurrent clicks (or replicas) cannot both count as the first."""
        first = f"approval:{plan.id}"
        if await self.store.keys.claim(first):
            await self.store.keys.set_result(first, {"user": user})
            await self.record(incident, plan.tenant, user, "mitigation.approved", f"{mention(user)} approved {plan.id}")
            status = f":ballot_box_with_check: approved by {mention(user)}; waiting for a second, different approver"
            await self.rt.io.update(channel, ts, "approved once", plan_blocks(plan, note=status))
            return False
        for _ in range(50):
            stored = await self.store.keys.result(first)
            if stored:
                break
            await asyncio.sleep(0.02)  # the first approver's write is a moment behind its claim
        if not stored or stored.get("user") == user:
            await respond(text=":busts_in_silhouette: A second, different person must confirm.", replace_original=False)
            return False
        await self.record(incident, plan.tenant, user, "mitigation.approved", f"{mention(user)} approved {plan.id}")
        return True

    async def _apply(
        self,
        plan: mitigate.Plan,
        incident: Incident,
        user: str,
        channel: str,
        ts: str,
        *,
        resume: bool = False,
        known: mitigate.Applied | None = None,
    ) -> None:
        thread_ts = incident.thread_ts
        try:
            applied = known or await mitigate.apply(self.rt.ctx, plan, resume=resume)
        except mitigate.PartialApply as exc:
            await self._save_applied(exc.applied)
            await self.rt.io.update(channel, ts, "half applied", plan_blocks(plan, f":warning: {exc}"))
            await self.rt.io.post(channel, str(exc), partial_blocks(exc.applied, str(exc)), thread_ts=thread_ts)
            await self._done(plan, "partial")
            await self.record(incident, plan.tenant, user, "mitigation.partial", str(exc), {"plan_id": plan.id})
            return
        except (mitigate.MitigationError, BackendError) as exc:
            await self.rt.io.update(channel, ts, "not applied", plan_blocks(plan, f":x: {exc}"))
            await self._done(plan, "failed")
            await self.record(incident, plan.tenant, user, "mitigation.failed", str(exc), {"plan_id": plan.id})
            return
        await self._save_applied(applied)
        checks = await self._schedule_checks(incident, applied, resume=resume)
        by = mention(user)
        await self.rt.io.update(channel, ts, "applied", plan_blocks(plan, f":white_check_mark: applied by {by}"))
        await self.rt.io.post(
            channel, f"{plan.action} applied", applied_blocks(applied, by, checks), thread_ts=thread_ts
        )
        await self._done(plan, "applied")
        changes = [
            {"object": str(o.ref), "key": c.key, "before": c.before, "after": c.after}
            for o in applied.objects
            for c in o.changes
        ]
        kind = "mitigation.undone" if plan.undoes else "mitigation.applied"
        await self.record(
            incident,
            plan.tenant,
            user,
            kind,
            f"{plan.action} applied, confirmed by {by}",
            {"plan_id": plan.id, "changes": changes, "confirmed_by": user},
        )
        if incident.state == "open":
            await self.store.set_state(incident.id, "verifying", actor=user, text=f"{plan.action} applied")

    async def _done(self, plan: mitigate.Plan, outcome: str) -> None:
        """The outcome is in Slack: a later run of the item (the store was down when it ended)
        must not post it again."""
        put = partial(self.store.keys.put, f"outcome:{plan.id}", {"outcome": outcome})
        await until_stored(put, f"plan {plan.id} outcome")

    async def _save_applied(self, applied: mitigate.Applied) -> None:
        await self.store.keys.put(f"applied:{applied.plan.id}", applied.to_dict())

    async def _schedule_checks(self, incident: Incident, applied: mitigate.Applied, *, resume: bool) -> str:
        if applied.plan.undoes:
            return "the previous values are back; no verification checks for an undo"
        if self.checks is None:
            return "no verification checks scheduled"
        delays = self.rt.config.mitigations.verify_delays_s
        now = datetime.now(UTC)
        # A resumed apply: the attempt before may have scheduled them already.
        scheduled = await self.store.checks.for_incident(incident.id) if resume else []
        done = any(c.payload.get("plan_id") == applied.plan.id for c in scheduled)
        for n, delay in enumerate([] if done else delays, 1):
            await self.checks.schedule(
                incident.id,
                "slo",
                now + timedelta(seconds=delay),
                {
                    "tenant": applied.plan.tenant,
                    "plan_id": applied.plan.id,
                    "action": applied.plan.action,
                    "n": n,
                    "of": len(delays),
                },
            )
        shown = ", ".join(_delay(d) for d in delays)
        return f":stopwatch: the SLO will be checked {shown} after this change; the last check escalates if it fails"

    async def cancel(self, plan_id: str, user: str, respond: Respond, channel: str, ts: str) -> None:
        loaded = await self._load(plan_id)
        if loaded is None:
            return
        plan, incident = loaded
        if not await self.rt.claim(f"apply:{plan_id}"):
            await respond(text="This plan was already applied or cancelled.", replace_original=False)
            return
        await self.rt.io.update(
            channel, ts, "cancelled", plan_blocks(plan, f":no_entry_sign: cancelled by {mention(user)}")
        )
        await self.record(incident, plan.tenant, user, "mitigation.cancelled", f"plan {plan_id} cancelled")

    async def undo(self, plan_id: str, user: str, respond: Respond) -> None:
        stored = await self.store.keys.result(f"applied:{plan_id}")
        loaded = await self._load(plan_id)
        if not stored or loaded is None:
            await respond(text=":x: Nothing to undo for this plan.", replace_original=False)
            return
        _, incident = loaded
        if await self._refuse_unauthorised(user, incident.tenant or "", f"undo plan {plan_id}", respond):
            return
        try:
            back = await mitigate.plan_undo(self.rt.ctx, mitigate.Applied.from_dict(stored))
        except (mitigate.MitigationError, BackendError) as exc:
            await respond(text=f":x: Cannot plan the undo: {exc}", replace_original=False)
            return
        await self._post_plan(incident, back, user, dry_run=False)

    async def retry_restart(self, plan_id: str, user: str, respond: Respond) -> None:
        stored = await self.store.keys.result(f"applied:{plan_id}")
        loaded = await self._load(plan_id)
        if not stored or loaded is None:
            return
        _, incident = loaded
        if await self._refuse_unauthorised(user, incident.tenant or "", f"retry the restart of {plan_id}", respond):
            return
        try:
            applied = await mitigate.retry_restart(self.rt.ctx, mitigate.Applied.from_dict(stored))
        except (mitigate.MitigationError, BackendError) as exc:
            await respond(text=f":x: The restart failed again: {exc}", replace_original=False)
            return
        await self._save_applied(applied)
        await self.record(
            incident, applied.plan.tenant, user, "mitigation.restarted", f"restart retried by {mention(user)}"
        )
        await respond(text=":white_check_mark: Rollout restart done.", replace_original=False)

    # -- verification -------------------------------------------------------------------

    async def run_check(self, check: ScheduledCheck, late_s: float) -> dict:
        incident = await self.store.get(check.incident_id)
        tenant, n, of = check.payload["tenant"], check.payload.get("n", 1), check.payload.get("of", 1)
        finding = await check_slo(self.rt.ctx, tenant)
        count_backend_errors([finding])
        ok = finding.status.value == "ok"
        # Beyond a few sweeps late, the bot (every replica) was down when it fell due.
        late = f" (ran {late_s:.0f} s late: the bot was down)" if late_s > 3 else ""
        icon = ":white_check_mark:" if ok else ":x:"
        text = f"{icon} SLO check {n}/{of} after `{check.payload.get('action')}`: {finding.summary}{late}"
        if not ok and n == of:
            group = self.rt.config.mitigations.oncall_group
            who = f"<!subteam^{group}>" if group else "on-call"
            text += (
                f"\n:rotating_light: {who}: the SLO is still breached after the mitigation."
                f" Next: `/flk diagnose {tenant} all` and the other scenarios' steps"
            )
        await self.rt.io.post(incident.channel or self.threads.channel, text, thread_ts=incident.thread_ts)
        await self.store.add_event(
            incident.id,
            "bot",
            "check.passed" if ok else "check.failed",
            text,
            {"n": n, "of": of, "plan_id": check.payload.get("plan_id"), "data": finding.data},
        )
        return {"ok": ok, "summary": finding.summary}


def _delay(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
