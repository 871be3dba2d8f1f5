"""Two (or more) real `flk serve` processes on one PostgreSQL database behind one front URL,
with what the tests need to watch them: which one leads, which one runs an outbox item, and
SIGKILL for either."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bench.common import ServedBot, flk_command, serve_bot
from integrations.store import Store
from integrations.store.schema import jobs
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.replicas.front import Front


def worker_pids(pid: int) -> set[int]:
    """The child processes of ``pid`` (`flk serve`'s workers), from /proc."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children |= {int(p) for p in (task / "children").read_text().split()}
    return children


_LEADER = re.compile(r"^flk_bot_scheduler_leader (\S+)$", re.MULTILINE)


class Cluster:
    def __init__(
        self,
        sandbox: Sandbox,
        database_url: str,
        env: Mapping[str, str] | None = None,
        # Each replica a whole bot in one process (the leader's flag is on its /metrics); see
        # test_worker_processes.py for `flk serve` with worker processes.
        serve_args: tuple[str, ...] = ("--workers", "0"),
    ) -> None:
        self.sandbox = sandbox
        self.serve_args = serve_args
        self.database_url = database_url
        self.env = dict(env or {})
        self.front = Front()
        self.replicas: list[ServedBot] = []
        self.killed: list[ServedBot] = []
        self.store: Store | None = None
        self.driver: SlackDriver | None = None
        self._stack = contextlib.AsyncExitStack()
        self._http: aiohttp.ClientSession | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="flk-replicas-"))

    async def start(self, replicas: int = 2) -> Cluster:
        await self.front.start()
        self._stack.push_async_callback(self.front.stop)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._stack.push_async_callback(self._http.close)
        # The test reads the same database (to see who holds an item); it never writes.
        self.store = await Store.connect(self.database_url, migrate=False)
        self._stack.push_async_callback(self.store.close)
        self.driver = SlackDriver(self.sandbox.slack, f"{self.front.url}/slack/events")
        self._stack.push_async_callback(self.driver.close)
        await self.ensure(replicas)
        return self

    async def close(self) -> None:
        await self._stack.aclose()

    async def ensure(self, count: int = 2) -> None:
        """Start replicas (together) until ``count`` are alive."""
        missing = count - len(self.replicas)
        if missing > 0:
            await asyncio.gather(*(self._start_one() for _ in range(missing)))

    async def _start_one(self) -> ServedBot:
        n = len(self.replicas) + len(self.killed)
        env = {
            **self.sandbox.env,
            "FLK_DATABASE_URL": self.database_url,
            "FLK_PROGRESS_INTERVAL_S": "0.2",
            # Each pod has its own audit log file (a hash chain has one writer).
            "FLK_AUDIT_LOG": str(self._folder / f"audit-{n}-{time.monotonic_ns()}.jsonl"),
            **self.env,
        }
        bot = await self._stack.enter_async_context(serve_bot(env, flk_command("serve", *self.serve_args)))
        self.replicas.append(bot)
        self.front.backends.append(bot.url)
        return bot

    def driver_for(self, bot: ServedBot) -> SlackDriver:
        """A Slack driver that delivers to this replica only (bypassing the front)."""
        driver = SlackDriver(self.sandbox.slack, bot.events_url)
        self._stack.push_async_callback(driver.close)
        return driver

    async def kill(self, bot: ServedBot) -> float:
        """SIGKILL: no shutdown handler runs, no claim is handed back. Returns when it was sent."""
        killed_at = time.monotonic()
        os.kill(bot.pid, signal.SIGKILL)
        await bot.process.wait()
        self.replicas.remove(bot)
        self.killed.append(bot)
        # The front would find out by itself (refused connections); dropping it saves a retry.
        self.front.backends.remove(bot.url)
        return killed_at

    async def get(self, bot: ServedBot, path: str) -> tuple[int, str]:
        assert self._http is not None
        async with self._http.get(bot.url + path) as response:
            return response.status, await response.text()

    async def is_leader(self, bot: ServedBot) -> bool:
        status, text = await self.get(bot, "/metrics")
        found = _LEADER.search(text)
        return status == 200 and found is not None and float(found.group(1)) == 1.0

    async def leaders(self) -> list[ServedBot]:
        flags = await asyncio.gather(*(self.is_leader(b) for b in self.replicas))
        return [b for b, lead in zip(self.replicas, flags, strict=True) if lead]

    async def wait_single_leader(self, wait_s: float = 15) -> ServedBot:
        deadline = time.monotonic() + wait_s
        while True:
            leaders = await self.leaders()
            if len(leaders) == 1:
                return leaders[0]
            assert len(leaders) < 2, "two replicas lead at once"
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader within {wait_s:g} s")
            await asyncio.sleep(0.1)

    async def claimed(self, op: str, incident_id: int | None) -> tuple[int, int] | None:
        """The unfinished ``op`` job of the incident (None: one of no incident) and the pid of the
        worker that claimed it (worker ids are ``host:pid:suffix``)."""
        assert self.store is not None
        c = jobs.c
        of_incident = c.incident_id.is_(None) if incident_id is None else c.incident_id == incident_id
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(c.id, c.claimed_by).where(
                        c.op == op,
                        of_incident,
                        c.done_at.is_(None),
                        c.failed_at.is_(None),
                    )
                )
            ).first()
        if row is None or not row.claimed_by:
            return None
        return row.id, int(row.claimed_by.split(":")[1])

    async def holder(self, op: str, incident_id: int | None) -> tuple[int, ServedBot] | None:
        """The unfinished ``op`` job and the live replica whose process (or one of its worker
        processes) claimed it."""
        found = await self.claimed(op, incident_id)
        if found is None:
            return None
        item_id, pid = found
        bot = next((b for b in self.replicas if pid in {b.pid, *worker_pids(b.pid)}), None)
        return (item_id, bot) if bot is not None else None

    def logs(self) -> str:
        """Every replica's log tail, for an assertion's message."""
        return "\n".join(f"--- {b.url} (pid {b.pid})\n{b.log_tail(15)}" for b in [*self.replicas, *self.killed])
