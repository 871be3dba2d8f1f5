"""The Kubernetes fake, driven by the real kubernetes_asyncio client over HTTP: pod logs,
selectors, the service proxy, leases and leader election, access reviews, RBAC from a world."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection import electionconfig
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from sandbox.kube import KubeFake, KubeStore, Rbac
from sandbox.kube.timefmt import rfc3339_nano
from sandbox.world.spec import RbacDeny
from tests.sandbox.kube_fake_env import LOG_LINES, NS, POD, TOKEN, Env, api_client, status_body, world_objects


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
    status = status_body(caught.value)
    assert (status["code"], status["reason"]) == (400, "BadRequest")
    assert status["message"] == f"container nope is not valid for pod {POD}"
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log("ghost", NS)
    assert status_body(caught.value)["message"] == 'pods "ghost" not found'
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log(POD, NS, since_seconds=0)
    assert status_body(caught.value)["reason"] == "Invalid"
    env.fake.rbac.deny("get", "pods/log")
    with pytest.raises(ApiException) as caught:
        await env.core.read_namespaced_pod_log(POD, NS)
    assert 'cannot get resource "pods/log"' in status_body(caught.value)["message"]


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
    status = status_body(caught.value)
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
    assert status_body(caught.value)["reason"] == "BadRequest"
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
    assert status_body(caught.value)["message"] == 'services "nosvc" not found'
    with pytest.raises(ApiException) as caught:
        await env.core.connect_get_namespaced_service_proxy_with_path("api:9999", NS, "admin/flags")
    assert status_body(caught.value)["reason"] == "ServiceUnavailable"


async def test_lease_create_update_conflict(env: Env) -> None:
    body = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = await env.leases.create_namespaced_lease(NS, body)
    assert created.spec.holder_identity == "a"
    with pytest.raises(ApiException) as caught:
        await env.leases.create_namespaced_lease(NS, body)
    status = status_body(caught.value)
    assert (status["code"], status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'leases.coordination.k8s.io "leader" already exists'
    created.spec.holder_identity = "b"
    updated = await env.leases.replace_namespaced_lease("leader", NS, created)
    assert updated.spec.holder_identity == "b"
    created.spec.holder_identity = "c"  # still carries the resourceVersion "a" was created with
    with pytest.raises(ApiException) as caught:
        await env.leases.replace_namespaced_lease("leader", NS, created)
    assert status_body(caught.value)["message"].startswith(
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
    fake = KubeFake(KubeStore(world_objects()), token=TOKEN, rbac=Rbac(denies))
    await fake.start()
    api = api_client(fake.url, TOKEN)
    try:
        for call in (
            client.AppsV1Api(api).patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"a": "b"}}}),
            client.CoreV1Api(api).read_namespaced_secret("sec", NS),
        ):
            with pytest.raises(ApiException) as caught:
                await call
            assert status_body(caught.value)["reason"] == "Forbidden"
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
    assert 'cannot get resource "services/proxy"' in status_body(caught.value)["message"]
