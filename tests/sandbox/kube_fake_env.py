"""The Kubernetes fake under test: its objects, a real kubernetes_asyncio client on it, and a
stand-in admin API behind its service proxy (fixtures ``env`` and ``upstream``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from sandbox.kube import KubeFake, KubeStore

NS = "ns-test"
TOKEN = "test-token-0123"
NOW = 1_800_000_000.0
POD = "web-abc12-xyz34"
# One line a minute for the last ten minutes, and one "from the future" that must never show.
LOG_LINES = [(NOW - 600.25 + 60 * i, f"line {i}") for i in range(11)] + [(NOW + 30, "future")]


def world_objects() -> list[dict[str, Any]]:
    meta = {"namespace": NS}
    container = {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    return [
        {"kind": "ConfigMap", "metadata": {**meta, "name": "cfg"}, "data": {"mode": "normal", "rate": "10"}},
        {"kind": "Secret", "metadata": {**meta, "name": "sec"}, "type": "Opaque", "data": {"k": "dmFsdWU="}},
        {
            "kind": "Deployment",
            "metadata": {**meta, "name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [container, {"name": "sidecar", "image": "side:1"}]},
                },
            },
        },
        _pod(POD, {"app": "web", "tier": "front"}),
        _pod("web-abc12-other", {"app": "web", "tier": "back"}),
        _pod("db-0", {"app": "db"}),
        _event("ev-1", "Secret", "sec", "KeyRotated", "Normal"),
        _event("ev-2", "ConfigMap", "cfg", "Updated", "Normal"),
        _event("ev-3", "Secret", "other", "KeyRotated", "Warning"),
        {
            "kind": "Service",
            "metadata": {**meta, "name": "api"},
            "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
        },
    ]


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"namespace": NS, "name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"},
    }


def _event(name: str, kind: str, obj: str, reason: str, type_: str) -> dict[str, Any]:
    return {
        "kind": "Event",
        "metadata": {"namespace": NS, "name": name},
        "involvedObject": {"kind": kind, "name": obj, "namespace": NS},
        "reason": reason,
        "message": f"{reason} on {obj}",
        "type": type_,
    }


@dataclass
class Env:
    fake: KubeFake
    store: KubeStore
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    leases: client.CoordinationV1Api


def api_client(url: str, token: str | None) -> client.ApiClient:
    config = client.Configuration(host=url)
    if token is not None:
        config.api_key = {"BearerToken": token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(config)


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[str]:
    """A stand-in backend admin API behind the service proxy."""

    async def tenant(request: web.Request) -> web.Response:
        if request.match_info["tenant"] == "missing":
            return web.json_response({"error": "no such tenant"}, status=404)
        return web.json_response({"tenant": request.match_info["tenant"], "query": dict(request.query)})

    async def flags(request: web.Request) -> web.Response:
        return web.json_response({"global": {"strict_schema": True}})

    app = web.Application()
    app.router.add_get("/admin/tenants/{tenant}", tenant)
    app.router.add_get("/admin/flags", flags)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def env(upstream: str) -> AsyncIterator[Env]:
    store = KubeStore(world_objects())
    logs = {POD: LOG_LINES}
    fake = KubeFake(
        store,
        token=TOKEN,
        pod_logs=lambda pod: logs.get(pod, ()),
        proxy_upstreams={"api": upstream},
        clock=lambda: NOW,
    )
    await fake.start()
    api = api_client(fake.url, TOKEN)
    yield Env(fake, store, api, client.CoreV1Api(api), client.AppsV1Api(api), client.CoordinationV1Api(api))
    await api.close()
    await fake.stop()


def status_body(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body
