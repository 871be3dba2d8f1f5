"""`flk serve`'s worker processes: N `flk worker` children that claim and run the store's jobs
while the front only verifies, acks and queues. A child that exits unexpectedly is started
again (after a pause that grows while it keeps dying); a child whose parent dies is killed by
the kernel (Linux's parent-death signal), as all the containers of a pod die together."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
RESTART_MAX_S = 30.0


def default_count() -> int:
    """Cores − 1 (the front keeps one), at least 1: the cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "bot.cli", "worker", "--no-http"]


class WorkerPool:
    def __init__(self, count: int, command: list[str] | None = None) -> None:
        self.count = count
        self.command = command or worker_command()
        self.processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None and p.returncode is None]

    async def start(self) -> None:
        for slot in range(self.count):
            self.processes[slot] = await self._spawn()
            self._tasks.append(asyncio.create_task(self._watch(slot), name=f"worker {slot}"))

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*self.command, preexec_fn=_die_with_parent)

    async def _watch(self, slot: int) -> None:
        pause = 1.0
        while not self._stopping:
            process = self.processes[slot]
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            # Its jobs are not lost: their leases run out and another worker takes them.
            log.error("worker process %s exited with %s; starting another in %.0f s", process.pid, code, pause)
            await asyncio.sleep(pause)
            pause = min(RESTART_MAX_S, pause * 2)
            self.processes[slot] = await self._spawn()

    async def stop(self, grace_s: float = 20) -> None:
        """SIGTERM each (a worker hands its running jobs back), SIGKILL what is left after ``grace_s``."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        alive = [p for p in self.processes if p is not None and p.returncode is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        if alive:
            _, pending = await asyncio.wait([asyncio.create_task(p.wait()) for p in alive], timeout=grace_s)
            for process in alive:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            if pending:
                await asyncio.wait(pending, timeout=2)
