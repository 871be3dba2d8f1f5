"""The attack branch and temporary mitigations through signed Slack requests, on a generated world
with an attack tenant: `/flk mitigate <t> ip-block … for 3s` is planned, confirmed by the on-call
only, lands on the tenant Ingress's denylist and the SLO check after it passes; at its expiry the
thread is reminded with Revert and Extend; Extend is refused to an outsider and moves the expiry
for the on-call (a new reminder follows); Revert is an ordinary undo that takes out exactly the
ranges the block added. Bad input changes nothing; a reminder due while the bot was down is posted
once after a restart."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commands.mitigate import DENYLIST
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from sandbox.world.generate import generate
from tests.bot.harness import Harness, runbook_files, running, start_bot
from tests.conftest import StartSandbox

# A generated world with an attack tenant, the one tests/sandbox/test_world_generate.py runs too
# (the same world and options share one running sandbox).
SEED = 20
CHANNEL = "C_INCIDENTS"  # the sandbox's first channel, its incident channel by default
CONFIG = "mitigations: {authorised_groups: [S_ONCALL], verify_delays_s: [4]}\nslo: {window: 4s}\n"


@pytest.fixture(scope="module")
async def attacked(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(generate(SEED).yaml_text)


@pytest.fixture(scope="module")
async def ah(attacked: Sandbox) -> AsyncIterator[Harness]:
    async with running(attacked, **runbook_files(CONFIG, "flk-ipblock-")) as h:
        yield h


def attack_tenant() -> str:
    return next(t for t, truth in generate(SEED).truth.items() if truth.cause == "attack")


def denylist(sb: Sandbox, tenant: str) -> str | None:
    obj = sb.kube_store.get("ingresses", sb.live.world.namespace, f"tenant-{tenant}")
    assert obj is not None
    return (obj["metadata"].get("annotations") or {}).get(DENYLIST)


def set_denylist(sb: Sandbox, tenant: str, value: str | None) -> None:
    body = {"metadata": {"annotations": {DENYLIST: value}}}
    sb.kube_store.patch("ingresses", sb.live.world.namespace, f"tenant-{tenant}", body, "merge")


def ingress_patches(sb: Sandbox, tenant: str) -> int:
    return sum(1 for r in sb.kube.requests if r.method == "PATCH" and r.path.endswith(f"/ingresses/tenant-{tenant}"))


async def posted(h: Harness, tenant: str, marker: str, after: int = 0, wait_s: float = 20) -> str:
    await h.thread_ts(tenant)

    def found() -> str | None:
        return next((m.all_text() for m in reversed(h.thread(tenant)[after:]) if marker in m.all_text()), None)

    return await h.sandbox.slack.wait_for(found, timeout=wait_s)


async def told(h: Harness, user: str, marker: str) -> str:
    def found() -> str | None:
        return next((e.all_text() for e in h.sandbox.slack.ephemerals(user=user) if marker in e.all_text()), None)

    return await h.sandbox.slack.wait_for(found, timeout=10)


def plan_id_in(text: str) -> str:
    match = re.search(r"Plan `([0-9a-f]+)`", text) or re.search(r"plan `([0-9a-f]+)`", text)
    assert match, text
    return match.group(1)


async def test_block_reminded_extended_then_reverted_exactly(ah: Harness) -> None:
    sb, tenant = ah.sandbox, attack_tenant()
    remedy = sb.live.world.tenants[tenant].remedy
    assert remedy is not None
    set_denylist(sb, tenant, "192.0.2.200/32")
    attackers = ",".join(remedy.sources)
    await ah.driver.slash(f"mitigate {tenant} ip-block {attackers},198.51.100.0/24 for 3s", user="U_ALICE")
    shown = await posted(ah, tenant, "Mitigation `ip-block`")
    assert "temporary: lasts 3 s" in shown and DENYLIST in shown
    plan_id = plan_id_in(shown)
    await ah.driver.click("flk_confirm", user="U_CAROL", channel=CHANNEL)
    await told(ah, "U_CAROL", "Only members of the authorised groups")
    assert ingress_patches(sb, tenant) == 0
    start = len(ah.thread(tenant))
    await ah.driver.click("flk_confirm", user="U_ALICE", channel=CHANNEL)
    applied = await posted(ah, tenant, "Applied `ip-block`", after=start)
    assert ":hourglass: until" in applied
    blocked = ",".join(f"{ip}/32" for ip in remedy.sources)
    assert denylist(sb, tenant) == f"192.0.2.200/32,{blocked},198.51.100.0/24"
    first = await posted(ah, tenant, "has reached its expiry", after=start, wait_s=15)
    # The attackers denied at the ingress, the tenant's SLO is met again.
    check = await posted(ah, tenant, "SLO check 1/1 after `ip-block`", after=start, wait_s=20)
    assert check.startswith(":white_check_mark:"), check
    assert plan_id in first
    # An outsider's Extend is refused at click time and moves nothing.
    await ah.driver.click("flk_extend", user="U_CAROL", channel=CHANNEL)
    await told(ah, "U_CAROL", "Only members of the authorised groups")
    reminders = len(ah.thread(tenant))
    await ah.driver.click("flk_extend", user="U_ALICE", channel=CHANNEL)
    await posted(ah, tenant, f"extended plan `{plan_id}`", after=reminders)
    await posted(ah, tenant, "has reached its expiry", after=reminders, wait_s=15)
    # Someone adds a range by hand meanwhile; Revert (an undo plan, confirmed) takes out only the block's.
    set_denylist(sb, tenant, denylist(sb, tenant) + ",100.64.9.0/24")
    before_revert = len(ah.thread(tenant))
    await ah.driver.click("flk_undo", user="U_BOB", channel=CHANNEL)
    await posted(ah, tenant, "*Undo for", after=before_revert)
    await ah.driver.click("flk_confirm", user="U_BOB", channel=CHANNEL)
    await posted(ah, tenant, "Undone", after=before_revert)
    assert denylist(sb, tenant) == "192.0.2.200/32,100.64.9.0/24"
    await ah.driver.slash(f"extend {plan_id} 1h", user="U_ALICE")
    await told(ah, "U_ALICE", "not in place: nothing to extend")
    set_denylist(sb, tenant, None)


async def test_bad_addresses_are_a_short_usage_message_and_change_nothing(ah: Harness) -> None:
    sb, tenant = ah.sandbox, attack_tenant()
    before = ingress_patches(sb, tenant)
    delivery = await ah.driver.slash(f"mitigate {tenant} ip-block 300.1.2.3", user="U_ALICE")
    assert delivery.status == 200
    assert "`300.1.2.3` is not an IP address or CIDR range" in delivery.body, delivery.body
    assert "Usage: `/flk mitigate" in delivery.body
    assert ingress_patches(sb, tenant) == before


async def test_a_reminder_due_while_the_bot_was_down_is_posted_once_after_a_restart(attacked: Sandbox) -> None:
    tenant = attack_tenant()
    files = runbook_files(CONFIG, "flk-ipblock-restart-")
    database = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-test-db-')) / 'expiry.sqlite'}"
    env = {**files, "FLK_DATABASE_URL": database}
    first = await start_bot(attacked, **env)
    h = Harness(attacked, first, SlackDriver(attacked.slack, f"{first.url}/slack/events"))
    try:
        await h.driver.slash(f"mitigate {tenant} ip-block 203.0.113.77 for 3s", user="U_ALICE")
        plan_id = plan_id_in(await posted(h, tenant, "203.0.113.77"))
        start = len(h.thread(tenant))
        await h.driver.click("flk_confirm", user="U_ALICE", channel=CHANNEL)
        await posted(h, tenant, "Applied `ip-block`", after=start)
    finally:
        await h.driver.close()
        await first.stop()
    ts = await h.thread_ts(tenant)

    def reminders() -> int:
        marker = f"(plan `{plan_id}`) has reached its expiry"
        return sum(marker in m.all_text() for m in attacked.slack.thread(CHANNEL, ts))

    await asyncio.sleep(4)  # due while no bot runs
    assert reminders() == 0
    second = await start_bot(attacked, **env)
    try:
        await attacked.slack.wait_for(lambda: reminders() == 1 or None, timeout=15)
        await asyncio.sleep(1.5)
        assert reminders() == 1
    finally:
        await second.stop()
        set_denylist(attacked, tenant, None)
