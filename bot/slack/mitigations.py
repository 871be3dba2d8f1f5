"""Mitigations in Slack: `/flk mitigate`, `/flk verify` and the plan's buttons, handed to the
flows (``commands.flows``) that decide; here only what the person sees when a flow says no."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from bot.service.logs import bind
from bot.service.telemetry import count_backend_errors, note_outcome
from bot.slack.steps import Respond
from commands.flows.actors import Actor, AuditUnavailable, AuthorityUnavailable, FlowError, Refused, Unknown
from commands.flows.mitigation import MitigationFlow
from commands.flows.verification import Verification
from integrations.store import JobItem

T = TypeVar("T")


def _outcome(exc: FlowError) -> str:
    if isinstance(exc, AuthorityUnavailable | AuditUnavailable):
        return "error"
    return "usage" if isinstance(exc, Unknown) else "refused"


def _icon(exc: FlowError) -> str:
    if isinstance(exc, Refused):
        return ":busts_in_silhouette:" if "second, different" in str(exc) else ":no_entry:"
    return ":information_source:" if isinstance(exc, Unknown) else ":x:"


@dataclass
class Mitigations:
    flow: MitigationFlow
    verification: Verification

    async def _run(self, respond: Respond, work: Awaitable[T], *, ephemeral: bool = True) -> T | None:
        """The flow's outcome, or None when it said no (the person is told why)."""
        try:
            return await work
        except FlowError as exc:
            note_outcome(_outcome(exc))
            extra = {"response_type": "ephemeral", "replace_original": False} if ephemeral else {}
            await respond(text=f"{_icon(exc)} {exc}", **extra)
            return None

    async def request(self, args: dict, user: str, respond: Respond, text: str) -> None:
        planned = await self._run(respond, self.flow.plan(Actor(user), args, text), ephemeral=False)
        if planned is not None:
            bind(incident_id=planned.incident.id)

    async def confirm(self, plan_id: str, user: str, respond: Respond) -> None:
        await self._run(respond, self.flow.confirm(Actor(user), plan_id))

    async def cancel(self, plan_id: str, user: str, respond: Respond) -> None:
        await self._run(respond, self.flow.cancel(Actor(user), plan_id))

    async def undo(self, plan_id: str, user: str, respond: Respond) -> None:
        await self._run(respond, self.flow.undo(Actor(user), plan_id))

    async def extend(self, plan_id: str, user: str, respond: Respond, lasts_s: float | None = None) -> None:
        until = await self._run(respond, self.flow.expiries.extend(Actor(user), plan_id, lasts_s))
        if until is not None:
            await respond(text=f":hourglass_flowing_sand: Extended until {until:%H:%M} UTC.", replace_original=False)

    async def retry_restart(self, plan_id: str, user: str, respond: Respond) -> None:
        if await self._run(respond, self.flow.retry_restart(Actor(user), plan_id)) is not None:
            await respond(text=":white_check_mark: Rollout restart done.", replace_original=False)

    async def verify(self, args: dict, user: str, respond: Respond) -> None:
        tenant, delay = args["tenant"], args["delay_s"]
        if await self._run(respond, self.verification.request(Actor(user), tenant, delay), ephemeral=False):
            await respond(
                text=f":stopwatch: SLO check for `{tenant}` scheduled" + (f" in {delay} s" if delay else " now")
            )

    async def op_apply(self, item: JobItem) -> None:
        await self.flow.apply(item.payload["plan_id"])

    async def op_expiry(self, item: JobItem) -> None:
        await self.flow.expiries.due(item.payload["plan_id"], item.payload["until"])

    async def run_check(self, check: JobItem, late_s: float) -> dict:
        report, finding = await self.verification.run_check(check, late_s)
        count_backend_errors([finding])
        return {"ok": report.ok, "summary": report.summary}
