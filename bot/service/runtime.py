"""The bot's long-lived parts, built once from settings: backends, Slack I/O, background work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.service.settings import Settings
from bot.slack.sender import ChannelLimiter, SlackIO, make_client
from commands.config import RunbookConfig
from commands.context import Context
from commands.tenants import TenantDirectory
from integrations.admin import AdminApi
from integrations.alertmanager import Alertmanager
from integrations.grafana import Grafana
from integrations.kube import Kube
from integrations.prometheus import Prometheus
from integrations.store import Store, StoreUnavailable
from integrations.tenant_repo import TenantRepo
from integrations.worm import WormScanner

log = logging.getLogger(__name__)


async def build_context(settings: Settings, config: RunbookConfig) -> Context:
    timeout = config.timeouts.probe_s
    prometheus = Prometheus(settings.prometheus_url, timeout)
    token = settings.kube_token.get_secret_value() if settings.kube_token else None
    kube = await Kube.connect(settings.kube_api_url, token, settings.namespace, timeout)
    if settings.admin_url:
        admin = AdminApi(settings.admin_url, timeout)
    else:
        # As the runbook does with `kubectl exec ... curl localhost:8080/admin`: through the API server.
        base = settings.kube_api_url or "https://kubernetes.default.svc"
        proxy = f"{base}/api/v1/namespaces/{settings.namespace}/services/{config.resources.admin_service}/proxy"
        admin = AdminApi(proxy, timeout, headers={"Authorization": f"Bearer {token}"} if token else None)
    repo = TenantRepo(settings.tenant_repo, timeout) if settings.tenant_repo else None
    directory = TenantDirectory(
        prometheus, config.metrics.ingest, config.metrics.tenant_label, config.timeouts.tenant_cache_s
    )
    worm = WormScanner(settings.worm_root) if settings.worm_root else None
    alertmanager = Alertmanager(settings.alertmanager_url, timeout) if settings.alertmanager_url else None
    grafana_token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    grafana = Grafana(settings.grafana_url, grafana_token, timeout) if settings.grafana_url else None
    return Context(
        config=config,
        prometheus=prometheus,
        kube=kube,
        admin=admin,
        repo=repo,
        tenants=directory,
        worm=worm,
        alertmanager=alertmanager,
        grafana=grafana,
    )


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
    kick_outbox: Any = field(default=lambda: None)
    schema_ready: bool = False
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
