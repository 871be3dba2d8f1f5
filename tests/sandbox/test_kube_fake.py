"""The Kubernetes fake, driven by the real kubernetes_asyncio client over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection import electionconfig
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from sandbox.kube import DEFAULT_USER, KubeFake, KubeStore, Rbac
from sandbox.kube.timefmt import rfc3339_nano
from sandbox.world.spec import RbacDeny

NS = "ns-test"
TOKEN = "test-token-0123"
NOW = 1_800_000_000.0
POD = "web-abc12-xyz34"
# One line a minute for the last ten minutes, and one "from the future" that must never show.
LOG_LINES = [(NOW - 600.25 + 60 * i, f"line {i}") for i in range(11)] + [(NOW + 30, "future")]


def _objects() -> list[dict[str, Any]]:
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


def _client(url: str, token: str | None) -> client.ApiClient:
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
    store = KubeStore(_objects())
    logs = {POD: LOG_LINES}
    fake = KubeFake(
        store,
        token=TOKEN,
        pod_logs=lambda pod: logs.get(pod, ()),
        proxy_upstreams={"api": upstream},
        clock=lambda: NOW,
    )
    await fake.start()
    api = _client(fake.url, TOKEN)
    yield Env(fake, store, api, client.CoreV1Api(api), client.AppsV1Api(api), client.CoordinationV1Api(api))
    await api.close()
    await fake.stop()


def _status(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


async def test_read_and_merge_patch_configmap(env: Env) -> None:
    before = await env.core.read_namespaced_config_map("cfg", NS)
    assert before.data == {"mode": "normal", "rate": "10"}
    patched = await env.core.patch_namespaced_config_map(
        "cfg", NS, {"data": {"mode": "degraded", "rate": None}}, _content_type="application/merge-patch+json"
    )
    assert patched.data == {"mode": "degraded"}
    assert int(patched.metadata.resource_version) > int(before.metadata.resource_version)
    assert patched.metadata.uid == before.metadata.uid
    assert env.store.get("configmaps", NS, "cfg")["data"] == {"mode": "degraded"}
    listed = await env.core.list_namespaced_config_map(NS)
    assert [c.metadata.name for c in listed.items] == ["cfg"]


async def test_noop_patch_keeps_resource_version(env: Env) -> None:
    before = await env.core.read_namespaced_config_map("cfg", NS)
    same = await env.core.patch_namespaced_config_map(
        "cfg", NS, {"data": {"mode": "normal"}}, _content_type="application/merge-patch+json"
    )
    assert same.metadata.resource_version == before.metadata.resource_version


async def test_change_callback_sees_before_and_after(env: Env) -> None:
    seen: list[tuple[str, Any, Any]] = []
    unsubscribe = env.store.on_change(lambda res, before, after: seen.append((res, before, after)))
    await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "x"}})
    unsubscribe()
    await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "y"}})
    assert len(seen) == 1
    resource, before, after = seen[0]
    assert resource == "configmaps" and before["data"]["mode"] == "normal" and after["data"]["mode"] == "x"


async def test_configmap_values_must_be_strings(env: Env) -> None:
    with pytest.raises(ApiException) as caught:
        await env.core.patch_namespaced_config_map(
            "cfg", NS, {"data": {"rate": 20}}, _content_type="application/merge-patch+json"
        )
    status = _status(caught.value)
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('ConfigMap "cfg" is invalid: data[rate]')
    assert env.store.get("configmaps", NS, "cfg")["data"]["rate"] == "10"


async def test_strategic_merge_patch_merges_containers_by_name(env: Env) -> None:
    before = await env.apps.read_namespaced_deployment("web", NS)
    body = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T10:00:00Z"}},
                "spec": {
                    "containers": [
                        {"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
                        {"name": "sidecar", "$patch": "delete"},
                    ]
                },
            }
        }
    }
    after = await env.apps.patch_namespaced_deployment("web", NS, body)  # a dict goes as strategic merge
    containers = after.spec.template.spec.containers
    assert [c.name for c in containers] == ["app"]
    assert containers[0].image == "app:1"
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "3"), ("C", "4")]
    assert after.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "2026-11-26T10:00:00Z"
    assert after.metadata.generation == before.metadata.generation + 1
    assert after.status.observed_generation == after.metadata.generation
    assert env.fake.requests[-1].content_type == "application/strategic-merge-patch+json"


async def test_metadata_only_patch_keeps_generation(env: Env) -> None:
    before = await env.apps.read_namespaced_deployment("web", NS)
    after = await env.apps.patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"team": "sre"}}})
    assert after.metadata.generation == before.metadata.generation
    assert after.metadata.labels == {"app": "web", "team": "sre"}


async def test_json_patch_and_failed_test(env: Env) -> None:
    ops = [
        {"op": "test", "path": "/data/mode", "value": "normal"},
        {"op": "replace", "path": "/data/mode", "value": "b"},
    ]
    patched = await env.core.patch_namespaced_config_map("cfg", NS, ops)  # a list goes as JSON patch
    assert patched.data["mode"] == "b"
    with pytest.raises(ApiException) as caught:
        await env.core.patch_namespaced_config_map("cfg", NS, ops)
    status = _status(caught.value)
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert "/data/mode" in status["message"]
    assert env.store.get("configmaps", NS, "cfg")["data"]["mode"] == "b"


async def test_secret_test_failure_does_not_echo_values(env: Env) -> None:
    ops = [{"op": "test", "path": "/data/k", "value": "Z3Vlc3M="}]
    with pytest.raises(ApiException) as caught:
        await env.core.patch_namespaced_secret("sec", NS, ops)
    assert "Z3Vlc3M=" not in caught.value.body and "dmFsdWU=" not in caught.value.body


async def test_stale_resource_version_is_a_conflict(env: Env) -> None:
    old = await env.core.read_namespaced_config_map("cfg", NS)
    await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "first"}})
    stale = {"metadata": {"resourceVersion": old.metadata.resource_version}, "data": {"mode": "second"}}
    for call in (
        env.core.patch_namespaced_config_map("cfg", NS, stale, _content_type="application/merge-patch+json"),
        env.core.replace_namespaced_config_map("cfg", NS, {**stale, "metadata": {**stale["metadata"], "name": "cfg"}}),
    ):
        with pytest.raises(ApiException) as caught:
            await call
        status = _status(caught.value)
        assert (status["code"], status["reason"]) == (409, "Conflict")
        assert status["message"] == (
            'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        assert status["details"] == {"name": "cfg", "kind": "configmaps"}
    current = await env.core.read_namespaced_config_map("cfg", NS)
    assert current.data["mode"] == "first"
    current.data["mode"] = "third"
    replaced = await env.core.replace_namespaced_config_map("cfg", NS, current)
    assert replaced.data["mode"] == "third"


async def test_not_found_names_the_object(env: Env) -> None:
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_config_map("nope", NS)
    status = _status(caught.value)
    assert (status["code"], status["reason"], status["message"]) == (404, "NotFound", 'configmaps "nope" not found')
    assert status["details"] == {"name": "nope", "kind": "configmaps"}
    with pytest.raises(ApiException) as caught:
        await env.apps.read_namespaced_deployment("nope", NS)
    status = _status(caught.value)
    assert status["message"] == 'deployments.apps "nope" not found'
    assert status["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_rbac_deny_table_changes_at_runtime(env: Env) -> None:
    env.fake.rbac.deny("patch", "configmaps", "cfg")
    with pytest.raises(ApiException) as caught:
        await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "x"}})
    status = _status(caught.value)
    assert (status["code"], status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        f'configmaps "cfg" is forbidden: User "{DEFAULT_USER}" cannot patch resource "configmaps" '
        f'in API group "" in the namespace "{NS}"'
    )
    assert status["details"] == {"name": "cfg", "kind": "configmaps"}
    assert (await env.core.read_namespaced_config_map("cfg", NS)).data["mode"] == "normal"  # get still allowed
    env.fake.rbac.deny("list", "deployments")
    with pytest.raises(ApiException) as caught:
        await env.apps.list_namespaced_deployment(NS)
    assert _status(caught.value)["message"] == (
        f'deployments.apps is forbidden: User "{DEFAULT_USER}" cannot list resource "deployments" '
        f'in API group "apps" in the namespace "{NS}"'
    )
    env.fake.rbac.allow("patch", "configmaps", "cfg")
    patched = await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "x"}})
    assert patched.data["mode"] == "x"


async def test_missing_or_wrong_token_is_unauthorized(env: Env) -> None:
    for token in (None, "wrong"):
        api = _client(env.fake.url, token)
        try:
            with pytest.raises(ApiException) as caught:
                await client.CoreV1Api(api).read_namespaced_config_map("cfg", NS)
        finally:
            await api.close()
        status = _status(caught.value)
        assert (status["code"], status["reason"], status["message"]) == (401, "Unauthorized", "Unauthorized")


async def test_unsupported_patch_content_types(env: Env) -> None:
    for content_type in ("application/apply-patch+yaml", "application/json", "application/x-custom+json"):
        with pytest.raises(ApiException) as caught:
            await env.core.patch_namespaced_config_map("cfg", NS, {"data": {}}, _content_type=content_type)
        status = _status(caught.value)
        assert (status["code"], status["reason"]) == (415, "UnsupportedMediaType")
        assert "application/strategic-merge-patch+json" in status["message"]


async def test_pod_logs_options(env: Env) -> None:
    read = env.core.read_namespaced_pod_log
    everything = await read(POD, NS)
    assert everything.splitlines() == [f"line {i}" for i in range(11)]
    assert (await read(POD, NS, tail_lines=3)).splitlines() == ["line 8", "line 9", "line 10"]
    assert await read(POD, NS, tail_lines=0) == ""
    assert (await read(POD, NS, since_seconds=150)).splitlines() == ["line 8", "line 9", "line 10"]
    stamped = (await read(POD, NS, tail_lines=1, timestamps=True, container="app")).splitlines()
    assert stamped == [f"{rfc3339_nano(LOG_LINES[10][0])} line 10"]
    assert stamped[0].split(" ")[0].endswith(".750000000Z")
    response = await read(POD, NS, tail_lines=2, _preload_content=False)
    assert response.content_type == "text/plain"
    assert (await response.text()).splitlines() == ["line 9", "line 10"]


async def test_pod_logs_since_time(env: Env) -> None:
    # kubernetes_asyncio's read_namespaced_pod_log has no since_time parameter; kubectl sends it.
    since = rfc3339_nano(LOG_LINES[9][0])
    url = f"{env.fake.url}/api/v1/namespaces/{NS}/pods/{POD}/log"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        async with session.get(url, params={"sinceTime": since}) as response:
            assert (response.status, await response.text()) == (200, "line 9\nline 10\n")
        async with session.get(url, params={"sinceTime": "yesterday"}) as response:
            assert response.status == 400


async def test_pod_log_errors(env: Env) -> None:
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log(POD, NS, container="nope")
    status = _status(caught.value)
    assert (status["code"], status["reason"]) == (400, "BadRequest")
    assert status["message"] == f"container nope is not valid for pod {POD}"
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log("ghost", NS)
    assert _status(caught.value)["message"] == 'pods "ghost" not found'
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log(POD, NS, since_seconds=0)
    assert _status(caught.value)["reason"] == "Invalid"
    env.fake.rbac.deny("get", "pods/log")
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log(POD, NS)
    assert 'cannot get resource "pods/log"' in _status(caught.value)["message"]


async def test_events_by_field_selector(env: Env) -> None:
    async def names(selector: str) -> list[str]:
        listed = await env.core.list_namespaced_event(NS, field_selector=selector)
        return [e.metadata.name for e in listed.items]

    assert await names("involvedObject.kind=Secret,involvedObject.name=sec") == ["ev-1"]
    assert await names("involvedObject.kind=Secret") == ["ev-1", "ev-3"]
    assert await names("reason=KeyRotated,type!=Normal") == ["ev-3"]
    assert await names("type==Normal") == ["ev-1", "ev-2"]
    assert await names("metadata.name=ev-2") == ["ev-2"]
    with pytest.raises(ApiException) as caught:
        await names("involvedObject.colour=red")
    status = _status(caught.value)
    assert (status["code"], status["message"]) == (400, "field label not supported: involvedObject.colour")


async def test_pods_by_label_selector(env: Env) -> None:
    async def names(selector: str) -> list[str]:
        return [p.metadata.name for p in (await env.core.list_namespaced_pod(NS, label_selector=selector)).items]

    assert await names("app=web") == ["web-abc12-other", POD]
    assert await names("app==web,tier!=back") == [POD]
    assert await names("tier!=back") == ["db-0", POD]  # a missing label is "not equal"
    assert await names("app in (db, web),tier notin (front)") == ["db-0", "web-abc12-other"]
    assert await names("tier") == ["web-abc12-other", POD]
    assert await names("!tier") == ["db-0"]
    assert len(await names("")) == 3
    with pytest.raises(ApiException) as caught:
        await names("app=(web")
    assert _status(caught.value)["reason"] == "BadRequest"
    pod = await env.core.read_namespaced_pod(POD, NS)
    assert pod.status.phase == "Running"


async def test_service_proxy_forwards_to_upstream(env: Env) -> None:
    raw = await env.core.connect_get_namespaced_service_proxy_with_path(
        "api:8080", NS, "admin/tenants/acme", _preload_content=False
    )
    assert raw.status == 200
    assert await raw.json() == {"tenant": "acme", "query": {}}
    for target in ("api", "http:api:8080", "api:http"):
        flags = await env.core.connect_get_namespaced_service_proxy_with_path(
            target, NS, "admin/flags", _preload_content=False
        )
        assert await flags.json() == {"global": {"strict_schema": True}}
    with pytest.raises(ApiException) as caught:
        await env.core.connect_get_namespaced_service_proxy_with_path("api", NS, "admin/tenants/missing")
    assert caught.value.status == 404
    assert json.loads(caught.value.body) == {"error": "no such tenant"}  # the upstream's body, untouched
    with pytest.raises(ApiException) as caught:
        await env.core.connect_get_namespaced_service_proxy_with_path("nosvc", NS, "admin/flags")
    assert _status(caught.value)["message"] == 'services "nosvc" not found'
    with pytest.raises(ApiException) as caught:
        await env.core.connect_get_namespaced_service_proxy_with_path("api:9999", NS, "admin/flags")
    assert _status(caught.value)["reason"] == "ServiceUnavailable"


async def test_lease_create_update_conflict(env: Env) -> None:
    body = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = await env.leases.create_namespaced_lease(NS, body)
    assert created.spec.holder_identity == "a"
    with pytest.raises(ApiException) as caught:
        await env.leases.create_namespaced_lease(NS, body)
    status = _status(caught.value)
    assert (status["code"], status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'leases.coordination.k8s.io "leader" already exists'
    created.spec.holder_identity = "b"
    updated = await env.leases.replace_namespaced_lease("leader", NS, created)
    assert updated.spec.holder_identity == "b"
    created.spec.holder_identity = "c"  # still carries the resourceVersion "a" was created with
    with pytest.raises(ApiException) as caught:
        await env.leases.replace_namespaced_lease("leader", NS, created)
    assert _status(caught.value)["message"].startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "leader"'
    )
    patched = await env.leases.patch_namespaced_lease("leader", NS, {"spec": {"leaseTransitions": 2}})
    assert (patched.spec.holder_identity, patched.spec.lease_transitions) == ("b", 2)


async def test_self_subject_access_review(env: Env) -> None:
    authz = client.AuthorizationV1Api(env.api)

    async def allowed(verb: str, resource: str, name: str = "", subresource: str = "", group: str = "") -> bool:
        attributes = client.V1ResourceAttributes(
            namespace=NS, verb=verb, resource=resource, name=name or None, subresource=subresource or None, group=group
        )
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
        return (await authz.create_self_subject_access_review(review)).status.allowed

    assert await allowed("patch", "configmaps", "cfg")
    env.fake.rbac.deny("patch", "configmaps", "cfg")
    env.fake.rbac.deny("get", "pods/log")
    assert not await allowed("patch", "configmaps", "cfg")
    assert await allowed("patch", "configmaps", "other")
    assert not await allowed("get", "pods", POD, subresource="log")
    assert await allowed("get", "pods", POD)
    assert await allowed("patch", "deployments", "web", group="apps")


async def test_leader_election_with_the_client_lease_lock(env: Env) -> None:
    """kubernetes_asyncio's own LeaseLock elects exactly one of two candidates through the fake."""
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def candidate(identity: str) -> LeaderElection:
        async def lead() -> None:
            started[identity].set()

        lock = LeaseLock("flk-leader", NS, identity, env.api)
        return LeaderElection(electionconfig.Config(lock, 3, 2, 1, lead, None))

    first = asyncio.create_task(candidate("a").run())
    await asyncio.wait_for(started["a"].wait(), 5)
    second = asyncio.create_task(candidate("b").run())
    await asyncio.sleep(1.2)  # long enough for "b" to look at the lease at least twice
    first.cancel()
    second.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert not started["b"].is_set()
    lease = await env.leases.read_namespaced_lease("flk-leader", NS)
    assert lease.spec.holder_identity == "a" and lease.spec.lease_duration_seconds == 3
    assert lease.spec.renew_time > lease.spec.acquire_time, "the leader renewed through a PUT"


async def test_services_and_secrets(env: Env) -> None:
    service = await env.core.read_namespaced_service("api", NS)
    assert service.spec.ports[0].port == 8080
    patched = await env.core.patch_namespaced_service(
        "api", NS, {"spec": {"ports": [{"port": 9090, "name": "metrics"}, {"port": 8080, "targetPort": 8081}]}}
    )
    assert [(p.port, p.target_port) for p in patched.spec.ports] == [(8080, 8081), (9090, None)]
    secret = await env.core.read_namespaced_secret("sec", NS)
    assert base64.b64decode(secret.data["k"]) == b"value"
    listed = await env.core.list_namespaced_secret(NS)
    assert [s.metadata.name for s in listed.items] == ["sec"]
    everywhere = await env.core.list_config_map_for_all_namespaces()
    assert [c.metadata.namespace for c in everywhere.items] == [NS]


async def test_rbac_from_a_world_spec(upstream: str) -> None:
    denies = (RbacDeny(verb="patch", resource="deployments"), RbacDeny(verb="get", resource="secrets", name="sec"))
    fake = KubeFake(KubeStore(_objects()), token=TOKEN, rbac=Rbac(denies))
    await fake.start()
    api = _client(fake.url, TOKEN)
    try:
        for call in (
            client.AppsV1Api(api).patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"a": "b"}}}),
            client.CoreV1Api(api).read_namespaced_secret("sec", NS),
        ):
            with pytest.raises(ApiException) as caught:
                await call
            assert _status(caught.value)["reason"] == "Forbidden"
        assert (await client.CoreV1Api(api).list_namespaced_secret(NS)).items
    finally:
        await api.close()
        await fake.stop()


async def test_proxy_passes_method_query_and_body(env: Env, upstream: str) -> None:
    url = f"{env.fake.url}/api/v1/namespaces/{NS}/services/api:8080/proxy/admin/tenants/acme"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        async with session.get(url, params={"fields": "token_rate"}) as response:
            assert await response.json() == {"tenant": "acme", "query": {"fields": "token_rate"}}
        async with session.post(url, json={"x": 1}) as response:
            assert response.status == 405  # the upstream's answer: it serves GET only
    env.fake.rbac.deny("get", "services/proxy")
    with pytest.raises(ApiException) as caught:
        await env.core.connect_get_namespaced_service_proxy_with_path("api", NS, "admin/flags")
    assert 'cannot get resource "services/proxy"' in _status(caught.value)["message"]
