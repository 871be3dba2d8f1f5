"""The bot's long-lived parts, built once from settings: backends, Slack I/O, background work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.service.context import build_context
from bot.service.settings import Settings
from bot.slack.sender import ChannelLimiter, SlackIO, make_client
from commands.config import RunbookConfig
from commands.context import Context
from integrations.store import Store, StoreUnavailable

log = logging.getLogger(__name__)


class Deduper:
    """First caller of a key wins; Slack retries and double clicks reuse the key."""

    def __init__(self, ttl_s: float = 3600) -> None:
        self._seen: dict[str, float] = {}
        self._ttl_s = ttl_s

    def claim(self, key: str) -> bool:
        now = time.monotonic()
        if len(self._seen) > 10000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self._ttl_s}
        if key in self._seen and now - self._seen[key] < self._ttl_s:
            return False
        self._seen[key] = now
        return True


@dataclass
class Runtime:
    settings: Settings
    config: RunbookConfig
    ctx: Context
    io: SlackIO
    store: Store
    dedupe: Deduper = field(default_factory=Deduper)
    # Set when a job is queued: the job workers wake at once instead of at their next poll.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    schema_ready: bool = False
    # Exports running in this replica (at most export.max_concurrent; see steps.op_export).
    exports: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    async def create(cls, settings: Settings, config: RunbookConfig, *, channel_rate: float = 1.0) -> Runtime:
        ctx = await build_context(settings, config)
        client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
        io = SlackIO(client, ChannelLimiter(channel_rate, burst=10))
        try:
            store = await Store.connect(settings.database_url, migrate=False)
        except BaseException:
            await ctx.close()
            await client.session.close()  # type: ignore[union-attr]
            raise
        rt = cls(settings=settings, config=config, ctx=ctx, io=io, store=store)
        await rt.migrate_once()
        if not rt.schema_ready:
            rt.spawn(rt._migrate_until_ready(), name="migrate")
        return rt

    async def migrate_once(self) -> None:
        try:
            await self.store.migrate()
            self.schema_ready = True
        except StoreUnavailable:
            # The bot stays up: the webhook answers 503 (Alertmanager retries) until the database is back.
            log.warning("incident store unavailable at start-up; retrying in the background")

    async def _migrate_until_ready(self) -> None:
        while not self.schema_ready:
            await asyncio.sleep(2)
            await self.migrate_once()

    async def claim(self, key: str) -> bool:
        """First delivery wins, across replicas (the store), or in this process when it is down."""
        try:
            return await self.store.keys.claim(key)
        except StoreUnavailable:
            return self.dedupe.claim(key)

    def kick_jobs(self) -> None:
        self.wake.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run work after the ack; the task is kept so it is neither collected nor lost on shutdown."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout_s: float = 30) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def close(self) -> None:
        await self.drain(5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        await self.ctx.close()
        await self.store.close()
        session = self.io.client.session
        if session is not None:
            await session.close()
