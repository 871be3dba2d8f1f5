"""Mitigations through signed Slack requests: refused for the unauthorised, planned, confirmed,
applied once to the Kubernetes fake with the exact patch, checked by itself afterwards (✅ after
the right mitigation, ❌ and escalation after a wrong one), undone to the exact previous state,
409 on a concurrent change, two approvers where configured, and an intact audit chain.

Runs on its own copy of the second world (mitigations change the world) with time compressed:
checks 4 s and 8 s after a change, SLIs over a 4 s window."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.audit import verify
from sandbox.testing import second_world_yaml
from tests.bot.harness import Harness, eventually, runbook_files, running
from tests.conftest import StartSandbox

CONFIG = """\
slo: {window: 4s}
mitigations:
  authorised_groups: [S_ONCALL]
  oncall_group: S_ONCALL
  verify_delays_s: [4, 8]
  second_approver_actions: [rollback-policy]
"""


@pytest.fixture(scope="module")
async def mh(start_sandbox: StartSandbox) -> AsyncIterator[Harness]:
    sb = await start_sandbox(second_world_yaml(), incident_channel="C_SRE")
    async with running(sb, **runbook_files(CONFIG, "flk-mitigate-")) as h:
        yield h


def tenant_of(h: Harness, scenario: str) -> str:
    return next(t for t, s in h.sandbox.live.world.tenants.items() if s.scenario == scenario)


def configmap(h: Harness, name: str) -> dict:
    obj = h.sandbox.kube_store.get("configmaps", h.sandbox.live.world.namespace, name)
    assert obj is not None
    return copy.deepcopy(obj)


async def newest(h: Harness, tenant: str, marker: str, after: int = 0, wait_s: float = 20) -> str:
    await h.thread_ts(tenant)

    def found() -> str | None:
        texts = [m.all_text() for m in h.thread(tenant)[after:]]
        return next((t for t in reversed(texts) if marker in t), None)

    try:
        return await h.sandbox.slack.wait_for(found, timeout=wait_s)
    except TimeoutError:
        raise AssertionError(
            f"{marker!r} not posted; ephemerals: {[e.all_text()[:150] for e in h.sandbox.slack.ephemerals()][-3:]}"
        ) from None


async def plan(h: Harness, tenant: str, action: str, user: str = "U_ALICE") -> str:
    before = len(h.thread(tenant))
    delivery = await h.driver.slash(f"mitigate {tenant} {action}", user=user)
    assert delivery.status == 200
    text = await newest(h, tenant, "dry run", after=before)
    return re.search(r"Plan `([^`]+)`", text).group(1)  # type: ignore[union-attr]


def patches(h: Harness, name: str) -> int:
    return sum(1 for r in h.sandbox.kube.requests if r.method == "PATCH" and r.path.endswith(f"/configmaps/{name}"))


async def test_unauthorised_users_are_refused_and_audited(mh: Harness) -> None:
    tenant = tenant_of(mh, "signatures")
    delivery = await mh.driver.slash(f"mitigate {tenant} key-window", user="U_CAROL")
    assert delivery.status == 200
    await mh.sandbox.slack.wait_for(
        lambda: any(
            "Only members of the authorised groups" in e.all_text() for e in mh.sandbox.slack.ephemerals(user="U_CAROL")
        )
    )
    assert patches(mh, f"tenant-{tenant}") == 0


async def test_the_right_mitigation_is_applied_once_checked_green_and_undone_exactly(mh: Harness) -> None:
    tenant = tenant_of(mh, "signatures")
    name = f"tenant-{tenant}"
    original = configmap(mh, name)
    plan_id = await plan(mh, tenant, "key-window")
    thread_before = len(mh.thread(tenant))
    # Someone outside the groups presses Confirm: refused, nothing applied.
    await mh.driver.click("flk_confirm", user="U_CAROL", channel="C_SRE")
    await asyncio.sleep(0.5)
    assert patches(mh, name) == 0
    # An on-call member double-clicks Confirm: applied once.
    await asyncio.gather(
        mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE"),
        mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE"),
    )
    applied = await newest(mh, tenant, "Applied `key-window`", after=thread_before)
    assert patches(mh, name) == 1
    after = configmap(mh, name)["data"]
    assert set(after) - set(original["data"]) == {"multi_key_window_until"}
    assert "multi_key_window_until" in applied
    green = await newest(mh, tenant, "SLO check 2/2", after=thread_before, wait_s=30)
    assert green.startswith(":white_check_mark:"), green
    # Undo: a plan of its own, confirmed, restores the exact previous data.
    await mh.driver.click("flk_undo", user="U_BOB", channel="C_SRE")
    undo_text = await newest(mh, tenant, "*Undo for", after=thread_before)
    undo_id = re.search(r"Plan `([^`]+)`", undo_text).group(1)  # type: ignore[union-attr]
    assert undo_id != plan_id
    await mh.driver.click("flk_confirm", user="U_BOB", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=thread_before)
    assert configmap(mh, name)["data"] == original["data"]


async def test_a_wrong_mitigation_is_checked_red_and_escalated(mh: Harness) -> None:
    tenant = tenant_of(mh, "signatures")
    name = f"tenant-{tenant}"
    original = configmap(mh, name)["data"]
    await plan(mh, tenant, "quota")
    before = len(mh.thread(tenant))
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Applied `quota`", after=before)
    red = await newest(mh, tenant, "SLO check 2/2", after=before, wait_s=30)
    assert red.startswith(":x:"), red
    assert "<!subteam^S_ONCALL>" in red
    await mh.driver.click("flk_undo", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "*Undo for", after=before)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=before)
    assert configmap(mh, name)["data"] == original


async def test_a_concurrent_change_is_a_conflict_and_nothing_is_applied(mh: Harness) -> None:
    tenant = tenant_of(mh, "escalations")
    name = f"tenant-{tenant}"
    await plan(mh, tenant, "degraded-mode")
    namespace = mh.sandbox.live.world.namespace
    mh.sandbox.kube_store.patch("configmaps", namespace, name, {"data": {"burst_rate": "999"}}, "merge")
    before = len(mh.thread(tenant))
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await mh.sandbox.slack.wait_for(
        lambda: any("changed since the plan" in m.all_text() for m in mh.thread(tenant)), timeout=10
    )
    assert configmap(mh, name)["data"]["strict_mode"] == "true"
    assert len(mh.thread(tenant)) == before


async def test_a_second_different_approver_is_needed_where_configured_and_the_rollback_undone_exactly(
    mh: Harness,
) -> None:
    tenant = tenant_of(mh, "policy")
    name = f"tenant-{tenant}"
    original = configmap(mh, name)["data"]
    names = (name, f"policy-{tenant}")
    originals = {n: configmap(mh, n)["data"] for n in names}
    await plan(mh, tenant, "rollback-policy")
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await asyncio.sleep(0.5)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")

    async def told_to_find_a_second_person() -> bool:
        return any("A second, different person" in e.all_text() for e in mh.sandbox.slack.ephemerals())

    await eventually(told_to_find_a_second_person)
    assert patches(mh, name) == 0
    before = len(mh.thread(tenant))
    await mh.driver.click("flk_confirm", user="U_BOB", channel="C_SRE")
    await newest(mh, tenant, "Applied `rollback-policy`", after=before)
    assert configmap(mh, name)["data"]["policy_version"] != original["policy_version"]
    # The rollback is undone to the exact previous data (both configmaps); restoring needs one approver.
    thread = len(mh.thread(tenant))
    await mh.driver.click("flk_undo", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "*Undo for", after=thread)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=thread)
    assert {n: configmap(mh, n)["data"] for n in names} == originals


async def test_the_audit_chain_is_intact_and_holds_every_step(mh: Harness) -> None:
    tenant = tenant_of(mh, "signatures")
    name = f"tenant-{tenant}"
    original = configmap(mh, name)["data"]
    await mh.driver.slash(f"mitigate {tenant} key-window", user="U_CAROL")
    thread = len(mh.thread(tenant))
    await plan(mh, tenant, "key-window")
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Applied `key-window`", after=thread)
    # Put the world back for the other tests of this module.
    await mh.driver.click("flk_undo", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "*Undo for", after=thread)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=thread)
    assert configmap(mh, name)["data"] == original
    path = mh.bot.settings.audit_log
    result = verify(path)
    assert result.ok, result.reason
    actions = (await asyncio.to_thread(Path(path).read_text)).splitlines()
    records = [json.loads(line) for line in actions]
    kinds = {r["action"] for r in records}
    assert {"refused", "mitigation.planned", "mitigation.confirmed", "mitigation.applied"} <= kinds, kinds
    refusal = next(r for r in records if r["action"] == "refused")
    assert refusal["details"]["action"].startswith("mitigation."), refusal
    applied = next(r for r in records if r["action"] == "mitigation.applied")
    assert applied["details"]["changes"] and applied["details"]["confirmed_by"], applied


async def test_degraded_mode_restarts_the_backend_and_is_undone_exactly(mh: Harness) -> None:
    tenant = tenant_of(mh, "escalations")
    name = f"tenant-{tenant}"
    original = configmap(mh, name)["data"]
    namespace = mh.sandbox.live.world.namespace
    deployment = mh.sandbox.live.world.backend.deployment

    def restarted_at() -> str | None:
        obj = mh.sandbox.kube_store.get("deployments", namespace, deployment)
        assert obj is not None
        return obj["spec"]["template"]["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/restartedAt")

    restarts = restarted_at()
    await plan(mh, tenant, "degraded-mode")
    thread = len(mh.thread(tenant))
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Applied `degraded-mode`", after=thread)
    assert configmap(mh, name)["data"] == {**original, "strict_mode": "false"}
    assert restarted_at() != restarts
    await mh.driver.click("flk_undo", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "*Undo for", after=thread)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=thread)
    assert configmap(mh, name)["data"] == original


async def test_slack_failing_after_the_change_neither_stops_nor_repeats_it(mh: Harness) -> None:
    assert mh.bot.rt is not None
    tenant = tenant_of(mh, "quota")
    name = f"tenant-{tenant}"
    plan_id = await plan(mh, tenant, "quota")
    thread = len(mh.thread(tenant))
    before = patches(mh, name)
    # Slack answers 500 to the plan's update and to each of the client's own retries: the apply
    # is not a Slack call, so it is done and recorded; the messages follow once Slack answers.
    mh.sandbox.slack.fail_next("chat.update", 4)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Applied `quota`", after=thread)
    await newest(mh, tenant, "applied by", after=thread - 1)
    await asyncio.sleep(1)
    texts = [m.all_text() for m in mh.thread(tenant)[thread:]]
    assert sum("Applied `quota`" in t for t in texts) == 1
    assert patches(mh, name) == before + 1
    incident = await mh.bot.rt.store.find_open(tenant)
    assert incident is not None
    jobs = await mh.bot.rt.store.jobs.for_incident(incident.id, ops=["slo_check"])
    checks = [c for c in jobs if c.payload.get("plan_id") == plan_id]
    assert sorted(c.payload["n"] for c in checks) == [1, 2]


async def test_a_plan_whose_message_was_deleted_is_applied_once_and_audited(mh: Harness) -> None:
    tenant = tenant_of(mh, "quota")
    name = f"tenant-{tenant}"
    plan_id = await plan(mh, tenant, "quota 444")
    message = next(m for m in reversed(mh.thread(tenant)) if f"Plan `{plan_id}`" in m.all_text())
    thread, before = len(mh.thread(tenant)), patches(mh, name)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE", ts=message.ts)
    message.deleted = True  # deleted by someone right after the click: Slack answers message_not_found
    await newest(mh, tenant, "Applied `quota`", after=thread - 1)
    assert patches(mh, name) == before + 1
    assert configmap(mh, name)["data"]["token_rate"] == "444"
    lines = (await asyncio.to_thread(Path(mh.bot.settings.audit_log).read_text)).splitlines()
    applied = [json.loads(line) for line in lines if f'"plan_id":"{plan_id}"' in line and "mitigation.applied" in line]
    assert len(applied) == 1 and applied[0]["details"]["confirmed_by"] == "U_ALICE", applied
    assert [c["before"] for c in applied[0]["details"]["changes"]] and applied[0]["details"]["changes"][0][
        "after"
    ] == "444"
    # Put the world back for the other tests of this module.
    await mh.driver.click("flk_undo", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "*Undo for", after=thread)
    await mh.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE")
    await newest(mh, tenant, "Undone", after=thread)
