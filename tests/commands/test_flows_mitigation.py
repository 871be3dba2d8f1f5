"""The mitigation flow on two worlds, without Slack: who may do what (every refusal audited and
changing nothing), plans moved on once whatever races them, the audit log before the patch, and
undo after an unrelated later change to the same ConfigMap."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator

import pytest
import yaml

from commands.config import RunbookConfig
from commands.flows.actors import Actor, AuditUnavailable, AuthorityUnavailable, Refused, Unknown
from commands.mitigate import parse_args
from sandbox.testing import second_world_yaml
from sandbox.world.spec import World
from tests.commands.flow_support import FlowWorld, flow_world
from tests.commands.mitigate_support import remedy_world

ALICE, BOB, CAROL = Actor("U_ALICE"), Actor("U_BOB"), Actor("U_CAROL")


def second_world() -> World:
    return World.model_validate(yaml.safe_load(second_world_yaml()))


WORLDS = {"remedy": remedy_world, "second": second_world}


def tenant_of(world: World, scenario: str) -> str:
    return next(t for t, s in world.tenants.items() if s.scenario == scenario)


@pytest.fixture(params=sorted(WORLDS))
async def fw(request: pytest.FixtureRequest) -> AsyncIterator[FlowWorld]:
    config = RunbookConfig.model_validate({"mitigations": {"second_approver_actions": ["rollback-policy"]}})
    async with flow_world(WORLDS[request.param](), config) as w:
        yield w


async def planned(fw: FlowWorld, words: str, actor: Actor = ALICE) -> str:
    result = await fw.flow.plan(actor, parse_args(words.split()), f"mitigate {words}")
    return result.record.id


async def test_an_outsider_changes_nothing_and_every_refusal_is_audited(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "escalations")
    with pytest.raises(Refused):
        await planned(fw, f"{tenant} degraded-mode", CAROL)
    plan_id = await planned(fw, f"{tenant} degraded-mode")
    before = fw.kw.snapshot()
    for attempt in (fw.flow.cancel, fw.flow.confirm, fw.flow.undo, fw.flow.retry_restart):
        with pytest.raises(Refused):
            await attempt(CAROL, plan_id)
    assert (await fw.store.plans.get(plan_id)).state == "planned"
    assert fw.kw.snapshot() == before
    assert fw.audit_actions().count("refused") == 5
    # The outsider's Cancel did not stop the plan: the on-call's Confirm applies it.
    await fw.flow.confirm(ALICE, plan_id)
    done = await fw.flow.apply(plan_id)
    assert done is not None and done.state == "applied"
    assert fw.kw.data(f"tenant-{tenant}")["strict_mode"] == "false"
    assert fw.members.fresh_calls >= 7


async def test_undo_of_a_quota_change_still_works_after_degraded_mode_on_the_same_configmap(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "quota")
    name = f"tenant-{tenant}"
    original = fw.kw.data(name)
    quota = await planned(fw, f"{tenant} quota 777")
    await fw.flow.confirm(ALICE, quota)
    await fw.flow.apply(quota)
    degraded = await planned(fw, f"{tenant} degraded-mode")
    await fw.flow.confirm(ALICE, degraded)
    await fw.flow.apply(degraded)
    assert fw.kw.data(name)["token_rate"] == "777" and fw.kw.data(name)["strict_mode"] == "false"
    undo = await fw.flow.undo(ALICE, quota)
    await fw.flow.confirm(ALICE, undo.record.id)
    await fw.flow.apply(undo.record.id)
    after = fw.kw.data(name)
    assert after["token_rate"] == original["token_rate"]
    assert after["strict_mode"] == "false", "the later degraded-mode change stays"
    assert (await fw.store.plans.get(quota)).state == "undone"


async def test_an_undo_is_refused_when_one_of_its_own_keys_moved_since(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "quota")
    quota = await planned(fw, f"{tenant} quota 555")
    await fw.flow.confirm(ALICE, quota)
    await fw.flow.apply(quota)
    fw.kw.store.patch("configmaps", fw.kw.namespace, f"tenant-{tenant}", {"data": {"token_rate": "1"}}, "merge")
    with pytest.raises(Exception, match="changed since"):
        await fw.flow.undo(ALICE, quota)
    assert fw.kw.data(f"tenant-{tenant}")["token_rate"] == "1"


async def test_a_dry_run_is_stored_but_cannot_be_confirmed(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "escalations")
    plan_id = await planned(fw, f"{tenant} degraded-mode --dry-run")
    before = fw.kw.snapshot()
    with pytest.raises(Refused, match="dry run"):
        await fw.flow.confirm(ALICE, plan_id)
    assert (await fw.store.plans.get(plan_id)).state == "dry_run"
    assert fw.kw.snapshot() == before


async def test_two_approvers_and_an_undo_of_an_undo_needs_them_again(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "policy")
    plan_id = await planned(fw, f"{tenant} rollback-policy")
    assert (await fw.flow.confirm(ALICE, plan_id)).state == "approved"
    with pytest.raises(Refused, match="second, different"):
        await fw.flow.confirm(ALICE, plan_id)
    assert (await fw.flow.confirm(BOB, plan_id)).state == "applying"
    await fw.flow.apply(plan_id)
    undo = await fw.flow.undo(ALICE, plan_id)
    assert not undo.plan.needs_second_approver, "restoring what ran before asks no second approval"
    await fw.flow.confirm(ALICE, undo.record.id)
    await fw.flow.apply(undo.record.id)
    again = await fw.flow.undo(ALICE, undo.record.id)
    assert again.plan.needs_second_approver, "re-applying the rollback needs what it needed"
    assert (await fw.flow.confirm(ALICE, again.record.id)).state == "approved"


async def test_concurrent_confirms_move_the_plan_once(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "escalations")
    plan_id = await planned(fw, f"{tenant} degraded-mode")
    results = await asyncio.gather(
        *(fw.flow.confirm(who, plan_id) for who in (ALICE, BOB, ALICE, BOB)), return_exceptions=True
    )
    assert [getattr(r, "state", None) for r in results].count("applying") == 1, results
    assert all(isinstance(r, Refused) or r.state in ("applying", "already") for r in results), results
    assert fw.audit_actions().count("mitigation.confirmed") == 1
    # The job run twice at once (a lease lost to a slow worker): one applies, the other does nothing.
    applied = await asyncio.gather(fw.flow.apply(plan_id), fw.flow.apply(plan_id))
    assert sorted(a is None for a in applied) == [False, True], applied
    assert sum(1 for k, _ in fw.thread.said if k == f"plan:{plan_id}:done") == 1


async def test_with_the_audit_log_unwritable_nothing_is_applied(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "escalations")
    plan_id = await planned(fw, f"{tenant} degraded-mode")
    before = fw.kw.snapshot()
    # Root ignores file modes, so the log is made unwritable by replacing it with a directory.
    fw.audit_path.rename(fw.audit_path.with_suffix(".moved"))
    fw.audit_path.mkdir()
    os.chmod(fw.audit_path, stat.S_IRUSR)
    with pytest.raises(AuditUnavailable):
        await fw.flow.confirm(ALICE, plan_id)
    assert (await fw.store.plans.get(plan_id)).state == "planned"
    assert not [item for item in await fw.store.jobs.pending() if item.op == "apply_plan"]
    assert fw.kw.snapshot() == before


async def test_a_membership_that_cannot_be_checked_changes_nothing_and_is_audited(fw: FlowWorld) -> None:
    tenant = tenant_of(fw.kw.live.world, "escalations")
    plan_id = await planned(fw, f"{tenant} degraded-mode")
    before = fw.kw.snapshot()

    async def unreachable(actor: Actor, *, fresh: bool = False) -> bool:
        raise AuthorityUnavailable("Could not check your group membership with Slack, so nothing was changed.")

    fw.members.may_change = unreachable  # type: ignore[method-assign]
    with pytest.raises(AuthorityUnavailable, match="nothing was changed"):
        await fw.flow.confirm(ALICE, plan_id)
    assert (await fw.store.plans.get(plan_id)).state == "planned"
    assert fw.kw.snapshot() == before
    assert fw.audit_actions()[-1] == "refused"


async def test_verify_of_a_tenant_that_does_not_exist_opens_nothing_and_schedules_nothing(fw: FlowWorld) -> None:
    with pytest.raises(Unknown, match="unknown tenant `nosuchtenant`"):
        await fw.flow.verification.request(ALICE, "nosuchtenant", 60)
    assert await fw.store.find_open("nosuchtenant") is None
    assert await fw.store.jobs.pending() == []
    # A tenant of the world: one check, on its incident.
    tenant = tenant_of(fw.kw.live.world, "escalations")
    incident = await fw.flow.verification.request(ALICE, tenant, 60)
    [check] = await fw.store.jobs.for_incident(incident.id, ops=["slo_check"])
    assert check.payload["tenant"] == tenant
