"""Verification checks after a mitigation (runbook §6): scheduled in the store, fired by
APScheduler at their due time and swept every second, so a check due while the bot was down
runs when it is back, and each check runs once across replicas (the store's atomic claim).

With several replicas only the leader (bot/service/leader.py) runs the periodic sweep; a replica still
fires the checks it scheduled itself at their due time, so they are on time whoever leads."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.service.leader import Leadership
from bot.service.logs import bind
from bot.service.outbox import worker_id
from bot.service.telemetry import CHECKS
from integrations.store import ScheduledCheck, Store, StoreUnavailable

log = logging.getLogger(__name__)

CheckRunner = Callable[[ScheduledCheck, float], Awaitable[dict]]


class CheckScheduler:
    def __init__(
        self,
        store: Store,
        run: CheckRunner,
        *,
        sweep_s: float = 1.0,
        grace_s: float = 300,
        leader: Leadership | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.leader = leader
        self.grace = timedelta(seconds=grace_s)
        self.worker_id = worker_id()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._periodic_sweep,
            "interval",
            seconds=sweep_s,
            id="sweep",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)

    async def schedule(self, incident_id: int, kind: str, due_at: datetime, payload: dict) -> ScheduledCheck:
        check = await self.store.checks.schedule(incident_id, kind, due_at, payload)
        # Fire on time in this replica; the sweep covers restarts and the other replicas.
        self._scheduler.add_job(
            self.sweep,
            "date",
            run_date=due_at,
            id=f"check-{check.id}",
            misfire_grace_time=None,
            replace_existing=True,
        )
        return check

    async def _periodic_sweep(self) -> None:
        # Followers skip it: N replicas sweeping every second would be N queries for one job.
        if self.leader is None or self.leader.is_leader:
            await self.sweep()

    async def sweep(self) -> None:
        # One at a time: a batch claimed at once could outlast the grace of its last checks while
        # the first ones run, and another replica would claim (and post) those again.
        while True:
            try:
                due = await self.store.checks.claim_due(worker_id=self.worker_id, grace=self.grace, limit=1)
            except StoreUnavailable:
                log.warning("check sweep skipped: incident store unavailable")
                return
            if not due:
                return
            await self._run(due[0])

    async def _run(self, check: ScheduledCheck) -> None:
        late_s = max(0.0, (datetime.now(UTC) - check.due_at).total_seconds())
        bind(incident_id=check.incident_id, tenant_id=check.payload.get("tenant"), user=None)
        try:
            result = await self.run(check, late_s)
            await self.store.checks.finish(check.id, worker_id=self.worker_id, ok=True, result=result)
            # An SLO check answers ok True/False; other kinds (the RCA reminder) just run.
            ok = result.get("ok")
            CHECKS.labels(
                kind=check.kind, outcome="passed" if ok is True else "failed" if ok is False else "done"
            ).inc()
        except Exception as exc:
            CHECKS.labels(kind=check.kind, outcome="error").inc()
            log.exception("check %s failed", check.id)
            await self.store.checks.finish(
                check.id, worker_id=self.worker_id, ok=False, result={"error": type(exc).__name__}
            )
