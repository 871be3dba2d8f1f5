"""What a flow has to say in the incident's thread, as data. The Slack front end renders and
queues each one (durably, once: ``key``); without Slack they are only on the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from commands.mitigate import Applied, Plan
from integrations.store import Incident, PlanRecord


@dataclass(frozen=True)
class PlanShown:
    """A new plan, with its Confirm / Cancel (none for a dry run)."""

    record: PlanRecord
    plan: Plan


@dataclass(frozen=True)
class PlanSettled:
    """The plan's own message edited: approved once, applied, cancelled, expired, not applied."""

    record: PlanRecord
    plan: Plan
    by: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class MitigationDone:
    """Applied (or undone), with the checks that will follow."""

    record: PlanRecord
    applied: Applied
    confirmed_by: str
    check_delays_s: tuple[float, ...]


@dataclass(frozen=True)
class MitigationHalfDone:
    """Patched but not in effect (the restart failed) or partly patched: retry or undo."""

    record: PlanRecord
    applied: Applied
    reason: str


@dataclass(frozen=True)
class ApplyResumed:
    plan_id: str


@dataclass(frozen=True)
class CheckReported:
    """An SLO check's result; ``escalate``: the last check after a mitigation still fails."""

    n: int
    of: int
    ok: bool
    summary: str
    action: str | None
    tenant: str
    late_s: float
    escalate: bool
    oncall_group: str | None


@dataclass(frozen=True)
class ExpiryDue:
    """A temporary mitigation reached its expiry: ``in_place``, offer Revert and Extend (by
    ``extend_s``; 0: it cannot be extended); else say it was undone before, and offer nothing."""

    plan_id: str
    action: str
    tenant: str
    until: str
    in_place: bool
    extend_s: float


@dataclass(frozen=True)
class Extended:
    plan_id: str
    by: str
    until: str


Notice = (
    PlanShown | PlanSettled | MitigationDone | MitigationHalfDone | ApplyResumed | CheckReported | ExpiryDue | Extended
)


class Thread(Protocol):
    async def tell(self, incident: Incident, notice: Notice, *, key: str) -> None:
        """Say ``notice`` in the incident's thread, once per ``key`` across retries and replicas."""
        ...


class NoThread:
    """No Slack configured (a terminal on the day Slack is down): the timeline holds it all."""

    async def tell(self, incident: Incident, notice: Notice, *, key: str) -> None:
        return None
