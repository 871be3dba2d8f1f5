"""The job queue: work that must survive a restart and run once across replicas and worker
processes (Slack posts, triages, applies, SLO checks and reminders due at a time).

Claims are one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
on PostgreSQL concurrent claimers skip each other's rows; on SQLite the write lock taken
at BEGIN serialises them. Either way a row is handed to one claimer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, case, exists, select, update
from sqlalchemy.orm import aliased

from integrations.store.engine import Db
from integrations.store.errors import NotFound
from integrations.store.records import JobItem
from integrations.store.schema import jobs
from integrations.store.scrub import scrub, scrub_text

_ERROR_CHARS = 500


def _job(row: Row[Any]) -> JobItem:
    m = row._mapping
    return JobItem(
        id=m["id"],
        incident_id=m["incident_id"],
        op=m["op"],
        payload=m["payload"],
        dedupe_key=m["dedupe_key"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        ordered=m["ordered"],
        due_at=m["due_at"],
        done_at=m["done_at"],
        failed_at=m["failed_at"],
    )


def _claimable(query: Select[Any], limit: int) -> Select[Any]:
    return query.limit(limit).with_for_update(skip_locked=True)


def default_backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at 5 minutes."""
    return timedelta(seconds=min(300, 2 ** max(0, attempts - 1)))


class Jobs:
    """Jobs stored with the change that caused them, run (and retried) later by any worker.

    Ordered jobs of one incident are handed out in order: one is not claimable while an older
    ordered job of the same incident is unfinished (a thread reply waits for its parent post).
    An unordered job (a check due in ten minutes) neither waits nor holds the others up.
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
        ordered: bool = True,
    ) -> JobItem | None:
        """Queue ``op``; None when an item with ``dedupe_key`` was queued before (by anyone)."""
        now = self._db.clock()
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    self._db.insert(jobs)
                    .values(
                        incident_id=incident_id,
                        op=op,
                        payload=scrub(payload),
                        dedupe_key=dedupe_key,
                        ordered=ordered,
                        attempts=0,
                        created_at=now,
                        due_at=not_before or now,
                        next_attempt_at=not_before or now,
                    )
                    .on_conflict_do_nothing()
                    .returning(*jobs.c)
                )
            ).first()
        return None if row is None else _job(row)

    def _due(self, now: datetime, only: Sequence[str] | None = None, first: Sequence[str] = ()) -> Select[Any]:
        """Ids of the jobs that may run now (of the kinds ``only``, if given): those of the kinds
        ``first`` (a person waiting on an answer) before the rest, then oldest due first. One
        claimed ``max_attempts`` times is not among them: it waits for ``quarantine()``."""
        c = jobs.c
        earlier = aliased(jobs)
        blocked = exists().where(
            c.ordered,
            earlier.c.ordered,
            earlier.c.incident_id == c.incident_id,
            earlier.c.id < c.id,
            earlier.c.done_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        return (
            select(c.id)
            .where(
                c.done_at.is_(None),
                c.failed_at.is_(None),
                c.next_attempt_at <= now,
                c.attempts < self.max_attempts,
                ~blocked,
                *([c.op.in_(only)] if only is not None else []),
            )
            .order_by(*([case((c.op.in_(first), 0), else_=1)] if first else []), c.next_attempt_at, c.id)
        )

    async def claim_due(
        self,
        *,
        worker_id: str,
        limit: int = 10,
        lease: timedelta = timedelta(seconds=60),
        now: datetime | None = None,
        only: Sequence[str] | None = None,
        first: Sequence[str] = (),
    ) -> list[JobItem]:
        """Hand out due items (of the kinds ``only``, if given; of the kinds ``first`` before
        the others) to ``worker_id``. A claimed item is due again after ``lease`` unless
        completed or failed first (the worker died: someone else retries it)."""
        now = now or self._db.clock()
        due = _claimable(self._due(now, only, first), limit)
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(due.scalar_subquery()))
                .values(claimed_by=worker_id, attempts=jobs.c.attempts + 1, next_attempt_at=now + lease)
                .returning(*jobs.c)
            )
            return sorted((_job(r) for r in rows), key=lambda i: i.id)

    async def has_due(self, *, now: datetime | None = None, only: Sequence[str] | None = None) -> bool:
        """Whether ``claim_due`` would hand anything out: a read, so idle workers polling take
        no write lock (on SQLite it would hold up the front's inserts)."""
        async with self._db.read() as conn:
            return (await conn.execute(self._due(now or self._db.clock(), only).limit(1))).first() is not None

    async def quarantine(self, *, now: datetime | None = None) -> list[JobItem]:
        """Set aside the due items already claimed ``max_attempts`` times: a job whose worker
        dies each time it runs it (out of memory, a crash) must not take every replica down in
        turn, for ever. They stay in the table, marked failed, for a person to look at."""
        now = now or self._db.clock()
        c = jobs.c
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(jobs)
                .where(
                    c.done_at.is_(None),
                    c.failed_at.is_(None),
                    c.next_attempt_at <= now,
                    c.attempts >= self.max_attempts,
                )
                .values(failed_at=now, claimed_by=None, last_error=f"quarantined after {self.max_attempts} attempts")
                .returning(*jobs.c)
            )
            return [_job(r) for r in rows]

    async def renew(
        self, item_ids: Sequence[int], *, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> set[int]:
        """Extend the claims ``worker_id`` still holds on ``item_ids`` by ``lease`` from now; the
        ids renewed (an item missing was finished, failed or handed to another worker)."""
        if not item_ids:
            return set()
        now = now or self._db.clock()
        c = jobs.c
        async with self._db.write() as conn:
            rows = await conn.execute(
                update(jobs)
                .where(c.id.in_(list(item_ids)), c.claimed_by == worker_id, c.done_at.is_(None), c.failed_at.is_(None))
                .values(next_attempt_at=now + lease)
                .returning(c.id)
            )
            return {r[0] for r in rows}

    async def complete(self, item_id: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(jobs).where(jobs.c.id == item_id).values(done_at=self._db.clock(), last_error=None)
            )

    async def fail(self, item_id: int, error: str, *, retry_after: timedelta | None = None) -> JobItem:
        """Record a failed attempt; retry after ``retry_after`` (e.g. Slack's Retry-After) or
        the default backoff, or give up for good after ``max_attempts``."""
        now = self._db.clock()
        async with self._db.write() as conn:
            attempts = (
                await conn.execute(select(jobs.c.attempts).where(jobs.c.id == item_id).with_for_update())
            ).scalar_one_or_none()
            if attempts is None:
                raise NotFound(f"no job {item_id}")
            give_up = attempts >= self.max_attempts
            row = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == item_id)
                    .values(
                        last_error=scrub_text(error)[:_ERROR_CHARS],
                        claimed_by=None,
                        next_attempt_at=now + (retry_after if retry_after is not None else default_backoff(attempts)),
                        failed_at=now if give_up else None,
                    )
                    .returning(*jobs.c)
                )
            ).one()
            return _job(row)

    async def pending(self, *, incident_id: int | None = None) -> list[JobItem]:
        """Items neither done nor given up, oldest first."""
        where: list[ColumnElement[bool]] = [jobs.c.done_at.is_(None), jobs.c.failed_at.is_(None)]
        if incident_id is not None:
            where.append(jobs.c.incident_id == incident_id)
        async with self._db.read() as conn:
            rows = await conn.execute(select(jobs).where(*where).order_by(jobs.c.id))
            return [_job(r) for r in rows]

    async def for_incident(self, incident_id: int, *, ops: Sequence[str] | None = None) -> list[JobItem]:
        """The incident's jobs in any state (``ops``: of those kinds only), oldest first."""
        query = select(jobs).where(jobs.c.incident_id == incident_id)
        if ops is not None:
            query = query.where(jobs.c.op.in_(list(ops)))
        async with self._db.read() as conn:
            return [_job(r) for r in await conn.execute(query.order_by(jobs.c.id))]

    async def given_up(self) -> list[JobItem]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(jobs).where(jobs.c.failed_at.is_not(None)).order_by(jobs.c.id))
            return [_job(r) for r in rows]
