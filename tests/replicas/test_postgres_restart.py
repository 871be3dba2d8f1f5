"""PostgreSQL restarted under two running replicas: while it is down the bot says so (readyz
503, the webhook 503 so that Alertmanager retries); when it is back both replicas reconnect by
themselves, one of them leads again, and nothing queued or scheduled before is lost.

The server is this module's own (not the session's shared one): restarting it cuts every
session, which other modules' fixtures should not have to survive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from integrations.store import Store
from sandbox.postgres import Postgres
from sandbox.up import Sandbox
from tests.replicas.cluster import Cluster
from tests.replicas.slack_view import containing, firing, parents, send_webhook, summaries, thread_ts, until

DOWN_S = 3.0


@pytest.fixture(scope="module")
async def restarted(replicas_sandbox: Sandbox, runbook_env: dict[str, str]) -> AsyncIterator[tuple[Cluster, Postgres]]:
    async with Postgres() as pg:
        running = Cluster(replicas_sandbox, pg.url, runbook_env)
        try:
            yield await running.start(2), pg
        finally:
            await running.close()


async def _statuses(cluster: Cluster, path: str) -> list[int]:
    return [status for status, _ in await asyncio.gather(*(cluster.get(b, path) for b in cluster.replicas))]


async def test_the_replicas_reconnect_and_lose_nothing(restarted: tuple[Cluster, Postgres]) -> None:
    cluster, pg = restarted
    assert cluster.driver is not None and cluster.store is not None
    since = time.time()
    await cluster.wait_single_leader()
    # Before: an alert handled to the end, and a check due after the outage.
    assert await send_webhook(cluster, cluster.front.url, firing("orbit")) == 200
    orbit = await thread_ts(cluster, "orbit")
    await until(lambda: summaries(cluster, orbit, "orbit"), 30, "orbit's triage", cluster)
    assert (await cluster.driver.slash("verify meridian in 6s")).status == 200
    meridian = await thread_ts(cluster, "meridian")

    outage = asyncio.create_task(pg.restart(down_for=DOWN_S))
    await until(lambda: not pg.running, 10, "PostgreSQL stopped")
    # During the outage: not ready, and an alert is refused with 503 by whichever replica gets it.
    await until(lambda: _all(cluster, "/readyz", 503), 5, "readyz 503 on both replicas", cluster)
    assert await send_webhook(cluster, cluster.front.url, firing("halcyon")) == 503
    await outage

    # After: both ready again, by themselves, and one leader.
    await until(lambda: _all(cluster, "/readyz", 200), 15, "readyz 200 on both replicas", cluster)
    await cluster.wait_single_leader(15)
    # Alertmanager retries the refused notification; a person asks for a triage.
    assert await send_webhook(cluster, cluster.front.url, firing("halcyon")) == 200
    assert (await cluster.driver.slash("triage tundra-3")).status == 200
    for tenant in ("halcyon", "tundra-3"):
        ts = await thread_ts(cluster, tenant)
        await until(lambda t=tenant, s=ts: summaries(cluster, s, t), 30, f"{tenant}'s triage", cluster)
    # The check scheduled before the outage fired once, after it.
    await until(lambda: containing(cluster, meridian, "SLO check 1/1"), 20, "meridian's check", cluster)
    # Every queued item done (none stuck behind a claim the outage interrupted), none given up,
    # and none run twice: one parent, one summary, one check result each.
    store = cluster.store
    await until(lambda: _none_pending(store), 30, "the outbox drained", cluster)
    await asyncio.sleep(2)
    assert await store.jobs.given_up() == []
    assert len(containing(cluster, meridian, "SLO check 1/1")) == 1
    for tenant in ("orbit", "halcyon", "tundra-3"):
        ts = await thread_ts(cluster, tenant)
        assert len(parents(cluster, tenant, since)) == 1, tenant
        assert len(summaries(cluster, ts, tenant)) == 1, tenant


async def _all(cluster: Cluster, path: str, status: int) -> bool:
    return all(s == status for s in await _statuses(cluster, path))


async def _none_pending(store: Store) -> bool:
    return await store.jobs.pending() == []
