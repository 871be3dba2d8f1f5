"""The Kubernetes objects a world spec implies: tenant ConfigMaps, Secrets and Ingresses, the
policy registry, the backend Deployment with its Pods and Service, and the tenants' Events."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from datetime import timedelta
from typing import Any

from sandbox.kube.timefmt import rfc3339
from sandbox.world.live import LiveWorld
from sandbox.world.spec import KubeEvent, World

Obj = dict[str, Any]

BACKEND_CONTAINER = "backend"
BACKEND_PORT = 8080
# The Service in front of the backend's admin API; the service proxy is keyed by this name.
BACKEND_SERVICE = "backend"
BACKEND_IMAGE = "registry.fractal-lba.example/backend:3.4.1"
POLICY_REGISTRY = "policy-registry"
# How long the backend pods have been running when the sandbox starts (longer than any history).
POD_AGE = timedelta(days=2)
# Characters Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_EVENT_SOURCES = {
    "secret": "flk-key-rotator",
    "tenant-configmap": "flk-config-sync",
    "policy-configmap": "flk-policy-controller",
    "deployment": "deployment-controller",
}


def tenant_configmap(tenant: str) -> str:
    return f"tenant-{tenant}"


def tenant_ingress(tenant: str) -> str:
    return f"tenant-{tenant}"


def policy_configmap(tenant: str) -> str:
    return f"policy-{tenant}"


def signing_secret(tenant: str) -> str:
    return f"tenant-{tenant}-signing"


def objects_from_world(live: LiveWorld) -> list[Obj]:
    """Every object of ``live.world`` in ``world.namespace``, ready for ``KubeStore.load``."""
    world = live.world
    objects: list[Obj] = []
    for tid, tenant in world.tenants.items():
        labels = {"fractal-lba.io/tenant": tid}
        objects.append(_configmap(world, tenant_configmap(tid), dict(tenant.config), labels))
        objects.append(_configmap(world, policy_configmap(tid), dict(tenant.policy), labels))
        objects.append(_secret(world, signing_secret(tid), tenant.signing_keys, labels))
        objects.append(_ingress(world, tid, labels))
    objects.append(_configmap(world, POLICY_REGISTRY, _registry_data(live), {}))
    objects.extend(_backend(live))
    for tid, tenant in world.tenants.items():
        objects.extend(_event(live, tid, i, event) for i, event in enumerate(tenant.events))
    return objects


def _meta(world: World, name: str, labels: dict[str, str]) -> Obj:
    meta: Obj = {"name": name, "namespace": world.namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _configmap(world: World, name: str, data: dict[str, str], labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(world, name, labels), "data": data}


def _secret(world: World, name: str, keys: dict[str, str], labels: dict[str, str]) -> Obj:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(world, name, labels),
        "type": "Opaque",
        "data": data,
    }


def _ingress(world: World, tenant: str, labels: dict[str, str]) -> Obj:
    """The tenant's ingest endpoint behind ingress-nginx, routed to the backend Service."""
    backend = {"service": {"name": BACKEND_SERVICE, "port": {"number": BACKEND_PORT}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(world, tenant_ingress(tenant), labels),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": f"{tenant}.ingest.fractal-lba.example", "http": {"paths": [path]}}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "10.96.100.1"}]}},
    }


def _registry_data(live: LiveWorld) -> dict[str, str]:
    """Version -> its record, and "<tenant>.<version>" -> that tenant's override, as JSON strings."""
    data: dict[str, str] = {}
    for version in live.world.policy_registry:
        created = rfc3339(live.at(version.created_at))
        record = {"created_at": created, "author": version.author, "thresholds": dict(version.thresholds)}
        data[version.version] = json.dumps(record, sort_keys=True)
        for tid, thresholds in version.tenants.items():
            override = {"created_at": created, "thresholds": dict(thresholds)}
            data[f"{tid}.{version.version}"] = json.dumps(override, sort_keys=True)
    return data


def _generated(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(length))


def pod_names(world: World) -> list[str]:
    """The backend pods' names, ``<deployment>-<template hash>-<suffix>``, stable for a seed."""
    rng = random.Random(f"{world.seed}:{world.backend.deployment}")
    template_hash = _generated(rng, 10)
    return [f"{world.backend.deployment}-{template_hash}-{_generated(rng, 5)}" for _ in range(world.backend.pods)]


def _container() -> Obj:
    return {
        "name": BACKEND_CONTAINER,
        "image": BACKEND_IMAGE,
        "ports": [{"name": "http", "containerPort": BACKEND_PORT, "protocol": "TCP"}],
        "env": [{"name": "FLK_ADMIN_PORT", "value": str(BACKEND_PORT)}],
        "imagePullPolicy": "IfNotPresent",
    }


def _backend(live: LiveWorld) -> list[Obj]:
    world, backend = live.world, live.world.backend
    app = {"app": backend.app_label}
    started = rfc3339(live.at(-POD_AGE))
    names = pod_names(world)
    template_hash = names[0].rsplit("-", 2)[1]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**_meta(world, backend.deployment, app), "creationTimestamp": started},
        "spec": {
            "replicas": backend.pods,
            "selector": {"matchLabels": dict(app)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": dict(app)}, "spec": {"containers": [_container()]}},
        },
        "status": {
            "replicas": backend.pods,
            "updatedReplicas": backend.pods,
            "readyReplicas": backend.pods,
            "availableReplicas": backend.pods,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(world, BACKEND_SERVICE, app),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "selector": dict(app),
            "ports": [{"name": "http", "port": BACKEND_PORT, "targetPort": BACKEND_PORT, "protocol": "TCP"}],
        },
    }
    pods = [_pod(world, name, template_hash, started, i) for i, name in enumerate(names)]
    return [deployment, service, *pods]


def _pod(world: World, name: str, template_hash: str, started: str, index: int) -> Obj:
    labels = {"app": world.backend.app_label, "pod-template-hash": template_hash}
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": f"{world.backend.deployment}-{template_hash}",
        "uid": hashlib.sha256(f"{world.seed}:{template_hash}".encode()).hexdigest()[:32],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**_meta(world, name, labels), "creationTimestamp": started, "ownerReferences": [owner]},
        "spec": {"containers": [_container()], "restartPolicy": "Always", "nodeName": f"node-{index % 3 + 1}"},
        "status": {
            "phase": "Running",
            "podIP": f"10.244.{index % 3 + 1}.{10 + index}",
            "startTime": started,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [
                {
                    "name": BACKEND_CONTAINER,
                    "image": BACKEND_IMAGE,
                    # The real API always reports these; the client's models refuse a status without them.
                    "imageID": f"{BACKEND_IMAGE}@sha256:{'0' * 64}",
                    "containerID": f"containerd://{index:064x}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
            ],
        },
    }


def involved_object(world: World, tenant: str, event: KubeEvent) -> Obj:
    """The object an event of the world spec is about, as ``involvedObject``."""
    kind, api_version, name = {
        "secret": ("Secret", "v1", signing_secret(tenant)),
        "tenant-configmap": ("ConfigMap", "v1", tenant_configmap(tenant)),
        "policy-configmap": ("ConfigMap", "v1", policy_configmap(tenant)),
        "deployment": ("Deployment", "apps/v1", world.backend.deployment),
    }[event.object]
    return {"kind": kind, "namespace": world.namespace, "name": name, "apiVersion": api_version}


def _event(live: LiveWorld, tenant: str, index: int, event: KubeEvent) -> Obj:
    world = live.world
    involved = involved_object(world, tenant, event)
    digest = hashlib.sha256(f"{world.seed}:{tenant}:{index}".encode()).hexdigest()[:16]
    when = rfc3339(live.at(event.at))
    source = _EVENT_SOURCES[event.object]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {**_meta(world, f"{involved['name']}.{digest}", {}), "creationTimestamp": when},
        "involvedObject": involved,
        "reason": event.reason,
        "message": event.message,
        "type": event.type,
        "count": event.count,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "source": {"component": source},
        "reportingComponent": source,
        "reportingInstance": "",
    }
