"""Scheduled SLO checks: one that was due while the bot was down runs once when it is back, and
two replicas on PostgreSQL run each check exactly once."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from sandbox.postgres import Postgres
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, healthy_tenant, start_bot


def check_posts(sb: Sandbox, tenant: str) -> list[str]:
    return [
        str(c.args.get("text", ""))
        for c in sb.slack.calls("chat.postMessage")
        if "SLO check 1/1 asked for by hand" in str(c.args.get("text", "")) and f"`{tenant}`" in str(c.args)
    ]


async def schedule_check(h: Harness, tenant: str, delay: str) -> None:
    delivery = await h.driver.slash(f"verify {tenant} in {delay}")
    assert delivery.status == 200
    store = h.bot.rt.store  # type: ignore[union-attr]

    async def scheduled() -> bool:
        incident = await store.find_open(tenant)
        if incident is None:
            return False
        return any(j.state == "pending" for j in await store.jobs.for_incident(incident.id, ops=["slo_check"]))

    await eventually(scheduled)


async def test_a_check_due_while_the_bot_was_down_runs_once_after_restart(sandbox: Sandbox) -> None:
    tenant = healthy_tenant(sandbox)
    database = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-test-db-')) / 'checks.sqlite'}"
    first = await start_bot(sandbox, FLK_DATABASE_URL=database)
    try:
        await schedule_check(
            Harness(sandbox, first, SlackDriver(sandbox.slack, f"{first.url}/slack/events")), tenant, "3s"
        )
    finally:
        await first.stop()
    before = len(check_posts(sandbox, tenant))
    await asyncio.sleep(6)  # due while no bot runs
    assert len(check_posts(sandbox, tenant)) == before
    second = await start_bot(sandbox, FLK_DATABASE_URL=database)
    try:

        async def ran() -> bool:
            return len(check_posts(sandbox, tenant)) == before + 1

        await eventually(ran)
        await asyncio.sleep(2.5)  # two more sweeps: still once
        assert len(check_posts(sandbox, tenant)) == before + 1
        assert "ran" in check_posts(sandbox, tenant)[-1] and "late" in check_posts(sandbox, tenant)[-1]
    finally:
        await second.stop()


async def test_two_replicas_on_postgresql_run_each_check_exactly_once(sandbox: Sandbox, postgres: Postgres) -> None:
    tenant = healthy_tenant(sandbox)
    database = await postgres.create_database("two_replicas_checks")
    a = await start_bot(sandbox, FLK_DATABASE_URL=database)
    b = await start_bot(sandbox, FLK_DATABASE_URL=database)
    try:
        before = len(check_posts(sandbox, tenant))
        ha = Harness(sandbox, a, SlackDriver(sandbox.slack, f"{a.url}/slack/events"))
        hb = Harness(sandbox, b, SlackDriver(sandbox.slack, f"{b.url}/slack/events"))
        for h in (ha, hb, ha, hb, ha):
            await schedule_check(h, tenant, "2s")

        async def all_ran() -> bool:
            return len(check_posts(sandbox, tenant)) >= before + 5

        await eventually(all_ran, wait_s=20)
        await asyncio.sleep(2.5)
        assert len(check_posts(sandbox, tenant)) == before + 5
    finally:
        await a.stop()
        await b.stop()
