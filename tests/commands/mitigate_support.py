"""A Kubernetes fake of its own for mitigation tests that break things: the world's objects, the
remedies, a real kubernetes-asyncio client, and a Context with only what mitigations use."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from commands.config import RunbookConfig
from commands.context import Context
from integrations.kube import Kube
from sandbox.kube import KubeFake, KubeStore, objects_from_world
from sandbox.world.live import LiveWorld
from sandbox.world.remedies import Remedies, install_remedies
from sandbox.world.spec import World


@dataclass
class KubeWorld:
    live: LiveWorld
    store: KubeStore
    fake: KubeFake
    ctx: Context
    remedies: Remedies

    @property
    def namespace(self) -> str:
        return self.live.world.namespace

    def data(self, name: str) -> dict[str, str]:
        obj = self.store.get("configmaps", self.namespace, name)
        assert obj is not None, name
        return dict(obj.get("data") or {})

    def snapshot(self) -> dict[str, Any]:
        """Every configmap's data and the deployment's spec, to compare before and after."""
        maps = {o["metadata"]["name"]: o.get("data") for o in self.store.list("configmaps", self.namespace)}
        deployment = self.store.get("deployments", self.namespace, self.live.world.backend.deployment)
        assert deployment is not None
        return {"configmaps": maps, "deployment": deployment["spec"]}


@contextlib.asynccontextmanager
async def kube_world(world: World, config: RunbookConfig | None = None) -> AsyncIterator[KubeWorld]:
    live = LiveWorld(world)
    store = KubeStore(objects_from_world(live))
    remedies = install_remedies(live, store, world.namespace)
    token = secrets.token_urlsafe(16)
    fake = KubeFake(store, token=token)
    await fake.start()
    kube = await Kube.connect(fake.url, token, world.namespace, 5.0)
    ctx = Context(config or RunbookConfig(), None, kube, None, None, None)  # type: ignore[arg-type]
    try:
        yield KubeWorld(live, store, fake, ctx, remedies)
    finally:
        remedies.unsubscribe()
        await kube.close()
        await fake.stop()


def _tenant(
    scenario: str,
    config: dict[str, str],
    traffic: dict[str, Any],
    remedy: dict[str, Any] | None,
    policy: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scenario": scenario,
        "config": {
            "strict_mode": "true",
            "token_rate": "50",
            "burst_rate": "80",
            "daily_quota": "100000",
            "policy_version": "v12",
            **config,
        },
        "policy": policy or {"tol_D": "1.4", "tol_coh": "0.7", "extra": "1"},
        "signing_keys": {"k1": "never-shown-signing-key"},
        "traffic": {"ingest_rps": 20, "escalation_ratio": 0.004, "signature_error_ratio": 0.001, **traffic},
        "worm": {
            "accepted": {"D_hat": {"mean": 1.2, "sd": 0.1}, "coh_star": {"mean": 0.85, "sd": 0.03}},
            "escalated": {"D_hat": {"mean": 1.6, "sd": 0.05}, "coh_star": {"mean": 0.7, "sd": 0.02}},
        },
    }
    if remedy is not None:
        spec["remedy"] = remedy
    return spec


def remedy_world(namespace: str = "remedy-test") -> World:
    """One breaching tenant per mitigation, each with the remedy that fixes it, and a healthy one."""
    document = {
        "namespace": namespace,
        "policy_registry": [
            {"version": "v7", "created_at": "-3d", "thresholds": {"tol_D": "1.4", "tol_coh": "0.7"}},
            {
                "version": "v12",
                "created_at": "-20m",
                "thresholds": {"tol_D": "1.4", "tol_coh": "0.7", "extra": "1"},
                "tenants": {"pol": {"tol_D": "1.0"}},
            },
        ],
        "tenants": {
            "sig": _tenant(
                "signatures",
                {},
                {"signature_error_ratio": {"-1d": 0.001, "-30m": 0.08}},
                {"action": "key-window", "recovers_to": {"signature_error_ratio": 0.001}},
            ),
            "esc": _tenant(
                "escalations",
                {},
                {"escalation_ratio": {"-1d": 0.004, "-30m": 0.06}},
                {"action": "degraded-mode", "recovers_to": {"escalation_ratio": 0.005}},
            ),
            "quo": _tenant(
                "quota",
                {},
                {"escalation_ratio": {"-1d": 0.004, "-30m": 0.03}, "quota_exceeded_rps": {"-1d": 0, "-30m": 6}},
                {"action": "quota", "recovers_to": {"quota_exceeded_rps": 0, "escalation_ratio": 0.004}},
            ),
            # v12 brought its own threshold ("extra") and the tenant's override of tol_D.
            "pol": _tenant(
                "policy",
                {},
                {"escalation_ratio": {"-1d": 0.003, "-20m": 0.05}},
                {"action": "rollback-policy", "recovers_to": {"escalation_ratio": 0.003}},
                {"tol_D": "1.0", "tol_coh": "0.7", "extra": "1", "min_samples": "8"},
            ),
            "calm": _tenant("none", {"policy_version": "v7"}, {}, None, {"tol_D": "1.4", "tol_coh": "0.7"}),
        },
    }
    return World.model_validate(yaml.safe_load(yaml.safe_dump(document)))


@contextlib.contextmanager
def denied(fake: KubeFake, verb: str, resource: str, name: str | None = None) -> Iterator[None]:
    fake.rbac.deny(verb, resource, name)
    try:
        yield
    finally:
        fake.rbac.allow(verb, resource, name)
