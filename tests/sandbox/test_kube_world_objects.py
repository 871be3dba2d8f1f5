"""objects_from_world: the Kubernetes objects a world spec implies."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from sandbox.kube import KubeStore, objects_from_world
from sandbox.kube.timefmt import parse_rfc3339
from sandbox.kube.world_objects import BACKEND_SERVICE, involved_object, pod_names
from sandbox.world.live import LiveWorld
from sandbox.world.load import load_world
from sandbox.world.spec import World

T0 = 1_800_000_000.0


def _tiny_world() -> World:
    traffic = {"ingest_rps": 5, "escalation_ratio": 0.01, "signature_error_ratio": 0.0}
    worm = {
        "accepted": {"D_hat": {"mean": 1.0, "sd": 0.1}, "coh_star": {"mean": 0.9, "sd": 0.01}},
        "escalated": {"D_hat": {"mean": 2.0, "sd": 0.1}, "coh_star": {"mean": 0.5, "sd": 0.01}},
    }
    config = {"strict_mode": "false", "token_rate": "7", "burst_rate": "9", "daily_quota": "11", "policy_version": "v2"}
    events = [
        {"object": "secret", "reason": "Rotated", "message": "m1", "at": "-10m"},
        {"object": "tenant-configmap", "reason": "Synced", "message": "m2", "at": "-20m", "type": "Warning"},
        {"object": "policy-configmap", "reason": "Promoted", "message": "m3", "at": "-1h", "count": 3},
        {"object": "deployment", "reason": "ScalingReplicaSet", "message": "m4", "at": "-2h"},
    ]
    return World.model_validate(
        {
            "namespace": "tiny-ns",
            "seed": 7,
            "backend": {"pods": 2, "deployment": "api", "app_label": "api-app"},
            "policy_registry": [
                {"version": "v1", "created_at": "-10d", "thresholds": {"tol_D": "2"}},
                {
                    "version": "v2",
                    "created_at": "-1h",
                    "author": "kim",
                    "thresholds": {"tol_D": "1.5"},
                    "tenants": {"zeta": {"tol_D": "1.1"}},
                },
            ],
            "tenants": {
                "zeta": {
                    "scenario": "policy",
                    "config": config,
                    "policy": {"tol_D": "1.1", "tol_coh": "0.8"},
                    "signing_keys": {"k-a": "s3cret-a", "k-b": "s3cret-b"},
                    "events": events,
                    "traffic": traffic,
                    "worm": worm,
                },
                "eta": {
                    "scenario": "none",
                    "config": {**config, "policy_version": "v1"},
                    "policy": {"tol_D": "2", "tol_coh": "0.7"},
                    "signing_keys": {"k-c": "s3cret-c"},
                    "traffic": traffic,
                    "worm": worm,
                },
            },
        }
    )


def _index(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    index = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(index) == len(objects), "object names must be unique per kind"
    return index


@pytest.mark.parametrize("world", [_tiny_world(), load_world()], ids=["tiny", "default"])
def test_objects_follow_the_world(world: World) -> None:
    live = LiveWorld(world, t0=T0)
    objects = objects_from_world(live)
    index = _index(objects)
    assert {o["metadata"]["namespace"] for o in objects} == {world.namespace}
    for tid, tenant in world.tenants.items():
        assert index[("ConfigMap", f"tenant-{tid}")]["data"] == tenant.config
        assert index[("ConfigMap", f"policy-{tid}")]["data"] == tenant.policy
        secret = index[("Secret", f"tenant-{tid}-signing")]
        assert secret["type"] == "Opaque"
        assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == tenant.signing_keys
        for event in tenant.events:
            involved = involved_object(world, tid, event)
            matching = [
                o
                for o in objects
                if o["kind"] == "Event" and o["involvedObject"] == involved and o["reason"] == event.reason
            ]
            assert len(matching) == 1
            found = matching[0]
            assert (found["message"], found["type"], found["count"]) == (event.message, event.type, event.count)
            assert parse_rfc3339(found["lastTimestamp"]) == live.at(event.at)
            assert found["firstTimestamp"] == found["lastTimestamp"]
            assert (involved["kind"], involved["name"]) in index
    assert sum(o["kind"] == "Event" for o in objects) == sum(len(t.events) for t in world.tenants.values())

    registry = index[("ConfigMap", "policy-registry")]["data"]
    expected_keys = {p.version for p in world.policy_registry} | {
        f"{tid}.{p.version}" for p in world.policy_registry for tid in p.tenants
    }
    assert set(registry) == expected_keys
    for version in world.policy_registry:
        record = json.loads(registry[version.version])
        assert record["author"] == version.author and record["thresholds"] == version.thresholds
        assert parse_rfc3339(record["created_at"]) == live.at(version.created_at)
        for tid, thresholds in version.tenants.items():
            override = json.loads(registry[f"{tid}.{version.version}"])
            assert override["thresholds"] == thresholds and override["created_at"] == record["created_at"]

    app = {"app": world.backend.app_label}
    deployment = index[("Deployment", world.backend.deployment)]
    assert deployment["spec"]["selector"]["matchLabels"] == app
    assert deployment["spec"]["template"]["metadata"]["labels"] == app
    assert deployment["spec"]["replicas"] == world.backend.pods
    pods = [o for o in objects if o["kind"] == "Pod"]
    assert len(pods) == world.backend.pods
    for pod in pods:
        assert re.fullmatch(rf"{world.backend.deployment}-[a-z0-9]{{10}}-[a-z0-9]{{5}}", pod["metadata"]["name"])
        assert pod["metadata"]["labels"]["app"] == world.backend.app_label
        assert [c["name"] for c in pod["spec"]["containers"]] == ["backend"]
        assert pod["status"]["phase"] == "Running"
    service = index[("Service", BACKEND_SERVICE)]
    assert service["spec"]["selector"] == app
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]


def test_tiny_world_details() -> None:
    world = _tiny_world()
    live = LiveWorld(world, t0=T0)
    store = KubeStore(objects_from_world(live))
    assert pod_names(world) == pod_names(_tiny_world()), "pod names are stable for a seed"
    assert [p["metadata"]["name"] for p in store.list("pods", "tiny-ns", label_selector="app=api-app")] == sorted(
        pod_names(world)
    )
    secret_events = store.list(
        "events", "tiny-ns", field_selector="involvedObject.kind=Secret,involvedObject.name=tenant-zeta-signing"
    )
    assert [(e["reason"], e["lastTimestamp"]) for e in secret_events] == [("Rotated", "2027-01-15T07:50:00Z")]
    deployment_events = store.list("events", "tiny-ns", field_selector="involvedObject.kind=Deployment")
    assert [e["involvedObject"]["name"] for e in deployment_events] == ["api"]
    warnings = store.list("events", "tiny-ns", field_selector="type=Warning")
    assert [e["involvedObject"]["name"] for e in warnings] == ["tenant-zeta"]
    registry = store.read("configmaps", "tiny-ns", "policy-registry")["data"]
    assert json.loads(registry["v2"])["created_at"] == "2027-01-15T07:00:00Z"
    assert json.loads(registry["zeta.v2"])["thresholds"] == {"tol_D": "1.1"}
    assert not any(key.startswith("eta.") for key in registry)
