"""The world reacting to mitigations written to the Kubernetes store: the tenant's own remedy
makes its breach recede (at the restart when the backend reads the key only on start), a wrong
mitigation changes nothing, an undo brings the breach back, a key window that ends does too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox.kube import KubeStore, objects_from_world
from sandbox.world.live import LiveWorld
from sandbox.world.remedies import RESTARTED_AT, Remedies, install_remedies
from tests.commands.mitigate_support import remedy_world

ESCALATED, SIGNATURES = "flk_escalated_by_tenant", "flk_signature_errors_by_tenant"
QUOTA = "flk_quota_exceeded_by_tenant"
WINDOW = 300.0


@dataclass
class Setup:
    live: LiveWorld
    store: KubeStore
    remedies: Remedies
    clock: list[float]

    @property
    def ns(self) -> str:
        return self.live.world.namespace

    def set(self, tenant: str, **data: str | None) -> None:
        self.store.patch("configmaps", self.ns, f"tenant-{tenant}", {"data": data})

    def restart(self) -> None:
        self.clock[0] += 0.001
        stamp = {"metadata": {"annotations": {RESTARTED_AT: f"restart at {self.clock[0]:.6f}"}}}
        self.store.patch(
            "deployments", self.ns, self.live.world.backend.deployment, {"spec": {"template": stamp}}, "strategic"
        )

    def later(self, seconds: float = WINDOW) -> float:
        """A moment ``seconds`` after now: a full rate window after the change, by default."""
        return self.clock[0] + seconds

    def sli(self, tenant: str, t: float) -> dict[str, float]:
        return {
            "escalations": round(self.live.ratio(tenant, ESCALATED, t, WINDOW), 6),
            "signature errors": round(self.live.ratio(tenant, SIGNATURES, t, WINDOW), 6),
            "quota rejections/s": round(self.live.mean_rate(tenant, QUOTA, t, WINDOW), 6),
        }


@pytest.fixture
def setup() -> Iterator[Setup]:
    live = LiveWorld(remedy_world())
    store = KubeStore(objects_from_world(live))
    clock = [time.time()]
    remedies = Remedies(live, store, live.world.namespace, clock=lambda: clock[0])
    # Changes take effect at the injected clock's "now", which LiveWorld.set uses as given.
    yield Setup(live, store, remedies, clock)
    remedies.unsubscribe()


def _spec_sli(s: Setup, tenant: str) -> dict[str, float]:
    """The tenant's SLIs a window after now if nothing were done (the world spec's own values)."""
    traffic = s.live.world.tenants[tenant].traffic
    return {
        "escalations": traffic.escalation_ratio.points[-1][1],
        "signature errors": traffic.signature_error_ratio.points[-1][1],
        "quota rejections/s": traffic.quota_exceeded_rps.points[-1][1],
    }


def _recovered(s: Setup, tenant: str) -> dict[str, float]:
    remedy = s.live.world.tenants[tenant].remedy
    assert remedy is not None
    names = {
        "escalation_ratio": "escalations",
        "signature_error_ratio": "signature errors",
        "quota_exceeded_rps": "quota rejections/s",
    }
    return _spec_sli(s, tenant) | {names[k]: v for k, v in remedy.recovers_to.items()}


def test_spec_values_are_what_the_sli_shows_without_mitigation(setup: Setup) -> None:
    for tenant in setup.live.world.tenants:
        assert setup.sli(tenant, setup.later()) == _spec_sli(setup, tenant)


def test_key_window_and_quota_take_effect_at_once(setup: Setup) -> None:
    s = setup
    s.set("sig", multi_key_window_until="2999-01-01T00:00:00Z")
    s.set("quo", token_rate="100")
    assert s.sli("sig", s.later()) == _recovered(s, "sig")
    assert s.sli("quo", s.later()) == _recovered(s, "quo")
    assert s.sli("sig", s.later())["signature errors"] < _spec_sli(s, "sig")["signature errors"]


def test_degraded_mode_and_rollback_wait_for_the_restart(setup: Setup) -> None:
    s = setup
    s.set("esc", strict_mode="false")
    s.set("pol", policy_version="v7")
    assert s.sli("esc", s.later()) == _spec_sli(s, "esc")
    assert s.sli("pol", s.later()) == _spec_sli(s, "pol")
    s.restart()
    assert s.sli("esc", s.later()) == _recovered(s, "esc")
    assert s.sli("pol", s.later()) == _recovered(s, "pol")
    # Half a window later the ratio is on its way down, between the breach and the recovery.
    halfway = s.sli("esc", s.later(WINDOW / 2))["escalations"]
    assert _recovered(s, "esc")["escalations"] < halfway < _spec_sli(s, "esc")["escalations"]


def test_a_wrong_mitigation_changes_nothing(setup: Setup) -> None:
    s = setup
    s.set("esc", token_rate="500", multi_key_window_until="2999-01-01T00:00:00Z")
    s.set("quo", strict_mode="false", policy_version="v7")
    s.set("sig", strict_mode="false", token_rate="999")
    s.set("pol", strict_mode="false", multi_key_window_until="2999-01-01T00:00:00Z")
    s.set("calm", strict_mode="false", token_rate="999", policy_version="v12")
    s.restart()
    for tenant in s.live.world.tenants:
        assert s.sli(tenant, s.later()) == _spec_sli(s, tenant), tenant


def test_a_quota_lowered_or_unreadable_is_no_remedy(setup: Setup) -> None:
    s = setup
    s.set("quo", token_rate="10")
    assert s.sli("quo", s.later()) == _spec_sli(s, "quo")
    s.set("quo", token_rate="lots")
    assert s.sli("quo", s.later()) == _spec_sli(s, "quo")


def test_undo_brings_the_breach_back(setup: Setup) -> None:
    s = setup
    s.set("esc", strict_mode="false")
    s.restart()
    s.set("quo", token_rate="100")
    s.clock[0] += 60
    s.set("esc", strict_mode="true")
    s.restart()
    s.set("quo", token_rate="50")
    assert s.sli("esc", s.later()) == _spec_sli(s, "esc")
    assert s.sli("quo", s.later()) == _spec_sli(s, "quo")
    # And the breach recedes again when the mitigation is applied again.
    s.set("quo", token_rate="120")
    assert s.sli("quo", s.later()) == _recovered(s, "quo")


def test_a_key_window_that_ends_brings_the_breach_back(setup: Setup) -> None:
    s = setup
    until = s.clock[0] + 120
    s.set("sig", multi_key_window_until=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)))
    assert s.live.value("sig", "signature_error_ratio", s.later(60)) == _recovered(s, "sig")["signature errors"]
    assert s.live.value("sig", "signature_error_ratio", until + 1) == _spec_sli(s, "sig")["signature errors"]
    # A window in the past is no remedy at all.
    s.set("sig", multi_key_window_until="2001-01-01T00:00:00Z")
    assert s.live.value("sig", "signature_error_ratio", s.later(1)) == _spec_sli(s, "sig")["signature errors"]


def test_other_namespaces_and_objects_are_ignored(setup: Setup) -> None:
    s = setup
    other = LiveWorld(remedy_world(namespace="elsewhere"))
    for obj in objects_from_world(other):
        if obj["kind"] in ("ConfigMap", "Deployment"):
            s.store.create({"ConfigMap": "configmaps", "Deployment": "deployments"}[obj["kind"]], obj)
    s.store.patch("configmaps", "elsewhere", "tenant-quo", {"data": {"token_rate": "900"}})
    s.store.patch("configmaps", s.ns, "policy-quo", {"data": {"token_rate": "900"}})
    assert s.sli("quo", s.later()) == _spec_sli(s, "quo")
    s.remedies.unsubscribe()
    s.set("quo", token_rate="900")
    assert s.sli("quo", s.later()) == _spec_sli(s, "quo")


def test_install_subscribes_to_the_store() -> None:
    live = LiveWorld(remedy_world())
    store = KubeStore(objects_from_world(live))
    remedies = install_remedies(live, store, live.world.namespace)
    try:
        store.patch("configmaps", live.world.namespace, "tenant-quo", {"data": {"token_rate": "80"}})
        assert live.value("quo", "quota_exceeded_rps", time.time() + 1) == 0
    finally:
        remedies.unsubscribe()
