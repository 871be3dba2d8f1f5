"""Faults while incidents open: Slack down (and the bot restarted meanwhile), the database down
(for alerts, and for a mitigation button)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.postgres import Postgres
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, running, start_bot
from tests.bot.test_alerts import alert, body, new_tenant, parents, send


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, postgres: Postgres) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-test-db-')) / 'faults.sqlite'}"
    else:
        name = f"faults_{new_tenant('db').replace('-', '_')}"
        yield await postgres.create_database(name)


async def test_slack_down_while_an_incident_opens_then_a_restart_loses_nothing(sandbox: Sandbox, database: str) -> None:
    tenant = new_tenant("down")
    # Slack unreachable: the alert is stored and its post queued, nothing is posted.
    down = await start_bot(sandbox, FLK_DATABASE_URL=database, FLK_SLACK_API_URL="http://127.0.0.1:9/api/")
    try:
        status, _ = await send(Harness(sandbox, down, SlackDriver(sandbox.slack)), body(alert(tenant)))
        assert status == 200
        incident = await down.rt.store.find_open(tenant)  # type: ignore[union-attr]
        assert incident is not None and incident.thread_ts is None
        pending = await down.rt.store.jobs.pending(incident_id=incident.id)  # type: ignore[union-attr]
        assert [item.op for item in pending] == ["post_parent", "triage"]
    finally:
        await down.stop()
    assert parents(Harness(sandbox, down, SlackDriver(sandbox.slack)), tenant) == []
    # The bot comes back with Slack reachable: the queued work completes, once.
    back = await start_bot(sandbox, FLK_DATABASE_URL=database)
    driver = SlackDriver(sandbox.slack, f"{back.url}/slack/events")
    try:
        h = Harness(sandbox, back, driver)
        summary = await h.wait_summary(tenant, wait_s=30)
        assert summary is not None
        assert len(parents(h, tenant)) == 1

        async def outbox_drained() -> bool:
            return await back.rt.store.jobs.pending(incident_id=incident.id) == []  # type: ignore[union-attr]

        await eventually(outbox_drained)
    finally:
        await driver.close()
        await back.stop()


async def test_database_down_answers_503_and_the_bot_stays_up(sandbox: Sandbox) -> None:
    async with Postgres() as pg:
        bot = await start_bot(sandbox, FLK_DATABASE_URL=pg.url)
        h = Harness(sandbox, bot, SlackDriver(sandbox.slack))
        try:
            tenant = new_tenant("pgdown")
            await pg.halt()
            status, answer = await send(h, body(alert(tenant)))
            assert status == 503
            assert "retry later" in answer["error"]
            async with aiohttp.ClientSession() as http:
                assert (await http.get(f"{bot.url}/healthz")).status == 200
                assert (await http.get(f"{bot.url}/readyz")).status == 503
                await pg.restart()
                # Alertmanager's retry now succeeds on the reconnected pool.
                status, _ = await send(h, body(alert(tenant)))
                assert status == 200
                assert (await http.get(f"{bot.url}/readyz")).status == 200
            assert await bot.rt.store.find_open(tenant) is not None  # type: ignore[union-attr]
        finally:
            await bot.stop()


async def test_a_button_pressed_while_the_database_is_down_says_so_and_changes_nothing(sandbox: Sandbox) -> None:
    tenant = next(t for t, s in sandbox.live.world.tenants.items() if s.scenario == "quota")
    config = Path(tempfile.mkdtemp(prefix="flk-pgdown-")) / "runbook.yaml"
    config.write_text("mitigations: {authorised_groups: [S_ONCALL]}\n")
    slack, kube = sandbox.slack, sandbox.kube

    def patches() -> int:
        return sum(1 for r in kube.requests if r.method == "PATCH")

    def store_down_said(before: int) -> list[str]:
        said = [e.text for e in slack.ephemerals(user="U_ALICE") if "incident store is unavailable" in e.text]
        return said[before:]

    async with Postgres() as pg, running(sandbox, FLK_DATABASE_URL=pg.url, FLK_CONFIG=str(config)) as h:
        assert (await h.driver.slash(f"mitigate {tenant} quota")).status == 200
        thread = await h.thread_ts(tenant)
        plan = await slack.wait_for(
            lambda: next((m for m in slack.thread(h.channel, thread) if "dry run" in m.all_text()), None), 20
        )
        patched = patches()
        earlier = {v.id for v in slack.views()}
        assert (await h.driver.slash(f"resolve {tenant}")).status == 200
        resolve = await slack.wait_for(lambda: next((v for v in slack.views() if v.id not in earlier), None), 20)
        try:
            await pg.halt()
            # The resolve modal stays open with the reason; nothing is posted.
            refused = await h.driver.submit_view(resolve.id)
            assert refused.status == 200 and "incident store is unavailable" in refused.body
            assert not resolve.closed
            # Confirm: told so, nothing applied.
            before = len(store_down_said(0))
            assert (await h.driver.click("flk_confirm", channel=h.channel, ts=plan.ts)).status == 200
            [said] = await slack.wait_for(lambda: store_down_said(before), 20)
            assert said.endswith("nothing was changed; try again in a minute.")
            assert patches() == patched
            await pg.restart()
        finally:
            await h.driver.close_view(resolve.id)  # other tests look for open resolve modals
        # Back up: the plan still has its buttons, and Cancel works (the world is left as it was).
        assert (await h.driver.click("flk_cancel", channel=h.channel, ts=plan.ts)).status == 200
        await slack.wait_for(lambda: "cancelled by" in plan.all_text(), 20)
        assert patches() == patched


async def test_a_database_url_that_cannot_work_stops_start_up_with_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, **sandbox.env, "FLK_LISTEN": "127.0.0.1:0"}
    env["FLK_DATABASE_URL"] = f"sqlite:///{blocker / 'incidents.sqlite'}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=env, stdout=PIPE, stderr=PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flk: FLK_DATABASE_URL: cannot create the folder"), lines
