"""The Kubernetes fake's store, patch formats and selectors, without HTTP."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sandbox.kube import KubeError, KubeStore
from sandbox.kube.patch import apply_patch, merge_patch, patch_type_for
from sandbox.kube.resources import RESOURCES
from sandbox.kube.selectors import field_matcher, label_matcher


def _store() -> KubeStore:
    return KubeStore([{"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "1"}}])


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_strategic_merge_directives() -> None:
    pod = {
        "metadata": {"finalizers": ["a"]},
        "spec": {
            "containers": [
                {"name": "x", "image": "x:1", "args": ["--a"], "ports": [{"containerPort": 80, "name": "h"}]},
                {"name": "y", "image": "y:1"},
            ],
            "volumes": [{"name": "v1", "emptyDir": {}}],
        },
    }
    patch = {
        "metadata": {"finalizers": ["b", "a"]},
        "spec": {
            "containers": [
                {"name": "x", "args": ["--b"], "ports": [{"containerPort": 81}]},
                {"name": "z", "image": "z:1"},
            ],
            "volumes": [{"$patch": "replace"}, {"name": "v2", "configMap": {"name": "c"}}],
            "$setElementOrder/containers": [{"name": "x"}, {"name": "y"}, {"name": "z"}],
        },
    }
    result = apply_patch(pod, patch, "strategic")
    assert result["metadata"]["finalizers"] == ["a", "b"]
    x, y, z = result["spec"]["containers"]
    assert (x["image"], x["args"], [p["containerPort"] for p in x["ports"]]) == ("x:1", ["--b"], [80, 81])
    assert (y["name"], z["name"]) == ("y", "z")
    assert result["spec"]["volumes"] == [{"name": "v2", "configMap": {"name": "c"}}]
    assert "$setElementOrder/containers" not in result["spec"]
    assert pod["spec"]["containers"][0]["args"] == ["--a"], "the original is left alone"
    removed = apply_patch(result, {"spec": {"$patch": "delete"}, "metadata": {"finalizers": None}}, "strategic")
    assert removed == {"metadata": {}}
    with pytest.raises(KubeError) as caught:
        apply_patch(pod, {"spec": {"containers": [{"image": "no-name"}]}}, "strategic")
    assert caught.value.code == 400


def test_patch_type_for_content_type() -> None:
    assert patch_type_for("application/merge-patch+json; charset=utf-8") == "merge"
    assert patch_type_for("application/strategic-merge-patch+json") == "strategic"
    assert patch_type_for("application/json-patch+json") == "json"
    with pytest.raises(KubeError) as caught:
        patch_type_for("application/apply-patch+yaml")
    assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")


def test_json_patch_ops_and_errors() -> None:
    obj = {"data": {"a": "1", "b": "2"}, "list": [1, 2]}
    ops = [
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "remove", "path": "/data/a"},
        {"op": "copy", "from": "/data/b", "path": "/data/d"},
        {"op": "move", "from": "/data/d", "path": "/data/e"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "test", "path": "/list/2", "value": 3},
    ]
    assert apply_patch(obj, ops, "json") == {"data": {"b": "2", "c": "3", "e": "2"}, "list": [1, 2, 3]}
    for bad, code in (
        ([{"op": "remove", "path": "/data/zzz"}], 422),
        ([{"op": "bogus", "path": "/a"}], 400),
        ({"op": "add"}, 400),
    ):
        with pytest.raises(KubeError) as caught:
            apply_patch(obj, bad, "json")
        assert caught.value.code == code


def test_label_selector_grammar() -> None:
    labels = {"metadata": {"labels": {"app": "web", "n": "5", "example.com/team": "sre"}}}
    for selector, expected in [
        ("app=web", True),
        ("app = web", True),
        ("app=db", False),
        ("example.com/team in (sre,ops)", True),
        ("n>4,n<6", True),
        ("n>5", False),
        ("missing notin (a)", True),
        ("missing in (a)", False),
        ("!app", False),
        ("app,!missing", True),
    ]:
        assert label_matcher(selector)(labels) is expected, selector
    assert label_matcher("app=")({"metadata": {"labels": {"app": ""}}}), "an empty value is a value"
    for bad in ("=web", "app in web", "a b", "app in (x y)"):
        with pytest.raises(KubeError) as caught:
            label_matcher(bad)
        assert caught.value.code == 400, bad


def test_field_selector_escapes_and_unknown_fields() -> None:
    event = {"metadata": {"name": "e"}, "reason": "a,b", "source": {"component": "kubelet"}}
    assert field_matcher(r"reason=a\,b", RESOURCES["events"])(event)
    assert field_matcher("source=kubelet", RESOURCES["events"])(event)
    assert not field_matcher("metadata.name!=e", RESOURCES["events"])(event)
    with pytest.raises(KubeError) as caught:
        field_matcher("reason=x", RESOURCES["configmaps"])
    assert caught.value.status["message"] == "field label not supported: reason"


def test_store_create_delete_and_metadata() -> None:
    store = _store()
    created = store.create(
        "secrets", {"metadata": {"generateName": "s-"}, "stringData": {"k": "v"}, "type": "Opaque"}, "n"
    )
    name = created["metadata"]["name"]
    assert name.startswith("s-") and len(name) == 7
    assert created["data"] == {"k": base64.b64encode(b"v").decode()} and "stringData" not in created
    assert created["kind"] == "Secret" and created["apiVersion"] == "v1"
    assert int(created["metadata"]["resourceVersion"]) > int(
        store.read("configmaps", "n", "c")["metadata"]["resourceVersion"]
    )
    assert store.resource_version == created["metadata"]["resourceVersion"]
    store.delete("secrets", "n", name)
    assert store.get("secrets", "n", name) is None
    with pytest.raises(KubeError) as caught:
        store.delete("secrets", "n", name)
    assert caught.value.code == 404
    with pytest.raises(KubeError) as caught:
        store.create("configmaps", {"metadata": {}}, "n")
    assert caught.value.code == 422
    with pytest.raises(ValueError, match="Widget"):
        store.load([{"kind": "Widget", "metadata": {"name": "w", "namespace": "n"}}])


def test_secret_errors_hide_values() -> None:
    store = _store()
    with pytest.raises(KubeError) as caught:
        store.create("secrets", {"metadata": {"name": "s"}, "stringData": {"k": 12345}}, "n")
    assert caught.value.code == 422 and "12345" not in caught.value.message


def test_reads_are_copies_and_status_is_controller_owned() -> None:
    store = KubeStore(
        [{"kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": {}, "status": {"phase": "Running"}}]
    )
    pod = store.read("pods", "n", "p")
    pod["status"]["phase"] = "Failed"
    assert store.read("pods", "n", "p")["status"]["phase"] == "Running"
    patched = store.patch("pods", "n", "p", {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}})
    assert patched["status"]["phase"] == "Running" and patched["metadata"]["labels"] == {"x": "y"}
    assert store.set_status("pods", "n", "p", {"phase": "Succeeded"})["status"] == {"phase": "Succeeded"}


def test_failing_callback_does_not_fail_the_write(caplog: pytest.LogCaptureFixture) -> None:
    store = _store()
    calls: list[str] = []

    def broken(resource: str, before: Any, after: Any) -> None:
        raise RuntimeError("bug in a watcher")

    store.on_change(broken)
    store.on_change(lambda resource, before, after: calls.append(after["data"]["a"]))
    store.patch("configmaps", "n", "c", {"data": {"a": "2"}})
    assert calls == ["2"]
    assert store.read("configmaps", "n", "c")["data"]["a"] == "2"
    assert "callback" in caplog.text
