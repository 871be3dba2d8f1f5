"""The rest of /flk: Socket Mode, listing breaching tenants with Triage buttons, status, incidents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from commands.promql import pct
from commands.timeline import read_timeline
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, healthy_tenant, start_bot, triage_once
from tests.bot.test_triage_e2e import check_every_tenant


@pytest.fixture(scope="module")
async def socket_harness(sandbox: Sandbox) -> AsyncIterator[Harness]:
    bot = await start_bot(sandbox, socket_mode=True)
    await sandbox.slack.wait_for_socket()
    driver = SlackDriver(sandbox.slack)  # no bot URL: envelopes go over the WebSocket
    try:
        yield Harness(sandbox, bot, driver)
    finally:
        await driver.close()
        await bot.stop()


async def test_triage_through_socket_mode(socket_harness: Harness) -> None:
    await check_every_tenant(socket_harness)


async def test_triage_without_tenant_lists_breaching_tenants_worst_first(harness: Harness) -> None:
    slack, live = harness.sandbox.slack, harness.sandbox.live
    before = len(slack.ephemerals(user="U_CAROL"))
    delivery = await harness.driver.slash("triage", user="U_CAROL")
    assert delivery.status == 200
    listing = await slack.wait_for(
        lambda: next((e for e in slack.ephemerals(user="U_CAROL")[before:] if "breaching now" in e.all_text()), None)
    )
    text = listing.all_text()
    breaching = [t for t, s in live.world.tenants.items() if s.scenario != "none"]
    assert healthy_tenant(harness.sandbox) not in text
    positions = {t: text.index(f"*{t}*") for t in breaching}
    # Worst first: by how many times over its SLO each tenant stands.
    now = time.time()

    def severity(t: str) -> float:
        esc = live.ratio(t, "flk_escalated_by_tenant", now) / 0.02
        err = live.ratio(t, "flk_signature_errors_by_tenant", now) / 0.01
        return max(esc, err)

    assert sorted(breaching, key=positions.get) == sorted(breaching, key=severity, reverse=True)  # type: ignore[arg-type]
    worst = max(breaching, key=severity)
    assert pct(live.ratio(worst, "flk_escalated_by_tenant", now))[:3] in text or "signature errors" in text
    # Each row has a Triage button that runs the triage.
    summaries = len(harness.summaries(worst))
    await harness.driver.click(f"flk_run:triage {worst}", user="U_CAROL")
    await harness.wait_summary(worst, count=summaries + 1)


async def test_status_and_incidents(harness: Harness) -> None:
    tenant = next(t for t, s in harness.sandbox.live.world.tenants.items() if s.scenario != "none")
    await triage_once(harness, tenant)
    store = harness.bot.rt.store  # type: ignore[union-attr]

    async def command_recorded() -> bool:
        incident = await store.find_open(tenant)
        return incident is not None and any(e.kind == "command" for e in await read_timeline(store, incident.id))

    # The triage ran in the channel and opened the incident: the command joins it once recorded.
    await eventually(command_recorded)
    slack = harness.sandbox.slack
    before = len(slack.ephemerals(user="U_BOB"))
    await harness.driver.slash(f"status {tenant}", user="U_BOB")
    await harness.driver.slash("incidents", user="U_BOB")

    def answer(marker: str) -> str | None:
        return next((e.all_text() for e in slack.ephemerals(user="U_BOB")[before:] if marker in e.all_text()), None)

    status = await slack.wait_for(lambda: answer("Latest events"))
    incidents = await slack.wait_for(lambda: answer("open incident(s)"))
    assert f"*{tenant}* · P2 · state *open*" in status
    assert f"/flk triage {tenant}" in status
    assert f"*{tenant}* · open · open 0 min" in incidents
    await harness.driver.slash("status no-incident-here", user="U_BOB")
    await slack.wait_for(
        lambda: any("no open incident for `no-incident-here`" in e.all_text() for e in slack.ephemerals(user="U_BOB"))
    )
