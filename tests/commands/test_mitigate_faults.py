"""Mitigations that cannot, need not or only partly can be made, on a Kubernetes fake of the
test's own: refusals before anything is written, 409 and 403 with nothing applied, a later
object failing after an earlier one was patched, writes without an answer, expired plans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commands.config import RunbookConfig
from commands.mitigate import (
    Change,
    Conflict,
    Expired,
    Forbidden,
    PartialApply,
    Refused,
    Uncertain,
    apply,
    plan,
    plan_undo,
    retry_restart,
)
from integrations.kube import KubeError
from tests.commands.mitigate_support import KubeWorld, denied, kube_world, remedy_world


@pytest.fixture
async def kw() -> AsyncIterator[KubeWorld]:
    async with kube_world(remedy_world()) as world:
        yield world


async def test_nothing_to_do_is_refused_before_any_write(kw: KubeWorld) -> None:
    kw.store.patch("configmaps", kw.namespace, "tenant-esc", {"data": {"strict_mode": "false"}})
    far = {"data": {"multi_key_window_until": "2999-01-01T00:00:00Z"}}
    kw.store.patch("configmaps", kw.namespace, "tenant-sig", far)
    before = kw.snapshot()
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("esc", "degraded-mode", {}, 'already "false"'),
        ("quo", "quota", {"token_rate": "50"}, "would not raise"),
        ("quo", "quota", {"token_rate": "20"}, "would not raise"),
        ("calm", "rollback-policy", {}, "oldest"),
        ("pol", "rollback-policy", {"version": "v99"}, "unknown policy version `v99`"),
        ("pol", "rollback-policy", {"version": "v12"}, "already runs policy v12"),
        ("sig", "key-window", {}, "already open until 2999-01-01T00:00:00Z"),
        ("nobody", "quota", {}, "`tenant-nobody` does not exist"),
        ("calm", "reboot", {}, "unknown mitigation"),
        ("quo", "quota", {"token_rate": "-5"}, "token_rate must be a number above 0"),
        ("quo", "quota", {"burst_rate": "abc"}, "burst_rate must be a number above 0"),
    ]
    for tenant, action, args, says in cases:
        with pytest.raises(Refused) as caught:
            await plan(kw.ctx, tenant, action, args)
        assert says in str(caught.value), (tenant, action)
    assert kw.snapshot() == before


async def test_quota_needs_a_number_to_start_from(kw: KubeWorld) -> None:
    kw.store.patch("configmaps", kw.namespace, "tenant-quo", {"data": {"token_rate": "unlimited"}})
    with pytest.raises(Refused, match="not a number: name the new rate"):
        await plan(kw.ctx, "quo", "quota")
    named = await plan(kw.ctx, "quo", "quota", {"token_rate": "80"})
    assert named.objects[0].changes == (Change("token_rate", "unlimited", "80"),)


async def test_second_approver_by_ceiling_and_by_configured_action() -> None:
    config = RunbookConfig.model_validate(
        {"mitigations": {"quota_ceiling": 90, "burst_ceiling": 500, "second_approver_actions": ["rollback-policy"]}}
    )
    async with kube_world(remedy_world(), config) as kw:
        below = await plan(kw.ctx, "quo", "quota", {"token_rate": "90"})
        above = await plan(kw.ctx, "quo", "quota", {"token_rate": "91", "burst_rate": "501"})
        doubled = await plan(kw.ctx, "quo", "quota")
        rollback = await plan(kw.ctx, "pol", "rollback-policy")
        window = await plan(kw.ctx, "sig", "key-window")
    assert not below.needs_second_approver
    assert above.needs_second_approver
    assert above.approval_reasons == (
        "token_rate 91 is above the ceiling of 90",
        "burst_rate 501 is above the ceiling of 500",
    )
    assert doubled.objects[0].changes == (Change("token_rate", "50", "100"),)
    assert doubled.needs_second_approver
    assert rollback.needs_second_approver
    assert rollback.approval_reasons == ("rollback-policy needs a second approver (configured)",)
    assert not window.needs_second_approver


async def test_configured_durations() -> None:
    config = RunbookConfig.model_validate({"mitigations": {"key_window_s": 900, "plan_expiry_s": 30}})
    now = datetime(2031, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)
    async with kube_world(remedy_world(), config) as kw:
        window = await plan(kw.ctx, "sig", "key-window", now=now)
    assert window.objects[0].changes == (Change("multi_key_window_until", None, "2031-05-06T07:23:09Z"),)
    assert window.expires_at == now + timedelta(seconds=30)


async def test_an_expired_plan_applies_nothing(kw: KubeWorld) -> None:
    p = await plan(kw.ctx, "esc", "degraded-mode")
    before = kw.snapshot()
    with pytest.raises(Expired, match="expired"):
        await apply(kw.ctx, p, now=p.expires_at + timedelta(seconds=1))
    assert kw.snapshot() == before


async def test_reading_a_forbidden_object_is_a_typed_refusal(kw: KubeWorld) -> None:
    with denied(kw.fake, "get", "configmaps", "policy-registry"), pytest.raises(Forbidden) as caught:
        await plan(kw.ctx, "pol", "rollback-policy")
    assert (caught.value.verb, caught.value.resource, caught.value.namespace) == ("get", "configmaps", kw.namespace)
    assert "policy-registry" in str(caught.value)


async def test_a_later_object_in_conflict_puts_the_earlier_back(kw: KubeWorld) -> None:
    p = await plan(kw.ctx, "pol", "rollback-policy")
    assert [o.ref.name for o in p.objects] == ["tenant-pol", "policy-pol"]
    # Someone edits the policy between the plan and the confirmation.
    kw.store.patch("configmaps", kw.namespace, "policy-pol", {"data": {"tol_D": "0.9"}})
    before = kw.snapshot()
    with pytest.raises(Conflict) as caught:
        await apply(kw.ctx, p)
    assert caught.value.current == {"tol_D": "0.9", "extra": "1"}
    assert caught.value.planned == {"tol_D": "1.0", "extra": "1"}
    assert 'tol_D is now "0.9", planned from "1.0"' in str(caught.value)
    assert "nothing was applied" in str(caught.value)
    assert kw.snapshot()["configmaps"] == before["configmaps"]


async def test_a_later_object_forbidden_puts_the_earlier_back(kw: KubeWorld) -> None:
    p = await plan(kw.ctx, "pol", "rollback-policy")
    before = kw.snapshot()
    with denied(kw.fake, "patch", "configmaps", "policy-pol"), pytest.raises(Forbidden):
        await apply(kw.ctx, p)
    assert kw.snapshot()["configmaps"] == before["configmaps"]
    assert kw.snapshot()["deployment"] == before["deployment"]


async def test_when_putting_back_fails_the_half_change_is_reported(
    kw: KubeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await plan(kw.ctx, "pol", "rollback-policy")
    real = kw.ctx.kube.patch_config_map

    async def racing(name: str, data: dict[str, str | None], resource_version: str | None = None) -> Any:
        if name == "policy-pol":
            # Another writer touches the tenant map just as the policy patch is refused.
            kw.store.patch("configmaps", kw.namespace, "tenant-pol", {"data": {"daily_quota": "1"}})
            raise KubeError("forbidden: the bot may not patch configmaps in namespace x (RBAC)", 403)
        return await real(name, data, resource_version)

    monkeypatch.setattr(kw.ctx.kube, "patch_config_map", racing)
    with pytest.raises(PartialApply) as caught:
        await apply(kw.ctx, p)
    message = str(caught.value)
    assert "configmap/tenant-pol, already patched, could not be put back" in message
    assert [o.ref.name for o in caught.value.applied.objects] == ["tenant-pol"]
    assert kw.data("tenant-pol")["policy_version"] == "v7"
    assert kw.data("policy-pol")["tol_D"] == "1.0"


async def test_restart_failure_is_partial_then_retried_then_undone(kw: KubeWorld) -> None:
    original = kw.snapshot()
    p = await plan(kw.ctx, "esc", "degraded-mode")
    with denied(kw.fake, "patch", "deployments"), pytest.raises(PartialApply) as caught:
        await apply(kw.ctx, p)
    partial = caught.value.applied
    assert partial.restart_pending and partial.restarted_at is None
    assert "configmap/tenant-esc patched, but the rollout restart of deployment/backend failed" in str(caught.value)
    assert "forbidden" in str(caught.value) and "retry the restart or undo" in str(caught.value)
    assert kw.data("tenant-esc")["strict_mode"] == "false"
    assert kw.snapshot()["deployment"] == original["deployment"]
    done = await retry_restart(kw.ctx, partial)
    assert not done.restart_pending and done.restarted_at
    back = await plan_undo(kw.ctx, done)
    await apply(kw.ctx, back)
    assert kw.snapshot()["configmaps"] == original["configmaps"]


async def test_undo_after_someone_else_changed_the_object_is_a_conflict(kw: KubeWorld) -> None:
    applied = await apply(kw.ctx, await plan(kw.ctx, "quo", "quota"))
    kw.store.patch("configmaps", kw.namespace, "tenant-quo", {"data": {"token_rate": "75"}})
    with pytest.raises(Conflict) as caught:
        await plan_undo(kw.ctx, applied)
    assert caught.value.current == {"token_rate": "75"}
    assert kw.data("tenant-quo")["token_rate"] == "75"
    # And an undo plan made in time still checks the version when it is applied.
    applied = await apply(kw.ctx, await plan(kw.ctx, "quo", "quota"))
    back = await plan_undo(kw.ctx, applied)
    kw.store.patch("configmaps", kw.namespace, "tenant-quo", {"data": {"burst_rate": "99"}})
    with pytest.raises(Conflict, match="other fields changed"):
        await apply(kw.ctx, back)
    assert kw.data("tenant-quo")["token_rate"] == "150"


async def test_a_write_without_an_answer_is_settled_by_reading_back(
    kw: KubeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_patch, real_read = kw.ctx.kube.patch_config_map, kw.ctx.kube.config_map
    mode = {"lands": True, "readable": True}

    async def timing_out(name: str, data: dict[str, str | None], resource_version: str | None = None) -> Any:
        if mode["lands"]:
            await real_patch(name, data, resource_version)
        raise KubeError("no answer within 5 s", 504, "Timeout")

    async def reading(name: str) -> Any:
        if not mode["readable"]:
            raise KubeError("cannot reach the API server (ClientConnectorError)", 503, "Unavailable")
        return await real_read(name)

    monkeypatch.setattr(kw.ctx.kube, "patch_config_map", timing_out)
    monkeypatch.setattr(kw.ctx.kube, "config_map", reading)
    landed = await apply(kw.ctx, await plan(kw.ctx, "calm", "quota"))
    assert landed.objects[0].changes == (Change("token_rate", "50", "100"),)
    assert kw.data("tenant-calm")["token_rate"] == "100"

    mode["lands"] = False
    with pytest.raises(Refused, match="no answer within 5 s; nothing changed"):
        await apply(kw.ctx, await plan(kw.ctx, "calm", "quota"))
    assert kw.data("tenant-calm")["token_rate"] == "100"

    p = await plan(kw.ctx, "calm", "quota")
    mode["readable"] = False
    with pytest.raises(Uncertain, match="may or may not have changed"):
        await apply(kw.ctx, p)


async def test_resuming_after_a_stop_part_way_keeps_what_landed_and_finishes_the_rest(kw: KubeWorld) -> None:
    p = await plan(kw.ctx, "pol", "rollback-policy")
    assert [o.ref.name for o in p.objects] == ["tenant-pol", "policy-pol"] and p.restart is not None
    # The first attempt patched the tenant map, then its replica died: the policy map and the
    # restart never happened. The plan has expired since; the confirmation came in time.
    first = p.objects[0]
    kw.store.patch("configmaps", kw.namespace, "tenant-pol", {"data": first.patch})
    patched_version = kw.store.get("configmaps", kw.namespace, "tenant-pol")["metadata"]["resourceVersion"]
    requests_before = len(kw.fake.requests)
    applied = await apply(kw.ctx, p, now=p.expires_at + timedelta(minutes=1), resume=True)
    patches = [r.path.rsplit("/", 1)[1] for r in list(kw.fake.requests)[requests_before:] if r.method == "PATCH"]
    # The tenant map is kept as it is (no second patch); the policy map and the restart are made.
    assert patches == ["policy-pol", kw.live.world.backend.deployment]
    assert applied.objects[0].resource_version == patched_version
    assert applied.objects[0].changes == first.changes
    assert applied.objects[1].changes == p.objects[1].changes
    assert applied.restarted_at and not applied.restart_pending
    assert kw.data("policy-pol")["tol_D"] == p.objects[1].patch["tol_D"]


async def test_resuming_when_someone_else_moved_an_object_puts_the_landed_part_back(kw: KubeWorld) -> None:
    p = await plan(kw.ctx, "pol", "rollback-policy")
    original = kw.snapshot()
    kw.store.patch("configmaps", kw.namespace, "tenant-pol", {"data": p.objects[0].patch})
    kw.store.patch("configmaps", kw.namespace, "policy-pol", {"data": {"tol_D": "0.5"}})
    with pytest.raises(Conflict, match="policy-pol changed since the plan was made"):
        await apply(kw.ctx, p, resume=True)
    # The first attempt's patch is undone; the other writer's value stays.
    assert kw.data("tenant-pol") == original["configmaps"]["tenant-pol"]
    assert kw.data("policy-pol")["tol_D"] == "0.5"
    assert kw.snapshot()["deployment"] == original["deployment"]
