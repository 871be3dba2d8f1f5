"""Work that must survive a restart and run once across replicas: the Slack outbox and
scheduled verification checks.

Claims are one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
on PostgreSQL concurrent claimers skip each other's rows; on SQLite the write lock taken
at BEGIN serialises them. Either way a row is handed to one claimer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, exists, select, update
from sqlalchemy.orm import aliased

from integrations.store.engine import Db
from integrations.store.errors import NotFound
from integrations.store.records import CheckState, OutboxItem, ScheduledCheck
from integrations.store.schema import outbox, scheduled_checks
from integrations.store.scrub import scrub, scrub_text

_ERROR_CHARS = 500


def _outbox_item(row: Row[Any]) -> OutboxItem:
    m = row._mapping
    return OutboxItem(
        id=m["id"],
        incident_id=m["incident_id"],
        op=m["op"],
        payload=m["payload"],
        dedupe_key=m["dedupe_key"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
    )


def _check(row: Row[Any]) -> ScheduledCheck:
    m = row._mapping
    return ScheduledCheck(
        id=m["id"],
        incident_id=m["incident_id"],
        kind=m["kind"],
        due_at=m["due_at"],
        payload=m["payload"],
        state=m["state"],
        attempts=m["attempts"],
        claimed_by=m["claimed_by"],
        claimed_at=m["claimed_at"],
        result=m["result"],
    )


def _claimable(query: Select[Any], limit: int) -> Select[Any]:
    return query.limit(limit).with_for_update(skip_locked=True)


def default_backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at 5 minutes."""
    return timedelta(seconds=min(300, 2 ** max(0, attempts - 1)))


class Outbox:
    """Slack operations stored with the change that caused them, sent (and retried) later.

    Items of one incident are handed out in order: an item is not claimable while an older
    item of the same incident is unfinished (a thread reply waits for its parent post).
    """

    def __init__(self, db: Db, *, max_attempts: int = 20) -> None:
        self._db = db
        self.max_attempts = max_attempts

    async def enqueue(
        self,
        op: str,
        payload: dict[str, Any],
        *,
        incident_id: int | None = None,
        dedupe_key: str | None = None,
        not_before: datetime | None = None,
    ) -> OutboxItem | None:
        """Queue ``op``; None when an item with ``dedupe_key`` was queued before (by anyone)."""
        now = self._db.clock()
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    self._db.insert(outbox)
                    .values(
                        incident_id=incident_id,
                        op=op,
                        payload=scrub(payload),
                        dedupe_key=dedupe_key,
                        attempts=0,
                        created_at=now,
                        next_attempt_at=not_before or now,
                    )
                    .on_conflict_do_nothing()
                    .returning(*outbox.c)
                )
            ).first()
        return None if row is None else _outbox_item(row)

    async def claim_due(
        self, *, worker_id: str, limit: int = 10, lease: timedelta = timedelta(seconds=60), now: datetime | None = None
    ) -> list[OutboxItem]:
        """Hand out due items to ``worker_id``. A claimed item is due again after ``lease``
        unless completed or failed first (the worker died: someone else retries it)."""
        now = now or self._db.clock()
        earlier = aliased(outbox)
        blocked = exists().where(
            earlier.c.incident_id == outbox.c.incident_id,
            earlier.c.id < outbox.c.id,
            earlier.c.done_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        due = _claimable(
            select(outbox.c.id)
            .where(outbox.c.done_at.is_(None), outbox.c.failed_at.is_(None), outbox.c.next_attempt_at <= now, ~blocked)
            .order_by(outbox.c.next_attempt_at, outbox.c.id),
            limit,
        )
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(due.scalar_subquery()))
                .values(claimed_by=worker_id, attempts=outbox.c.attempts + 1, next_attempt_at=now + lease)
                .returning(*outbox.c)
            )
            return sorted((_outbox_item(r) for r in rows), key=lambda i: i.id)

    async def quarantine(self, *, now: datetime | None = None) -> list[OutboxItem]:
        """Set aside the due items already claimed ``max_attempts`` times: a job whose worker
        dies each time it runs it (out of memory, a crash) must not take every replica down in
        turn, for ever. They stay in the table, marked failed, for a person to look at."""
        now = now or self._db.clock()
        c = outbox.c
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(outbox)
                .where(
                    c.done_at.is_(None),
                    c.failed_at.is_(None),
                    c.next_attempt_at <= now,
                    c.attempts >= self.max_attempts,
                )
                .values(failed_at=now, claimed_by=None, last_error=f"quarantined after {self.max_attempts} attempts")
                .returning(*outbox.c)
            )
            return [_outbox_item(r) for r in rows]

    async def renew(
        self, item_ids: Sequence[int], *, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> set[int]:
        """Extend the claims ``worker_id`` still holds on ``item_ids`` by ``lease`` from now; the
        ids renewed (an item missing was finished, failed or handed to another worker)."""
        if not item_ids:
            return set()
        now = now or self._db.clock()
        c = outbox.c
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(outbox)
                .where(c.id.in_(list(item_ids)), c.claimed_by == worker_id, c.done_at.is_(None), c.failed_at.is_(None))
                .values(next_attempt_at=now + lease)
                .returning(c.id)
            )
            return {r[0] for r in rows}

    async def complete(self, item_id: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(outbox).where(outbox.c.id == item_id).values(done_at=self._db.clock(), last_error=None)
            )

    async def fail(self, item_id: int, error: str, *, retry_after: timedelta | None = None) -> OutboxItem:
        """Record a failed attempt; retry after ``retry_after`` (e.g. Slack's Retry-After) or
        the default backoff, or give up for good after ``max_attempts``."""
        now = self._db.clock()
        async with self._db.write() as conn:
            attempts = (
                await conn.execute(select(outbox.c.attempts).where(outbox.c.id == item_id).with_for_update())
            ).scalar_one_or_none()
            if attempts is None:
                raise NotFound(f"no outbox item {item_id}")
            give_up = attempts >= self.max_attempts
            row = (
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id == item_id)
                    .values(
                        last_error=scrub_text(error)[:_ERROR_CHARS],
                        claimed_by=None,
                        next_attempt_at=now + (retry_after if retry_after is not None else default_backoff(attempts)),
                        failed_at=now if give_up else None,
                    )
                    .returning(*outbox.c)
                )
            ).one()
            return _outbox_item(row)

    async def pending(self, *, incident_id: int | None = None) -> list[OutboxItem]:
        """Items neither done nor given up, oldest first."""
        where: list[ColumnElement[bool]] = [outbox.c.done_at.is_(None), outbox.c.failed_at.is_(None)]
        if incident_id is not None:
            where.append(outbox.c.incident_id == incident_id)
        async with self._db.read() as conn:
            rows = await conn.execute(select(outbox).where(*where).order_by(outbox.c.id))
            return [_outbox_item(r) for r in rows]

    async def given_up(self) -> list[OutboxItem]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(outbox).where(outbox.c.failed_at.is_not(None)).order_by(outbox.c.id))
            return [_outbox_item(r) for r in rows]


class Checks:
    """Verification checks due at a time (e.g. +5 and +10 minutes after a mitigation)."""

    def __init__(self, db: Db, *, max_attempts: int = 3) -> None:
        self._db = db
        self.max_attempts = max_attempts

    async def schedule(
        self, incident_id: int, kind: str, due_at: datetime, payload: dict[str, Any] | None = None
    ) -> ScheduledCheck:
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    scheduled_checks.insert()
                    .values(
                        incident_id=incident_id,
                        kind=kind,
                        due_at=due_at,
                        payload=scrub(payload or {}),
                        state="pending",
                        attempts=0,
                    )
                    .returning(*scheduled_checks.c)
                )
            ).one()
            return _check(row)

    async def claim_due(
        self, *, worker_id: str, now: datetime | None = None, grace: timedelta = timedelta(minutes=5), limit: int = 10
    ) -> list[ScheduledCheck]:
        """Hand due checks to ``worker_id``; each one to a single worker.

        A check claimed more than ``grace`` ago and never finished belongs to a worker that
        died: it is handed out again, ``max_attempts`` times at most, then marked failed.
        The first claimer, if merely slow, learns it lost the check from ``finish()``.
        """
        now = now or self._db.clock()
        c = scheduled_checks.c
        stale = and_(c.state == "claimed", c.claimed_at <= now - grace)
        due = _claimable(
            select(c.id)
            .where(((c.state == "pending") & (c.due_at <= now)) | (stale & (c.attempts < self.max_attempts)))
            .order_by(c.due_at, c.id),
            limit,
        )
        async with self._db.write() as conn:
            await conn.execute(
                update(scheduled_checks)
                .where(stale, c.attempts >= self.max_attempts)
                .values(state="failed", finished_at=now, result={"error": "the workers running this check stopped"})
            )
            rows = await conn.execute(
                update(scheduled_checks)
                .where(c.id.in_(due.scalar_subquery()))
                .values(state="claimed", claimed_by=worker_id, claimed_at=now, attempts=c.attempts + 1)
                .returning(*scheduled_checks.c)
            )
            return sorted((_check(r) for r in rows), key=lambda x: (x.due_at, x.id))

    async def finish(
        self, check_id: int, *, worker_id: str, ok: bool = True, result: dict[str, Any] | None = None
    ) -> bool:
        """Mark the check done (or failed); False if ``worker_id`` no longer holds it."""
        c = scheduled_checks.c
        async with self._db.write() as conn:
            res = await conn.execute(
                update(scheduled_checks)
                .where(c.id == check_id, c.state == "claimed", c.claimed_by == worker_id)
                .values(state="done" if ok else "failed", finished_at=self._db.clock(), result=scrub(result))
            )
            return res.rowcount == 1

    async def cancel(self, incident_id: int, *, kinds: Sequence[str] | None = None) -> int:
        """Cancel the incident's pending checks (all, or those of ``kinds``); how many."""
        c = scheduled_checks.c
        where = [c.incident_id == incident_id, c.state == "pending"]
        if kinds is not None:
            where.append(c.kind.in_(kinds))
        async with self._db.write() as conn:
            res = await conn.execute(
                update(scheduled_checks).where(*where).values(state="cancelled", finished_at=self._db.clock())
            )
            return int(res.rowcount)

    async def for_incident(
        self, incident_id: int, *, states: Sequence[CheckState] | None = None
    ) -> list[ScheduledCheck]:
        c = scheduled_checks.c
        query = select(scheduled_checks).where(c.incident_id == incident_id)
        if states is not None:
            query = query.where(c.state.in_(states))
        async with self._db.read() as conn:
            return [_check(r) for r in await conn.execute(query.order_by(c.due_at, c.id))]
