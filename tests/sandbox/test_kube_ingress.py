"""The Kubernetes fake serves networking.k8s.io/v1 Ingresses as the API server does, to the real
client: one per tenant of a world (default and generated), GET and merge PATCH of annotations at a
resourceVersion, 409 and 404 as Status objects, RBAC refusals, the status left to its controller."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from integrations.kube import Kube, KubeError
from sandbox.kube import KubeFake, KubeStore, objects_from_world
from sandbox.kube.rbac import Rbac
from sandbox.world.generate import generate
from sandbox.world.live import LiveWorld
from sandbox.world.load import load_world
from sandbox.world.spec import World
from tests.sandbox.kube_fake_env import api_client, status_body

DENY = "nginx.ingress.kubernetes.io/denylist-source-range"


@dataclass
class Served:
    world: World
    store: KubeStore
    fake: KubeFake
    net: client.NetworkingV1Api
    kube: Kube


def worlds() -> dict[str, World]:
    return {"default": load_world(), "seed12": generate(12).world()}


@pytest.fixture(params=["default", "seed12"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    world = worlds()[request.param]
    store = KubeStore(objects_from_world(LiveWorld(world)))
    token = secrets.token_urlsafe(12)
    fake = KubeFake(store, token=token, rbac=Rbac())
    await fake.start()
    api = api_client(fake.url, token)
    kube = await Kube.connect(fake.url, token, world.namespace, 5.0)
    yield Served(world, store, fake, client.NetworkingV1Api(api), kube)
    await kube.close()
    await api.close()
    await fake.stop()


async def test_each_tenant_has_an_ingress_routed_to_the_backend(served: Served) -> None:
    found = await served.net.list_namespaced_ingress(served.world.namespace)
    assert sorted(i.metadata.name for i in found.items) == sorted(f"tenant-{t}" for t in served.world.tenants)
    one = found.items[0]
    assert one.spec.ingress_class_name == "nginx"
    assert one.spec.rules[0].http.paths[0].backend.service.name == "backend"


async def test_annotations_patch_at_a_version_then_a_stale_version_is_a_conflict(served: Served) -> None:
    tenant = sorted(served.world.tenants)[0]
    name = f"tenant-{tenant}"
    first = await served.kube.ingress(name)
    assert DENY not in first.annotations
    patched = await served.kube.patch_ingress_annotations(name, {DENY: "203.0.113.7/32"}, first.resource_version)
    assert patched.annotations[DENY] == "203.0.113.7/32"
    assert int(patched.resource_version) > int(first.resource_version)
    with pytest.raises(KubeError) as caught:
        await served.kube.patch_ingress_annotations(name, {DENY: "198.51.100.1/32"}, first.resource_version)
    assert (caught.value.status, caught.value.kind) == (409, "Conflict")
    with pytest.raises(ApiException) as raw:
        body = {"metadata": {"resourceVersion": first.resource_version, "annotations": {DENY: "x"}}}
        await served.net.patch_namespaced_ingress(
            name, served.world.namespace, body, _content_type="application/merge-patch+json"
        )
    status = status_body(raw.value)
    assert status["message"] == (
        f'Operation cannot be fulfilled on ingresses.networking.k8s.io "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": name, "group": "networking.k8s.io", "kind": "ingresses"}
    removed = await served.kube.patch_ingress_annotations(name, {DENY: None}, patched.resource_version)
    assert DENY not in removed.annotations
    # A patch through the main resource leaves the controller's status alone.
    obj = served.store.get("ingresses", served.world.namespace, name)
    assert obj is not None and obj["status"]["loadBalancer"]["ingress"][0]["ip"]


async def test_a_missing_ingress_and_a_denied_patch_are_the_api_servers_errors(served: Served) -> None:
    with pytest.raises(ApiException) as raw:
        await served.net.read_namespaced_ingress("tenant-nobody", served.world.namespace)
    status = status_body(raw.value)
    assert (status["code"], status["reason"]) == (404, "NotFound")
    assert status["message"] == 'ingresses.networking.k8s.io "tenant-nobody" not found'
    served.fake.rbac.deny("patch", "ingresses")
    name = f"tenant-{sorted(served.world.tenants)[0]}"
    with pytest.raises(KubeError) as caught:
        await served.kube.patch_ingress_annotations(name, {DENY: "203.0.113.7/32"})
    assert caught.value.status == 403
    assert DENY not in (await served.kube.ingress(name)).annotations
