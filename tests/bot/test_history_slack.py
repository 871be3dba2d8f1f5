"""Memory of past incidents through signed Slack requests, across a bot restart, on a generated
world: a first bot diagnoses a quota tenant, applies `quota`, checks it green, undoes it (the
world is shared) and the incident is closed; a second bot on the same store (the first one gone)
shows that incident in the next triage and diagnosis, and the diagnosis of the same cause says
what fixed it last time."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from sandbox.world.generate import generate
from tests.bot.harness import Harness, runbook_files, start_bot, triage_once
from tests.conftest import StartSandbox

# The generated world the IP block tests and tests/sandbox/test_world_generate.py run (one sandbox).
SEED = 20
CHANNEL = "C_INCIDENTS"
CONFIG = "mitigations: {authorised_groups: [S_ONCALL], verify_delays_s: [4]}\nslo: {window: 4s}\n"


def quota_tenant() -> str:
    return next(t for t, truth in generate(SEED).truth.items() if truth.cause == "retry_storm")


async def diagnose_quota(h: Harness, tenant: str) -> str:
    before = len(h.summaries(tenant, "Diagnose"))
    delivery = await h.driver.slash(f"diagnose {tenant} quota", user="U_ALICE")
    assert delivery.status == 200
    await h.thread_ts(tenant)
    await h.sandbox.slack.wait_for(lambda: len(h.summaries(tenant, "Diagnose")) > before, timeout=30)
    return h.summaries(tenant, "Diagnose")[-1].all_text()


async def wait_text(h: Harness, tenant: str, marker: str, wait_s: float = 20) -> str:
    # The mitigation opens the incident (a diagnosis that finds no breach opens none): its thread.
    await h.thread_ts(tenant, incident=True)

    def found() -> str | None:
        return next((m.all_text() for m in reversed(h.thread(tenant)) if marker in m.all_text()), None)

    return await h.sandbox.slack.wait_for(found, timeout=wait_s)


async def test_past_incidents_are_shown_after_a_restart(start_sandbox: StartSandbox) -> None:
    sb: Sandbox = await start_sandbox(generate(SEED).yaml_text)
    tenant = quota_tenant()
    database = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-test-db-')) / 'memory.sqlite'}"
    env = {**runbook_files(CONFIG, "flk-memory-"), "FLK_DATABASE_URL": database}
    first = await start_bot(sb, **env)
    h = Harness(sb, first, SlackDriver(sb.slack, f"{first.url}/slack/events"))
    try:
        # Prometheus needs a few scrapes of the fresh world before its 4 s SLO window shows the breach.
        for _ in range(10):
            if "retry storm" in await diagnose_quota(h, tenant):
                break
            await asyncio.sleep(1)
        else:
            raise AssertionError("the quota tenant's retry storm was never diagnosed")
        await h.driver.slash(f"mitigate {tenant} quota", user="U_ALICE")
        plan = await wait_text(h, tenant, "Mitigation `quota`")
        change = re.search(r"token_rate: \"(\d+)\" → \"(\d+)\"", plan)
        assert change, plan
        await h.driver.click("flk_confirm", user="U_ALICE", channel=CHANNEL)
        await wait_text(h, tenant, "Applied `quota`")
        assert (await wait_text(h, tenant, "SLO check 1/1")).startswith(":white_check_mark:")
        # The world is shared: the quota goes back (the history keeps the mitigation as undone).
        await h.driver.click("flk_undo", user="U_ALICE", channel=CHANNEL)
        await wait_text(h, tenant, "*Undo for")
        await h.driver.click("flk_confirm", user="U_ALICE", channel=CHANNEL)
        await wait_text(h, tenant, "Undone")
        store = first.rt.store  # type: ignore[union-attr]
        incident = await store.find_open(tenant)
        assert incident is not None
        await store.set_state(incident.id, "resolved", actor="U_ALICE", reason="quota raised")
    finally:
        await h.driver.close()
        await first.stop()
    second = await start_bot(sb, **env)
    h = Harness(sb, second, SlackDriver(sb.slack, f"{second.url}/slack/events"))
    try:
        triaged = (await triage_once(h, tenant, user="U_ALICE")).all_text()
        assert "Past incidents (90 days)" in triaged
        assert f"#{incident.id} · " in triaged and f"token_rate {change[1]} → {change[2]}" in triaged
        assert "checks passed" in triaged
        diagnosed = await diagnose_quota(h, tenant)
        assert f"last time quota token_rate {change[1]} → {change[2]} fixed this (incident #{incident.id}" in diagnosed
    finally:
        await h.driver.close()
        await second.stop()
