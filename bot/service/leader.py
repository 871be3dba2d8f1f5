"""Which replica sweeps the scheduled checks: the holder of the store's leader lock.

Every replica tries the lock every ``retry_s`` seconds; the leader uses the same tick to check
that its lock's session is still alive, so a leader cut off from the database steps down
within one tick and a follower takes over within one tick of the lock's release. Leadership
is an optimisation (one sweeper instead of N): the store's atomic claim still hands each
check to one replica if two ever believe they lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.service.telemetry import SCHEDULER_LEADER
from integrations.store.leader import LeaderLock

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, lock: LeaderLock, *, retry_s: float = 2.0) -> None:
        self.lock = lock
        self.retry_s = retry_s
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        SCHEDULER_LEADER.set(0)
        self._task = asyncio.create_task(self._loop(), name="leader election")

    async def _loop(self) -> None:
        while True:
            self._set(await self.lock.try_acquire())
            await asyncio.sleep(self.retry_s)

    def _set(self, leader: bool) -> None:
        if leader == self.is_leader:
            return
        self.is_leader = leader
        SCHEDULER_LEADER.set(1 if leader else 0)
        if self.lock.single_process:
            return
        if leader:
            log.info("scheduler leader: this replica now sweeps the scheduled checks")
        else:
            log.warning("scheduler leader: this replica lost the lock; another replica sweeps")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.lock.release()
        self._set(False)
