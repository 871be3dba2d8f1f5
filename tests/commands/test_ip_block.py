"""Scenario C's attack branch without Slack, on the second world and on generated worlds with an
attack tenant: the IP block is planned from the tenant Ingress as it is, applied to the
ingress-nginx denylist at the plan's resourceVersion, undone by taking out exactly the ranges it
added (entries added before or since stay), refused cleanly for bad input, a 409 on a concurrent
change; the sandbox's attack recedes once every attacker is denied; and a diagnosis naming an
attack offers the block of the sources it found."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import yaml

from commands.config import RunbookConfig
from commands.diagnose.offers import ATTACK_SOURCES, offer_ip_block
from commands.flows.actors import Actor, FlowError
from commands.mitigate import DENYLIST, parse_args
from commands.models import Finding, Status, Verdict
from commands.registry import UsageError
from sandbox.testing import second_world_yaml
from sandbox.world.generate import generate
from sandbox.world.spec import World
from tests.commands.flow_support import FlowWorld, flow_world

ALICE = Actor("U_ALICE")
# Generated worlds holding an attack tenant (sandbox/world/generate.py).
ATTACK_SEEDS = (3, 28)


def second_world() -> tuple[World, str]:
    world = World.model_validate(yaml.safe_load(second_world_yaml()))
    return world, next(t for t, s in world.tenants.items() if s.scenario == "quota")


def generated(seed: int) -> tuple[World, str]:
    g = generate(seed)
    return g.world(), next(t for t, truth in g.truth.items() if truth.cause == "attack")


WORLDS = {"second": second_world, **{f"seed{s}": (lambda s=s: generated(s)) for s in ATTACK_SEEDS}}


@pytest.fixture(params=sorted(WORLDS))
async def attacked(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FlowWorld, str]]:
    world, tenant = WORLDS[request.param]()
    async with flow_world(world, RunbookConfig()) as w:
        yield w, tenant


def annotations(fw: FlowWorld, tenant: str) -> dict[str, str]:
    obj = fw.kw.store.get("ingresses", fw.kw.namespace, f"tenant-{tenant}")
    assert obj is not None
    return dict(obj["metadata"].get("annotations") or {})


def set_denylist(fw: FlowWorld, tenant: str, value: str) -> None:
    body = {"metadata": {"annotations": {DENYLIST: value}}}
    fw.kw.store.patch("ingresses", fw.kw.namespace, f"tenant-{tenant}", body, "merge")


async def applied(fw: FlowWorld, words: str) -> str:
    planned = await fw.flow.plan(ALICE, parse_args(words.split()), f"mitigate {words}")
    await fw.flow.confirm(ALICE, planned.record.id)
    done = await fw.flow.apply(planned.record.id)
    assert done is not None and done.state == "applied", done
    return planned.record.id


async def test_the_block_lands_on_the_denylist_and_the_undo_takes_back_only_its_own_ranges(
    attacked: tuple[FlowWorld, str],
) -> None:
    fw, tenant = attacked
    set_denylist(fw, tenant, "192.0.2.99/32")
    plan_id = await applied(fw, f"{tenant} ip-block 203.0.113.7,198.51.100.0/24 192.0.2.99")
    assert annotations(fw, tenant)[DENYLIST] == "192.0.2.99/32,203.0.113.7/32,198.51.100.0/24"
    patches = [r for r in fw.kw.fake.requests if r.method == "PATCH" and r.path.endswith(f"/ingresses/tenant-{tenant}")]
    assert len(patches) == 1 and patches[0].content_type == "application/merge-patch+json"
    assert "/apis/networking.k8s.io/v1/" in patches[0].path
    # Someone adds another range by hand after the block; the undo leaves it and the older one.
    set_denylist(fw, tenant, annotations(fw, tenant)[DENYLIST] + ",100.64.0.0/16")
    undo = await fw.flow.undo(ALICE, plan_id)
    await fw.flow.confirm(ALICE, undo.record.id)
    done = await fw.flow.apply(undo.record.id)
    assert done is not None and done.state == "applied"
    assert annotations(fw, tenant)[DENYLIST] == "192.0.2.99/32,100.64.0.0/16"
    assert (await fw.store.plans.get(plan_id)).state == "undone"
    assert {"mitigation.planned", "mitigation.confirmed", "mitigation.applied"} <= set(fw.audit_actions())


async def test_an_undo_of_the_only_ranges_removes_the_annotation(attacked: tuple[FlowWorld, str]) -> None:
    fw, tenant = attacked
    before = annotations(fw, tenant)
    plan_id = await applied(fw, f"{tenant} ip-block 203.0.113.8")
    undo = await fw.flow.undo(ALICE, plan_id)
    await fw.flow.confirm(ALICE, undo.record.id)
    await fw.flow.apply(undo.record.id)
    assert annotations(fw, tenant) == before


@pytest.mark.parametrize(
    "words",
    ["ip-block", "ip-block 300.1.2.3", "ip-block 10.0.0.0/33", "ip-block evil.example", "ip-block 1.2.3.4 for 0m"],
)
def test_bad_input_is_a_short_usage_error(words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_args(["acme", *words.split()])
    assert len(str(caught.value)) < 90


async def test_ranges_too_wide_or_already_denied_are_refused_and_nothing_changes(
    attacked: tuple[FlowWorld, str],
) -> None:
    fw, tenant = attacked
    set_denylist(fw, tenant, "203.0.113.7/32")
    before = fw.kw.store.get("ingresses", fw.kw.namespace, f"tenant-{tenant}")
    for words, said in (("ip-block 10.0.0.0/8", "too wide"), ("ip-block 203.0.113.7", "already denied")):
        with pytest.raises(FlowError, match=said):
            await fw.flow.plan(ALICE, parse_args([tenant, *words.split()]), words)
    assert fw.kw.store.get("ingresses", fw.kw.namespace, f"tenant-{tenant}") == before


async def test_a_concurrent_change_to_the_ingress_is_a_conflict_and_nothing_is_applied(
    attacked: tuple[FlowWorld, str],
) -> None:
    fw, tenant = attacked
    planned = await fw.flow.plan(ALICE, parse_args([tenant, "ip-block", "203.0.113.9"]), "ip-block")
    set_denylist(fw, tenant, "100.64.1.0/24")
    await fw.flow.confirm(ALICE, planned.record.id)
    done = await fw.flow.apply(planned.record.id)
    assert done is not None and done.state == "conflict"
    assert annotations(fw, tenant)[DENYLIST] == "100.64.1.0/24"


async def test_a_missing_ingress_is_refused_with_its_name(attacked: tuple[FlowWorld, str]) -> None:
    fw, tenant = attacked
    fw.kw.store.delete("ingresses", fw.kw.namespace, f"tenant-{tenant}")
    with pytest.raises(FlowError, match=f"ingress `tenant-{tenant}` does not exist"):
        await fw.flow.plan(ALICE, parse_args([tenant, "ip-block", "203.0.113.9"]), "ip-block")


def test_an_attack_verdict_offers_the_block_of_the_sources_it_found() -> None:
    sources = ["203.0.113.7", "198.51.100.4", "not-an-ip", "203.0.113.7"]
    findings = [
        Finding("quota.logs", "Quota-exceeded lines", Status.BREACH, "", data={ATTACK_SOURCES: sources}),
        Finding("quota.hits", "hits", Status.ERROR, "down", data={ATTACK_SOURCES: ["192.0.2.1"]}),
    ]
    attack = Verdict("quota", "attack", cause="attack", next_steps=["notify t1"])
    burst = Verdict("quota", "legitimate burst", cause="legitimate_burst", next_steps=["mitigate t1 quota"])
    offer_ip_block("t1", [attack, burst], findings, RunbookConfig())
    assert attack.next_steps == ["mitigate t1 ip-block 203.0.113.7/32,198.51.100.4/32", "notify t1"]
    assert burst.next_steps == ["mitigate t1 quota"]
    # The step offered parses back to the same block.
    assert parse_args(attack.next_steps[0].split()[1:])["ips"] == ["203.0.113.7/32", "198.51.100.4/32"]


@pytest.mark.parametrize("seed", [12, 28])
async def test_blocking_the_attackers_makes_the_attack_recede_and_the_undo_brings_it_back(seed: int) -> None:
    world, tenant = generated(seed)
    remedy = world.tenants[tenant].remedy
    assert remedy is not None and remedy.action == "ip-block"
    async with flow_world(world, RunbookConfig()) as fw:
        live = fw.kw.live

        def now_rps() -> float:
            return live.value(tenant, "quota_exceeded_rps", time.time() + 0.001)

        attacked = now_rps()
        # Blocking all but one attacker is not enough: that source still floods the tenant.
        partial = await applied(fw, f"{tenant} ip-block {','.join(remedy.sources[1:])}")
        assert now_rps() == attacked
        block = await applied(fw, f"{tenant} ip-block {remedy.sources[0]}")
        assert now_rps() == remedy.recovers_to["quota_exceeded_rps"] < attacked
        undo = await fw.flow.undo(ALICE, block)
        await fw.flow.confirm(ALICE, undo.record.id)
        await fw.flow.apply(undo.record.id)
        assert now_rps() == attacked
        assert (await fw.store.plans.get(partial)).state == "applied"
