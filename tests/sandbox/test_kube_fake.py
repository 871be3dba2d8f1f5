"""The Kubernetes fake, driven by the real kubernetes_asyncio client over HTTP: reads and
patches, conflicts, RBAC and authentication."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from sandbox.kube import DEFAULT_USER
from tests.sandbox.kube_fake_env import NS, Env, api_client, status_body


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
    status = status_body(caught.value)
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
    status = status_body(caught.value)
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
        status = status_body(caught.value)
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
    status = status_body(caught.value)
    assert (status["code"], status["reason"], status["message"]) == (404, "NotFound", 'configmaps "nope" not found')
    assert status["details"] == {"name": "nope", "kind": "configmaps"}
    with pytest.raises(ApiException) as caught:
        await env.apps.read_namespaced_deployment("nope", NS)
    status = status_body(caught.value)
    assert status["message"] == 'deployments.apps "nope" not found'
    assert status["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_rbac_deny_table_changes_at_runtime(env: Env) -> None:
    env.fake.rbac.deny("patch", "configmaps", "cfg")
    with pytest.raises(ApiException) as caught:
        await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "x"}})
    status = status_body(caught.value)
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
    assert status_body(caught.value)["message"] == (
        f'deployments.apps is forbidden: User "{DEFAULT_USER}" cannot list resource "deployments" '
        f'in API group "apps" in the namespace "{NS}"'
    )
    env.fake.rbac.allow("patch", "configmaps", "cfg")
    patched = await env.core.patch_namespaced_config_map("cfg", NS, {"data": {"mode": "x"}})
    assert patched.data["mode"] == "x"


async def test_missing_or_wrong_token_is_unauthorized(env: Env) -> None:
    for token in (None, "wrong"):
        api = api_client(env.fake.url, token)
        try:
            with pytest.raises(ApiException) as caught:
                await client.CoreV1Api(api).read_namespaced_config_map("cfg", NS)
        finally:
            await api.close()
        status = status_body(caught.value)
        assert (status["code"], status["reason"], status["message"]) == (401, "Unauthorized", "Unauthorized")


async def test_unsupported_patch_content_types(env: Env) -> None:
    for content_type in ("application/apply-patch+yaml", "application/json", "application/x-custom+json"):
        with pytest.raises(ApiException) as caught:
            await env.core.patch_namespaced_config_map("cfg", NS, {"data": {}}, _content_type=content_type)
        status = status_body(caught.value)
        assert (status["code"], status["reason"]) == (415, "UnsupportedMediaType")
        assert "application/strategic-merge-patch+json" in status["message"]
