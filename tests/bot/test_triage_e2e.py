"""/flk triage end to end: signed slash commands into the real Bolt app, answers read back from
the Slack emulator, numbers checked against the world spec through the real Prometheus."""

from __future__ import annotations

import asyncio
import time

import pytest

from commands.models import SCENARIO_TITLE
from commands.triage import probes
from tests.bot.harness import Harness, percent, triage_once, verdict_line

RATIO_TOLERANCE = 0.05


async def check_every_tenant(h: Harness) -> None:
    world = h.sandbox.live.world
    store = h.bot.rt.store  # type: ignore[union-attr]
    # Healthy tenants without an incident (another test of the module may have opened one).
    quiet = [t for t, s in world.tenants.items() if s.scenario == "none" and await store.find_open(t) is None]
    for tenant in world.tenants:
        delivery = await h.driver.slash(f"triage {tenant}")
        assert delivery.status == 200
    summaries = await asyncio.gather(*(h.wait_summary(t) for t in world.tenants))
    now = time.time()
    for (tenant, spec), summary in zip(world.tenants.items(), summaries, strict=True):
        verdict = verdict_line(summary)
        if spec.scenario == "none":
            assert verdict.startswith("*No breach"), verdict
        else:
            assert SCENARIO_TITLE[spec.scenario] in verdict, (tenant, verdict)
            # The incident the breach opened is around the report: its parent is the checklist's message.
            assert await h.thread_ts(tenant, incident=True) == summary.thread_ts, tenant
        for title, metric in (
            ("Escalation ratio (5m)", "flk_escalated_by_tenant"),
            ("Signature-error ratio (5m)", "flk_signature_errors_by_tenant"),
        ):
            expected = h.sandbox.live.ratio(tenant, metric, now)
            assert percent(summary, title) == pytest.approx(expected, rel=RATIO_TOLERANCE), (tenant, title)
    # An answer in the channel, not a P2 (checked once the breaching tenants' incidents are open,
    # so that a healthy one's would have been too).
    for tenant in quiet:
        assert await store.find_open(tenant) is None, tenant
        answer = summaries[list(world.tenants).index(tenant)]
        assert answer.thread_ts in h.answers(tenant), tenant


async def test_each_tenant_of_the_default_world(harness: Harness) -> None:
    await check_every_tenant(harness)


async def test_each_tenant_of_a_second_world(second_harness: Harness) -> None:
    await check_every_tenant(second_harness)


async def test_progress_message_is_edited_until_every_probe_is_done(harness: Harness) -> None:
    tenant = next(iter(harness.sandbox.live.world.tenants))
    await triage_once(harness, tenant)
    progress = [m for m in harness.thread(tenant) if m.text.startswith(f"triage of {tenant}:")]
    assert progress, "no progress message"
    last = progress[-1]
    assert last.edits, "the progress message was never edited"
    total = len(probes())
    assert f"{total}/{total} probes done" in last.all_text()
    assert ":hourglass_flowing_sand:" not in last.all_text()
