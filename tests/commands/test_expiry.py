"""Temporary mitigations without Slack, on two worlds: an applied degraded mode or IP block
carries its expiry and one reminder job due then (queued apart from the incident's ordered jobs);
Extend is gated, audited and moves the expiry (the earlier reminder then says nothing); a
mitigation undone before its expiry is reminded as undone, with nothing to offer; a rollback and an
undo are not temporary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from commands import mitigate
from commands.config import RunbookConfig
from commands.flows.actors import Actor, Refused
from commands.flows.notices import ExpiryDue, Extended
from commands.mitigate import parse_args
from commands.registry import UsageError
from sandbox.testing import second_world_yaml
from sandbox.world.generate import generate
from sandbox.world.spec import World
from tests.commands.flow_support import FlowWorld, flow_world

ALICE, CAROL = Actor("U_ALICE"), Actor("U_CAROL")


def second_world() -> World:
    return World.model_validate(yaml.safe_load(second_world_yaml()))


WORLDS = {"second": second_world, "seed41": lambda: generate(41).world()}


@pytest.fixture(params=sorted(WORLDS))
async def fw(request: pytest.FixtureRequest) -> AsyncIterator[FlowWorld]:
    config = RunbookConfig.model_validate({"mitigations": {"default_expiry_s": 1800}})
    async with flow_world(WORLDS[request.param](), config) as w:
        yield w


def some_tenant(fw: FlowWorld) -> str:
    return sorted(fw.kw.live.world.tenants)[0]


async def applied(fw: FlowWorld, words: str) -> str:
    planned = await fw.flow.plan(ALICE, parse_args(words.split()), f"mitigate {words}")
    await fw.flow.confirm(ALICE, planned.record.id)
    done = await fw.flow.apply(planned.record.id)
    assert done is not None and done.state == "applied", done
    return planned.record.id


async def reminders(fw: FlowWorld, plan_id: str) -> list:
    due = await fw.store.jobs.claim_due(worker_id="test", now=datetime.now(UTC) + timedelta(days=30), limit=100)
    return [i for i in due if i.op == "mitigation_expiry" and i.payload["plan_id"] == plan_id]


def until_of(record: object) -> datetime:
    until = mitigate.Applied.from_dict(record.applied).until  # type: ignore[attr-defined]
    assert until is not None
    return until


async def test_an_applied_temporary_mitigation_has_one_reminder_at_its_expiry(fw: FlowWorld) -> None:
    tenant = next(t for t, s in fw.kw.live.world.tenants.items() if s.config.get("strict_mode") != "false")
    degraded = await applied(fw, f"{tenant} degraded-mode")
    block = await applied(fw, f"{tenant} ip-block 203.0.113.5 for 2h")
    degraded_until = until_of(await fw.store.plans.get(degraded))
    block_until = until_of(await fw.store.plans.get(block))
    assert 1790 < (degraded_until - datetime.now(UTC)).total_seconds() <= 1800
    assert 7190 < (block_until - datetime.now(UTC)).total_seconds() <= 7200
    (item,) = await reminders(fw, block)
    assert item.incident_id is None  # never holds the thread's later posts for hours
    assert item.payload["until"] == block_until.isoformat()
    now_due = await fw.store.jobs.claim_due(worker_id="now", limit=100)
    assert not [i for i in now_due if i.op == "mitigation_expiry"]


async def test_extend_is_gated_audited_and_the_earlier_reminder_then_says_nothing(fw: FlowWorld) -> None:
    tenant = some_tenant(fw)
    plan_id = await applied(fw, f"{tenant} ip-block 203.0.113.6 for 1h")
    first = until_of(await fw.store.plans.get(plan_id))
    with pytest.raises(Refused):
        await fw.flow.expiries.extend(CAROL, plan_id, 3600)
    assert until_of(await fw.store.plans.get(plan_id)) == first
    moved = await fw.flow.expiries.extend(ALICE, plan_id, 7200)
    assert moved == first + timedelta(hours=2)
    assert until_of(await fw.store.plans.get(plan_id)) == moved
    assert "mitigation.extended" in fw.audit_actions()
    assert [n for _, n in fw.thread.said if isinstance(n, Extended)] == [
        Extended(plan_id, "U_ALICE", moved.isoformat())
    ]
    said = len(fw.thread.said)
    await fw.flow.expiries.due(plan_id, first.isoformat())  # the stale reminder
    assert len(fw.thread.said) == said
    await fw.flow.expiries.due(plan_id, moved.isoformat())
    due = fw.thread.said[-1][1]
    assert isinstance(due, ExpiryDue) and due.in_place and due.extend_s == 3600


async def test_a_mitigation_undone_before_its_expiry_is_reminded_as_undone(fw: FlowWorld) -> None:
    tenant = some_tenant(fw)
    plan_id = await applied(fw, f"{tenant} ip-block 203.0.113.7")
    until = until_of(await fw.store.plans.get(plan_id))
    undo = await fw.flow.undo(ALICE, plan_id)
    await fw.flow.confirm(ALICE, undo.record.id)
    await fw.flow.apply(undo.record.id)
    assert await reminders(fw, undo.record.id) == []
    await fw.flow.expiries.due(plan_id, until.isoformat())
    due = fw.thread.said[-1][1]
    assert isinstance(due, ExpiryDue) and not due.in_place
    with pytest.raises(Refused, match="not in place"):
        await fw.flow.expiries.extend(ALICE, plan_id)


async def test_a_rollback_is_not_temporary(fw: FlowWorld) -> None:
    tenant = next(t for t, s in fw.kw.live.world.tenants.items() if s.scenario == "policy")
    with pytest.raises(UsageError, match="not temporary"):
        parse_args([tenant, "rollback-policy", "for", "2h"])
    plan_id = await applied(fw, f"{tenant} rollback-policy")
    record = await fw.store.plans.get(plan_id)
    assert mitigate.Plan.from_dict(record.plan).lasts_s is None
    assert mitigate.Applied.from_dict(record.applied).until is None  # type: ignore[arg-type]
    assert await reminders(fw, plan_id) == []
    with pytest.raises(Refused, match="not temporary"):
        await fw.flow.expiries.extend(ALICE, plan_id)


async def test_a_key_window_ends_by_itself_so_it_is_reverted_or_planned_again_not_extended(fw: FlowWorld) -> None:
    tenant = some_tenant(fw)
    plan_id = await applied(fw, f"{tenant} key-window for 1h")
    until = until_of(await fw.store.plans.get(plan_id))
    window = datetime.fromisoformat(fw.kw.data(f"tenant-{tenant}")["multi_key_window_until"])
    assert abs((window - until).total_seconds()) < 5  # the window was opened at the plan, the clock starts at the apply
    with pytest.raises(Refused, match="closes by itself"):
        await fw.flow.expiries.extend(ALICE, plan_id)
    await fw.flow.expiries.due(plan_id, until.isoformat())
    due = fw.thread.said[-1][1]
    assert isinstance(due, ExpiryDue) and due.in_place and due.extend_s == 0


async def test_a_half_applied_mitigation_gets_its_expiry_when_the_restart_is_retried(fw: FlowWorld) -> None:
    tenant = next(t for t, s in fw.kw.live.world.tenants.items() if s.config.get("strict_mode") != "false")
    planned = await fw.flow.plan(ALICE, parse_args([tenant, "degraded-mode", "for", "1h"]), "degraded-mode")
    await fw.flow.confirm(ALICE, planned.record.id)
    fw.kw.fake.rbac.deny("patch", "deployments")
    try:
        half = await fw.flow.apply(planned.record.id)
    finally:
        fw.kw.fake.rbac.allow("patch", "deployments")
    assert half is not None and half.state == "partial"
    assert await reminders(fw, planned.record.id) == []
    done = await fw.flow.retry_restart(ALICE, planned.record.id)
    assert done.state == "applied"
    until = until_of(done)
    (item,) = await reminders(fw, planned.record.id)
    assert item.payload["until"] == until.isoformat()
