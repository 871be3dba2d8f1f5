"""Every mitigation against the running worlds (the default one and the second one): planned with
the exact before → after read from the world spec, applied to the Kubernetes fake with exactly
that merge patch (read back), and undone to exactly the previous data. Then a 409, a 403 and a
failed restart on the second world, and the world answering the right mitigation only.

These sandboxes are shared with the rest of the session: every object changed here is put back.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.context import Context
from commands.mitigate import (
    Applied,
    Change,
    Conflict,
    Forbidden,
    ObjectChange,
    ObjectRef,
    PartialApply,
    Plan,
    Refused,
    apply,
    plan,
    plan_undo,
    retry_restart,
)
from integrations.kube import RESTARTED_AT
from sandbox.up import Sandbox
from sandbox.world.spec import World
from tests.commands.mitigate_support import denied

MERGE, STRATEGIC = "application/merge-patch+json", "application/strategic-merge-patch+json"


@dataclass
class Running:
    sandbox: Sandbox
    ctx: Context

    @property
    def world(self) -> World:
        return self.sandbox.live.world

    @property
    def namespace(self) -> str:
        return self.world.namespace

    def data(self, name: str) -> dict[str, str]:
        obj = self.sandbox.kube_store.get("configmaps", self.namespace, name)
        assert obj is not None, name
        return dict(obj.get("data") or {})

    def version(self, name: str) -> str:
        obj = self.sandbox.kube_store.get("configmaps", self.namespace, name)
        assert obj is not None, name
        return str(obj["metadata"]["resourceVersion"])

    def restarted_at(self) -> str | None:
        obj = self.sandbox.kube_store.get("deployments", self.namespace, self.world.backend.deployment)
        assert obj is not None
        return ((obj["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)

    def ref(self, kind: str, name: str) -> ObjectRef:
        return ObjectRef(kind, self.namespace, name)

    def healthy(self) -> str:
        return next(t for t, spec in self.world.tenants.items() if spec.scenario == "none")

    def patches_since(self, mark: int) -> list[tuple[str, str, int]]:
        """(resource/name, content type, status) of each PATCH the fake answered since ``mark``."""
        requests = list(self.sandbox.kube.requests)[mark:]
        return [("/".join(r.path.split("/")[-2:]), r.content_type, r.status) for r in requests if r.method == "PATCH"]


async def _running(sandbox: Sandbox) -> AsyncIterator[Running]:
    settings, config = load_settings(sandbox.env)
    ctx = await build_context(settings, config)
    try:
        yield Running(sandbox, ctx)
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
async def default_world(sandbox: Sandbox) -> AsyncIterator[Running]:
    async for running in _running(sandbox):
        yield running


@pytest.fixture(scope="module")
async def second_world(second_sandbox: Sandbox) -> AsyncIterator[Running]:
    async for running in _running(second_sandbox):
        yield running


@pytest.fixture(params=["default", "second"])
def world(request: pytest.FixtureRequest) -> Running:
    return request.getfixturevalue(f"{request.param}_world")


async def _apply_and_undo(w: Running, p: Plan, expected_after: dict[str, dict[str, str]]) -> Applied:
    """Apply ``p``; every object must hold exactly ``expected_after``; undo; back to the start."""
    names = [o.ref.name for o in p.objects]
    original = {name: w.data(name) for name in names}
    restarted_before = w.restarted_at()
    mark = len(w.sandbox.kube.requests)
    applied = await apply(w.ctx, p)
    try:
        assert {name: w.data(name) for name in names} == expected_after
        patches = [("configmaps/" + name, MERGE, 200) for name in names]
        if p.restart is not None:
            patches.append((f"deployments/{p.restart.name}", STRATEGIC, 200))
            assert applied.restarted_at is not None and w.restarted_at() == applied.restarted_at
            assert applied.restarted_at != restarted_before
        else:
            assert applied.restarted_at is None and w.restarted_at() == restarted_before
        assert w.patches_since(mark) == patches
        for planned, done in zip(p.objects, applied.objects, strict=True):
            assert done.changes == planned.changes
            assert done.resource_version == w.version(done.ref.name) != planned.resource_version
    finally:
        back = await plan_undo(w.ctx, applied)
        assert back.undoes == p.id and back.restart == p.restart
        await apply(w.ctx, back)
    assert {name: w.data(name) for name in names} == original
    return applied


async def test_degraded_mode(world: Running) -> None:
    w = world
    tenant = next(t for t, s in w.world.tenants.items() if s.scenario == "none" and s.config["strict_mode"] != "false")
    name = f"tenant-{tenant}"
    before = w.data(name)
    p = await plan(w.ctx, tenant, "degraded-mode")
    assert p.tenant == tenant and p.action == "degraded-mode" and not p.needs_second_approver
    change = Change("strict_mode", before["strict_mode"], "false")
    assert p.objects == (ObjectChange(w.ref("ConfigMap", name), w.version(name), (change,)),)
    assert p.restart == w.ref("Deployment", w.world.backend.deployment)
    assert w.data(name) == before  # planning wrote nothing
    await _apply_and_undo(w, p, {name: {**before, "strict_mode": "false"}})


async def test_quota_doubles_by_default(world: Running) -> None:
    w = world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    before = w.data(name)
    doubled = str(Decimal(w.world.tenants[tenant].config["token_rate"]) * 2)
    p = await plan(w.ctx, tenant, "quota")
    assert p.objects == (
        ObjectChange(w.ref("ConfigMap", name), w.version(name), (Change("token_rate", before["token_rate"], doubled),)),
    )
    assert p.restart is None and not p.needs_second_approver
    await _apply_and_undo(w, p, {name: {**before, "token_rate": doubled}})


async def test_quota_named_rate_and_burst(world: Running) -> None:
    w = world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    before = w.data(name)
    rate = str(int(Decimal(before["token_rate"]) + 7))
    burst = str(int(Decimal(before["burst_rate"]) + 11))
    p = await plan(w.ctx, tenant, "quota", {"token_rate": rate, "burst_rate": burst})
    assert p.objects[0].changes == (
        Change("token_rate", before["token_rate"], rate),
        Change("burst_rate", before["burst_rate"], burst),
    )
    await _apply_and_undo(w, p, {name: {**before, "token_rate": rate, "burst_rate": burst}})


async def test_quota_above_the_ceiling_needs_a_second_approver(world: Running) -> None:
    w = world
    tenant = w.healthy()
    before = w.data(f"tenant-{tenant}")
    p = await plan(w.ctx, tenant, "quota", {"token_rate": "10000000"})
    assert p.needs_second_approver
    ceiling = w.ctx.config.mitigations.quota_ceiling
    assert p.approval_reasons == (f"token_rate 10000000 is above the ceiling of {ceiling:g}",)
    assert w.data(f"tenant-{tenant}") == before


async def test_key_window(world: Running) -> None:
    w = world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    before = w.data(name)
    now = datetime.now(UTC)
    until = (now + timedelta(seconds=w.ctx.config.mitigations.key_window_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    p = await plan(w.ctx, tenant, "key-window", now=now)
    assert p.objects == (
        ObjectChange(w.ref("ConfigMap", name), w.version(name), (Change("multi_key_window_until", None, until),)),
    )
    assert p.restart is None
    await _apply_and_undo(w, p, {name: {**before, "multi_key_window_until": until}})


def _thresholds(world: World, tenant: str, version: str) -> dict[str, str]:
    entry = next(v for v in world.policy_registry if v.version == version)
    return {**entry.thresholds, **entry.tenants.get(tenant, {})}


async def test_rollback_policy_to_the_previous_version(world: Running) -> None:
    w = world
    tenant = next(t for t, s in w.world.tenants.items() if s.scenario == "policy")
    current = w.world.tenants[tenant].config["policy_version"]
    ordered = [v.version for v in sorted(w.world.policy_registry, key=lambda v: v.created_at)]
    previous = ordered[ordered.index(current) - 1]
    tenant_map, policy_map = f"tenant-{tenant}", f"policy-{tenant}"
    tenant_before, policy_before = w.data(tenant_map), w.data(policy_map)
    old, new = _thresholds(w.world, tenant, previous), _thresholds(w.world, tenant, current)
    policy_after = {k: v for k, v in policy_before.items() if k not in new or k in old} | old
    assert policy_after != policy_before  # the world's bad version changed this tenant's thresholds
    p = await plan(w.ctx, tenant, "rollback-policy")
    assert [o.ref for o in p.objects] == [w.ref("ConfigMap", tenant_map), w.ref("ConfigMap", policy_map)]
    assert p.objects[0].changes == (Change("policy_version", current, previous),)
    assert p.objects[0].resource_version == w.version(tenant_map)
    assert p.objects[1].resource_version == w.version(policy_map)
    assert {c.key: c.after for c in p.objects[1].changes} == {
        k: policy_after.get(k)
        for k in policy_before.keys() | policy_after.keys()
        if policy_before.get(k) != policy_after.get(k)
    }
    assert p.restart == w.ref("Deployment", w.world.backend.deployment)
    await _apply_and_undo(w, p, {tenant_map: {**tenant_before, "policy_version": previous}, policy_map: policy_after})


async def test_rollback_policy_to_a_named_version_and_refusals(world: Running) -> None:
    w = world
    tenant = w.healthy()
    current = w.world.tenants[tenant].config["policy_version"]
    other = next(v.version for v in w.world.policy_registry if v.version != current)
    p = await plan(w.ctx, tenant, "rollback-policy", {"version": other})
    assert p.objects[0].changes == (Change("policy_version", current, other),)
    assert p.notes == (f"policy {current} → {other} (named version in `policy-registry`)",)
    with pytest.raises(Refused, match="unknown policy version `v999`"):
        await plan(w.ctx, tenant, "rollback-policy", {"version": "v999"})
    oldest = min(w.world.policy_registry, key=lambda v: v.created_at).version
    on_oldest = next(t for t, s in w.world.tenants.items() if s.config["policy_version"] == oldest)
    with pytest.raises(Refused, match="nothing to roll back to"):
        await plan(w.ctx, on_oldest, "rollback-policy")


async def test_conflict_between_plan_and_apply(second_world: Running) -> None:
    w = second_world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    original = w.data(name)
    p = await plan(w.ctx, tenant, "quota")
    moved = str(int(Decimal(original["token_rate"]) + 1))
    w.sandbox.kube_store.patch("configmaps", w.namespace, name, {"data": {"token_rate": moved}})
    try:
        mark = len(w.sandbox.kube.requests)
        with pytest.raises(Conflict) as caught:
            await apply(w.ctx, p)
        assert w.patches_since(mark) == [(f"configmaps/{name}", MERGE, 409)]
        assert caught.value.current == {"token_rate": moved}
        assert caught.value.current_version == w.version(name)
        assert w.data(name) == {**original, "token_rate": moved}
    finally:
        w.sandbox.kube_store.patch("configmaps", w.namespace, name, {"data": {"token_rate": original["token_rate"]}})
    assert w.data(name) == original


async def test_forbidden_patch_applies_nothing(second_world: Running) -> None:
    w = second_world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    original = w.data(name)
    restarted = w.restarted_at()
    p = await plan(w.ctx, tenant, "degraded-mode")
    with denied(w.sandbox.kube, "patch", "configmaps", name), pytest.raises(Forbidden) as caught:
        await apply(w.ctx, p)
    assert (caught.value.verb, caught.value.resource, caught.value.namespace) == ("patch", "configmaps", w.namespace)
    assert f"in namespace {w.namespace}" in str(caught.value) and "nothing changed" in str(caught.value)
    assert w.data(name) == original and w.restarted_at() == restarted


async def test_failed_restart_is_a_partial_result(second_world: Running) -> None:
    w = second_world
    tenant = w.healthy()
    name = f"tenant-{tenant}"
    original = w.data(name)
    p = await plan(w.ctx, tenant, "degraded-mode")
    with denied(w.sandbox.kube, "patch", "deployments"), pytest.raises(PartialApply) as caught:
        await apply(w.ctx, p)
    partial = caught.value.applied
    try:
        assert partial.restart_pending
        assert w.data(name) == {**original, "strict_mode": "false"}
        assert f"the rollout restart of deployment/{w.world.backend.deployment} failed" in str(caught.value)
        done = await retry_restart(w.ctx, partial)
        assert w.restarted_at() == done.restarted_at
    finally:
        await apply(w.ctx, await plan_undo(w.ctx, partial))
    assert w.data(name) == original


def _at(w: Running, tenant: str, name: str) -> float:
    return w.sandbox.live.value(tenant, name, time.time() + 0.5)  # type: ignore[arg-type]


async def test_the_world_answers_the_right_mitigation_only(second_world: Running) -> None:
    """Remedies are wired into the running sandbox: each tenant's own remedy makes its breach
    recede and its undo brings it back; the same action on another tenant changes nothing."""
    w = second_world
    tried = 0
    for tenant, spec in w.world.tenants.items():
        if spec.remedy is None:
            continue
        fields = list(spec.remedy.recovers_to)
        breaching = {f: _at(w, tenant, f) for f in fields}
        if spec.remedy.action == "degraded-mode" and spec.config["strict_mode"] == "false":
            with pytest.raises(Refused, match="already"):
                await plan(w.ctx, tenant, spec.remedy.action)
            continue
        applied = await apply(w.ctx, await plan(w.ctx, tenant, spec.remedy.action))
        try:
            assert {f: _at(w, tenant, f) for f in fields} == spec.remedy.recovers_to
        finally:
            await apply(w.ctx, await plan_undo(w.ctx, applied))
        assert {f: _at(w, tenant, f) for f in fields} == breaching
        tried += 1
    assert tried >= 3

    wrong = next(t for t, s in w.world.tenants.items() if s.remedy and s.remedy.action != "quota")
    fields = ("escalation_ratio", "signature_error_ratio", "quota_exceeded_rps")
    breaching = {f: _at(w, wrong, f) for f in fields}
    applied = await apply(w.ctx, await plan(w.ctx, wrong, "quota"))
    try:
        assert {f: _at(w, wrong, f) for f in fields} == breaching
    finally:
        await apply(w.ctx, await plan_undo(w.ctx, applied))
