"""Mitigation plans as records: one row a plan, its state moved on by one conditional UPDATE per
transition. Two clicks, two replicas or a retry racing each other: exactly one UPDATE matches
the state it expects, the others learn they lost (``None``) and do nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row, select, update

from integrations.store.engine import Db
from integrations.store.errors import NotFound
from integrations.store.schema import plans
from integrations.store.scrub import scrub

PlanState = Literal[
    "dry_run",
    "planned",
    "approved",
    "applying",
    "applied",
    "partial",
    "conflict",
    "failed",
    "cancelled",
    "expired",
    "undone",
]
# A plan in one of these is done with: nothing moves it on (an undo is a plan of its own).
FINAL_STATES: tuple[PlanState, ...] = ("dry_run", "conflict", "failed", "cancelled", "expired")


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: str
    incident_id: int
    tenant: str
    action: str
    state: PlanState
    plan: dict[str, Any]
    applied: dict[str, Any] | None
    planned_by: str
    approvers: tuple[str, ...]
    confirmed_by: str | None
    undoes: str | None
    reason: str | None
    channel: str | None
    message_ts: str | None
    apply_started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


def _record(row: Row[Any]) -> PlanRecord:
    m = row._mapping
    return PlanRecord(
        id=m["id"],
        incident_id=m["incident_id"],
        tenant=m["tenant"],
        action=m["action"],
        state=m["state"],
        plan=m["plan"],
        applied=m["applied"],
        planned_by=m["planned_by"],
        approvers=tuple(m["approvers"] or ()),
        confirmed_by=m["confirmed_by"],
        undoes=m["undoes"],
        reason=m["reason"],
        channel=m["channel"],
        message_ts=m["message_ts"],
        apply_started_at=m["apply_started_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        expires_at=m["expires_at"],
    )


class Plans:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def create(
        self,
        plan_id: str,
        *,
        incident_id: int,
        tenant: str,
        action: str,
        plan: dict[str, Any],
        planned_by: str,
        expires_at: datetime,
        undoes: str | None = None,
        dry_run: bool = False,
    ) -> PlanRecord:
        now = self._db.clock()
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    plans.insert()
                    .values(
                        id=plan_id,
                        incident_id=incident_id,
                        tenant=tenant,
                        action=action,
                        state="dry_run" if dry_run else "planned",
                        plan=scrub(plan),
                        planned_by=planned_by,
                        approvers=[],
                        undoes=undoes,
                        created_at=now,
                        updated_at=now,
                        expires_at=expires_at,
                    )
                    .returning(*plans.c)
                )
            ).one()
        return _record(row)

    async def get(self, plan_id: str) -> PlanRecord:
        async with self._db.read() as conn:
            row = (await conn.execute(select(plans).where(plans.c.id == plan_id))).first()
        if row is None:
            raise NotFound(f"no plan {plan_id}")
        return _record(row)

    async def find(self, plan_id: str) -> PlanRecord | None:
        try:
            return await self.get(plan_id)
        except NotFound:
            return None

    async def transition(
        self, plan_id: str, expected: Iterable[PlanState], to: PlanState, **values: Any
    ) -> PlanRecord | None:
        """Move the plan from one of ``expected`` to ``to`` (setting ``values`` too); None when it
        was not in one of them (someone else moved it first)."""
        if "applied" in values:
            values["applied"] = scrub(values["applied"])
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(plans)
                    .where(plans.c.id == plan_id, plans.c.state.in_(list(expected)))
                    .values(state=to, updated_at=self._db.clock(), **values)
                    .returning(*plans.c)
                )
            ).first()
        return None if row is None else _record(row)

    async def approve(self, plan_id: str, approver: str) -> PlanRecord | None:
        """The first approval of a two-approver plan: planned → approved by ``approver``."""
        return await self.transition(plan_id, ("planned",), "approved", approvers=[approver])

    async def start_apply(
        self, plan_id: str, *, stale_after: timedelta = timedelta(seconds=15)
    ) -> tuple[PlanRecord, bool] | None:
        """Mark the apply as started; ``(record, resumed)``, resumed when an earlier attempt
        started it more than ``stale_after`` ago (its worker stopped part-way: the job's lease ran
        out). None unless the plan is applying and nobody else is applying it right now."""
        now = self._db.clock()
        c = plans.c
        fresh = c.apply_started_at.is_(None)
        stale = c.apply_started_at <= now - stale_after
        async with self._db.write() as conn:
            for where, resumed in ((fresh, False), (stale, True)):
                row = (
                    await conn.execute(
                        update(plans)
                        .where(c.id == plan_id, c.state == "applying", where)
                        .values(apply_started_at=now, updated_at=now)
                        .returning(*plans.c)
                    )
                ).first()
                if row is not None:
                    return _record(row), resumed
        return None

    async def stop_apply(self, plan_id: str) -> None:
        """An attempt that failed part-way (the audit log or the store under it): its start is
        marked stale at once, so that the job's retry resumes from what the cluster shows."""
        async with self._db.write() as conn:
            await conn.execute(
                update(plans)
                .where(plans.c.id == plan_id, plans.c.state == "applying")
                .values(apply_started_at=self._db.clock() - timedelta(days=1))
            )

    async def set_applied(self, plan_id: str, applied: dict[str, Any]) -> None:
        """What the cluster holds now (before the outcome is settled): for a resumed apply."""
        async with self._db.write() as conn:
            await conn.execute(
                update(plans).where(plans.c.id == plan_id).values(applied=scrub(applied), updated_at=self._db.clock())
            )

    async def replace_applied(self, plan_id: str, seen: datetime, applied: dict[str, Any]) -> PlanRecord | None:
        """An applied plan's ``applied`` moved on (an extended expiry) only if nobody changed the
        record since it was read (its ``updated_at`` is still ``seen``); None when someone did."""
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(plans)
                    .where(plans.c.id == plan_id, plans.c.state == "applied", plans.c.updated_at == seen)
                    .values(applied=scrub(applied), updated_at=self._db.clock())
                    .returning(*plans.c)
                )
            ).first()
        return None if row is None else _record(row)

    async def set_message(self, plan_id: str, channel: str, ts: str) -> None:
        """Where the plan is shown in Slack, so that its state can be edited into it."""
        async with self._db.write() as conn:
            await conn.execute(update(plans).where(plans.c.id == plan_id).values(channel=channel, message_ts=ts))

    async def for_incident(self, incident_id: int) -> list[PlanRecord]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(plans).where(plans.c.incident_id == incident_id).order_by(plans.c.created_at, plans.c.id)
            )
            return [_record(r) for r in rows]

    async def undo_of(self, plan_id: str) -> PlanRecord | None:
        """The newest undo plan of ``plan_id`` that is not final (planned, approved, applying, applied)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(plans)
                    .where(plans.c.undoes == plan_id, plans.c.state.not_in(list(FINAL_STATES)))
                    .order_by(plans.c.created_at.desc())
                )
            ).first()
        return None if row is None else _record(row)
