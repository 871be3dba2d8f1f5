"""Where a tenant's work is posted: one thread per tenant in the incident channel."""

from __future__ import annotations

import asyncio

from bot.render import parent_text
from bot.slack_io import SlackIO


class TenantThreads:
    """The tenant's thread: found if it exists, opened (a parent message) if not."""

    def __init__(self, io: SlackIO, channel: str) -> None:
        self.io = io
        self.channel = channel
        self._threads: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def thread_for(self, tenant: str, opened_by: str) -> tuple[str, str]:
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            if tenant not in self._threads:
                text = parent_text(tenant, f"tenant SLO breach runbook · opened by {opened_by}")
                response = await self.io.post(self.channel, text)
                self._threads[tenant] = response["ts"]
        return self.channel, self._threads[tenant]

    async def set_status(self, tenant: str, status_line: str) -> None:
        ts = self._threads.get(tenant)
        if ts is not None:
            await self.io.update(self.channel, ts, parent_text(tenant, status_line))
