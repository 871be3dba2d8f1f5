"""Runs the store's job queue: Slack posts in order per incident, triages, applies, SLO checks
and reminders due at a time; retried with backoff (Slack's Retry-After when it gives one), and
picked up again after a restart or by another worker (process or replica).

Workers wake when a job is queued in their process, at the due time of a delayed job queued in
their process (APScheduler), and otherwise poll with a read (idle workers take no write lock,
which on SQLite would hold up the front's inserts). The leader also sets aside, once a second,
jobs that were claimed too many times (their worker died each time)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from slack_sdk.errors import SlackApiError

from bot.service.leader import Leadership
from bot.service.logs import bind
from bot.service.telemetry import OUTBOX
from commands.flows.jobs import Job
from integrations.errors import BackendError
from integrations.store import JobItem, Store, StoreUnavailable

log = logging.getLogger(__name__)

JobHandler = Callable[[JobItem], Awaitable[None]]


def worker_id() -> str:
    """Unique per worker: several bots in one process (tests) are still separate replicas."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# A claim is held this long (FLK_JOB_LEASE_S) and renewed every third of it while its job runs,
# so a job of a worker that died (SIGKILL, lost node) is handed to another within the lease, and
# a slow job (a triage waiting on a probe timeout, a post waiting on Slack's rate limit) is never
# handed out twice. A renewal can only lapse if this worker cannot reach the store for 2/3 of it.
LEASE = timedelta(seconds=15)
# Commands and clicks (answered to the person through their response_url) go first, and this
# many may run beyond ``max_in_flight``.
PERSON_WAITING = (Job.INTERACTION.value,)
RESERVED_FOR_PEOPLE = 4
RETRY_RENEW_S = 0.5


async def until_stored(write: Callable[[], Awaitable[None]], what: str, *, limit_s: float = 60) -> None:
    """A store write that follows something sent to Slack, which cannot be taken back: retried
    while the store is down (a PostgreSQL restart) instead of failing the item, whose retry
    would send it again. Raises StoreUnavailable after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    delay = 0.25
    while True:
        try:
            await write()
            return
        except StoreUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s not stored yet: incident store unavailable; retrying", what)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


async def _finish(tasks: list[asyncio.Task[None]], *, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for ``tasks`` to end, then cancel the rest and give them a second."""
    _, pending = await asyncio.wait(tasks, timeout=timeout_s) if timeout_s > 0 else (set(), set(tasks))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1)


class Waker:
    """Wakes this process's job workers: now (a job was queued here) or at a delayed job's due
    time (an APScheduler date job), so neither waits for the next poll."""

    def __init__(self, event: asyncio.Event | None = None) -> None:
        # Imported here: a front process (which runs no worker and makes no Waker) never loads it.
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.event = event or asyncio.Event()
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def now(self) -> None:
        self.event.set()

    def at(self, when: datetime) -> None:
        self.scheduler.add_job(self.now, "date", run_date=max(when, datetime.now(UTC)), misfire_grace_time=None)


class JobWorker:
    def __init__(
        self,
        store: Store,
        handlers: dict[Job, JobHandler],
        *,
        poll_s: float = 0.25,
        sweep_s: float = 1.0,
        max_in_flight: int = 8,
        on_quarantine: JobHandler | None = None,
        waker: Waker | None = None,
        leader: Leadership | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        missing = set(Job) - handlers.keys()
        if missing:
            raise ValueError(f"no handler for the job kinds {sorted(missing)}")
        self.store = store
        # Told of each item set aside for good (a line in its incident's thread).
        self.on_quarantine = on_quarantine
        self.handlers: dict[str, JobHandler] = {job.value: handler for job, handler in handlers.items()}
        self.poll_s = poll_s
        self.leader = leader
        self.lease = lease
        self._renew_s = lease.total_seconds() / 3
        self.waker = waker or Waker()
        self._sweep_s = sweep_s
        # Claim only what can run now: items claimed in bulk would wait behind Slack's rate
        # limit past their lease and be sent twice.
        self.max_in_flight = max_in_flight
        self._wake = self.waker.event
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._held: set[int] = set()  # ids of the items the running tasks hold claims on
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.worker_id = worker_id()

    def start(self) -> None:
        scheduler = self.waker.scheduler
        scheduler.add_job(
            self._sweep, "interval", seconds=self._sweep_s, max_instances=1, coalesce=True, misfire_grace_time=None
        )
        scheduler.start()
        self._task = asyncio.create_task(self._loop(), name="jobs")
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="job leases")

    def kick(self) -> None:
        self._wake.set()

    async def _sweep(self) -> None:
        # One sweeper (the leader) rather than every worker writing once a second.
        if self.leader is None or self.leader.is_leader:
            try:
                await self._quarantine()
            except StoreUnavailable:
                log.warning("job sweep skipped: incident store unavailable")

    async def stop(self) -> None:
        # Asked to finish rather than cancelled: a task cancelled inside a PostgreSQL call can
        # wait on its connection for ever (seen in the test suite), so cancelling is the fallback.
        self._stopping.set()
        self._wake.set()
        if self.waker.scheduler.running:
            self.waker.scheduler.shutdown(wait=False)
        background = [t for t in (self._task, self._heartbeat) if t is not None]
        if background:
            await _finish(background, timeout_s=5)
        if self._running:
            await asyncio.wait(list(self._running), timeout=5)
        # Whatever is still running stops here and hands its item back (see _run).
        if self._running:
            await _finish(list(self._running), timeout_s=0)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self.max_in_flight - len(self._running)
            # With every slot on long work (triages of an alert storm), a few more are kept for
            # what a person is waiting on: a command's answer must not queue behind them.
            only = None if free > 0 else PERSON_WAITING
            free = free if free > 0 else self.max_in_flight + RESERVED_FOR_PEOPLE - len(self._running)
            if free <= 0:
                await asyncio.wait(list(self._running), timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                items = []
                if await self.store.jobs.has_due(only=only):
                    items = await self.store.jobs.claim_due(
                        worker_id=self.worker_id, limit=free, lease=self.lease, only=only, first=PERSON_WAITING
                    )
            except StoreUnavailable:
                items = []
                await asyncio.sleep(1)
            except Exception:
                log.exception("job claim failed")
                items = []
                await asyncio.sleep(1)
            for item in items:
                task = asyncio.create_task(self._run(item), name=f"job {item.op} {item.id}")
                self._running.add(task)
                self._held.add(item.id)
                task.add_done_callback(self._running.discard)
                task.add_done_callback(lambda _, item_id=item.id: self._held.discard(item_id))
            if not items:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _quarantine(self) -> None:
        for item in await self.store.jobs.quarantine():
            OUTBOX.labels(op=item.op if item.op in self.handlers else "unknown", outcome="quarantined").inc()
            log.error("job %s %s quarantined after %s attempts", item.op, item.id, item.attempts)
            if self.on_quarantine is not None:
                await self.on_quarantine(item)

    async def _renew_leases(self) -> None:
        while not self._stopping.is_set():
            reached = await self._renew()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._renew_s if reached else RETRY_RENEW_S)

    async def _renew(self) -> bool:
        """Renew the claims of the running items; False when the store could not be reached."""
        held = sorted(self._held)
        if not held:
            return True
        try:
            renewed = await self.store.jobs.renew(held, worker_id=self.worker_id, lease=self.lease)
        except StoreUnavailable:
            # Retried soon: renewed as soon as the store is back, before another replica's
            # claim poll can find the lease expired.
            log.warning("job leases not renewed: incident store unavailable")
            return False
        except Exception:
            log.exception("job lease renewal failed")
            return False
        lost = set(held) - renewed - {i for i in held if i not in self._held}
        if lost:
            # Another worker holds them now (this one stalled past its lease): both may send.
            log.warning("jobs %s were handed to another worker while running here", sorted(lost))
        return True

    async def _run(self, item: JobItem) -> None:
        handler = self.handlers.get(item.op)
        # Each item runs in its own task: these name the item's incident in every line it logs.
        bind(incident_id=item.incident_id, tenant_id=item.payload.get("tenant"), user=item.payload.get("actor"))
        op = item.op if handler is not None else "unknown"  # an op from a newer version: no new label
        try:
            if handler is None:
                raise RuntimeError(f"no handler for job {item.op!r}")
            await handler(item)
        except asyncio.CancelledError:
            # Stopping: hand the item back now rather than after the claim's lease runs out.
            OUTBOX.labels(op=op, outcome="interrupted").inc()
            await self._fail(item, "interrupted by a shutdown", timedelta(0))
            raise
        except SlackApiError as exc:
            OUTBOX.labels(op=op, outcome="slack_error").inc()
            retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            error = exc.response.get("error", "slack error") if exc.response is not None else "slack error"
            delay = timedelta(seconds=float(retry_after)) if retry_after else None
            log.warning("job %s %s failed: %s", item.op, item.id, error)
            await self._fail(item, f"slack: {error}", delay)
            return
        except (BackendError, OSError, TimeoutError) as exc:
            OUTBOX.labels(op=op, outcome="backend_error").inc()
            log.warning("job %s %s failed: %s", item.op, item.id, exc)
            await self._fail(item, str(exc), None)
            return
        except Exception as exc:
            OUTBOX.labels(op=op, outcome="error").inc()
            log.exception("job %s %s failed", item.op, item.id)
            await self._fail(item, type(exc).__name__, None)
            return
        OUTBOX.labels(op=op, outcome="done").inc()
        try:
            await until_stored(partial(self.store.jobs.complete, item.id), f"job {item.op} {item.id} done")
        except StoreUnavailable:
            log.warning("job %s %s done but not marked done: it may run again", item.op, item.id)
        self.kick()

    async def _fail(self, item: JobItem, error: str, delay: timedelta | None) -> None:
        try:
            failed = await self.store.jobs.fail(item.id, error, retry_after=delay)
        except StoreUnavailable:
            return
        if failed.attempts >= self.store.jobs.max_attempts:
            OUTBOX.labels(op=item.op if item.op in self.handlers else "unknown", outcome="given_up").inc()
            log.error("job %s %s given up after %s attempts: %s", item.op, item.id, failed.attempts, error)
            if self.on_quarantine is not None:
                with contextlib.suppress(Exception):
                    await self.on_quarantine(failed)
