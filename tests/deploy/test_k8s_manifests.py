"""deploy/k8s: every object valid against the Kubernetes schemas (offline, kubernetes-validate),
the pod locked down, and a Role that grants exactly the Kubernetes calls the code makes."""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from bot.service.settings import Settings
from commands.config import RunbookConfig, load_runbook_config
from integrations.kube_access import (
    WITHHELD,
    DerivationError,
    Permission,
    api_calls,
    permission_for,
    request_of,
    required_permissions,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE, HA = K8S / "base", K8S / "overlays" / "ha"
# The oldest Kubernetes still commonly run, and the newest schemas the package bundles.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches"}


# -- a small kustomize: resources and RFC 6902 patches, which is all deploy/k8s uses --------------


def _matches(obj: dict[str, Any], target: dict[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    found = {"group": group, "version": version, "kind": obj["kind"], "name": obj["metadata"]["name"]}
    return all(found[k] == v for k, v in target.items())


def render(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: the test's renderer does not know {unsupported}"
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for patch in kustomization.get("patches", []):
        ops = yaml.safe_load((directory / patch["path"]).read_text(encoding="utf-8"))
        assert isinstance(ops, list), f"{patch['path']}: only JSON 6902 patches are rendered here"
        hits = [i for i, obj in enumerate(objects) if _matches(obj, patch["target"])]
        assert len(hits) == 1, f"{patch['path']}: target {patch['target']} matches {len(hits)} objects"
        objects[hits[0]] = jsonpatch.apply_patch(copy.deepcopy(objects[hits[0]]), ops)
    return objects


@pytest.fixture(scope="module", params=[BASE, HA], ids=["base", "ha"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment", "flk-chatops")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The container's environment as Kubernetes resolves it: `env` entries win over `envFrom`."""
    resolved: dict[str, Any] = {}
    for source in container(objects).get("envFrom", []):
        resolved |= one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
    for entry in container(objects).get("env", []):
        resolved[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return resolved


# -- schemas ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_for_kubernetes(rendered: list[dict[str, Any]], version: str) -> None:
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {exc.path}: {exc.message}")


def test_the_schema_check_rejects_a_broken_object(rendered: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(one(rendered, "Deployment", "flk-chatops"))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_base_has_every_object_the_bot_needs() -> None:
    kinds = sorted(o["kind"] for o in render(BASE))
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "ConfigMap",
            "PersistentVolumeClaim",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
        ]
    )


# -- the pod -------------------------------------------------------------------------------------


def _app_routes(method: str) -> set[str]:
    tree = ast.parse((ROOT / "bot" / "service" / "app.py").read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == f"add_{method}"
        and isinstance(node.args[0], ast.Constant)
    }


def test_pod_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment", "flk-chatops")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(rendered)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert one(rendered, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    resources = container(rendered)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]


def test_probes_hit_the_bots_health_routes_on_its_port(rendered: list[dict[str, Any]]) -> None:
    c = container(rendered)
    routes = _app_routes("get")
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    (port,) = c["ports"]
    assert c["readinessProbe"]["httpGet"]["port"] == c["livenessProbe"]["httpGet"]["port"] == port["name"]
    assert env_of(rendered)["FLK_LISTEN"] == f"0.0.0.0:{port['containerPort']}"
    service = one(rendered, "Service")
    labels = one(rendered, "Deployment", "flk-chatops")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_writable_paths_are_volumes_and_the_worm_log_is_read_only(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment", "flk-chatops")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container(rendered)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    worm = mounts[env_of(rendered)["FLK_WORM_ROOT"]]
    assert worm["readOnly"] is True
    claim = volumes[worm["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    assert one(rendered, "PersistentVolumeClaim", claim["claimName"])["spec"]["accessModes"] == ["ReadOnlyMany"]
    runbook = env_of(rendered)["FLK_CONFIG"]
    assert mounts[str(Path(runbook).parent)]["readOnly"] is True


def _secret_settings() -> set[str]:
    """Env names of the settings that hold secrets (SecretStr fields)."""
    names = set()
    for name, field in Settings.model_fields.items():
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ())):
            alias = field.validation_alias
            names.add(alias.choices[0] if alias is not None else f"FLK_{name.upper()}")  # type: ignore[union-attr]
    return names


def test_secrets_come_from_secrets_and_settings_are_real(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    secret_names = _secret_settings()
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "FLK_ALERT_WEBHOOK_TOKEN"} <= secret_names
    env = env_of(rendered)
    for name in secret_names & set(env):
        assert isinstance(env[name], dict) and "secretKeyRef" in env[name], f"{name} must come from a Secret"
    for required in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "FLK_ALERT_WEBHOOK_TOKEN"):
        assert env[required]["secretKeyRef"].get("optional") is not True
    # Every other variable is a setting the bot reads or one the code looks up by name.
    known = {f"FLK_{n.upper()}" for n in Settings.model_fields} | secret_names
    code = "\n".join(p.read_text(encoding="utf-8") for pkg in ("bot", "commands") for p in (ROOT / pkg).rglob("*.py"))
    for name in env:
        assert name in known or f'"{name}"' in code, f"{name} is neither a setting nor read by the code"
    runbook = one(rendered, "ConfigMap", "flk-chatops-runbook")["data"]["runbook.yaml"]
    assert Path(env["FLK_CONFIG"]).name == "runbook.yaml"
    (tmp_path / "runbook.yaml").write_text(runbook, encoding="utf-8")
    assert isinstance(load_runbook_config(tmp_path / "runbook.yaml"), RunbookConfig)


def test_image_user_matches_the_pod_user(rendered: list[dict[str, Any]]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    user = re.findall(r"^USER (\d+)", dockerfile, re.MULTILINE)[-1]
    pod = one(rendered, "Deployment", "flk-chatops")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)


def test_ha_overlay_runs_two_replicas_on_postgresql_apart() -> None:
    objects = render(HA)
    deployment = one(objects, "Deployment", "flk-chatops")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert env_of(objects)["FLK_DATABASE_URL"]["secretKeyRef"]["key"] == "FLK_DATABASE_URL"
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert one(objects, "PersistentVolumeClaim", "flk-chatops-data")["spec"]["accessModes"] == ["ReadWriteMany"]
    base = one(render(BASE), "Deployment", "flk-chatops")
    assert base["spec"]["replicas"] == 1 and base["spec"]["strategy"]["type"] == "Recreate"
    assert env_of(render(BASE))["FLK_DATABASE_URL"].startswith("sqlite")


def test_ha_overlay_runs_the_front_and_the_workers_apart_with_the_same_pod() -> None:
    objects = render(HA)
    web, worker = one(objects, "Deployment", "flk-chatops"), one(objects, "Deployment", "flk-chatops-worker")
    (web_c,) = web["spec"]["template"]["spec"]["containers"]
    (worker_c,) = worker["spec"]["template"]["spec"]["containers"]
    assert web_c["args"] == ["serve", "--front-only"] and worker_c["args"] == ["worker"]
    # The Slack and Alertmanager traffic reaches the web replicas only.
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not one(objects, "Service")["spec"]["selector"].items() <= worker_labels.items()
    assert worker["spec"]["replicas"] >= 2 and worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The same pod otherwise: account, lock-down, volumes (the shared audit log), image, settings.
    web_pod, worker_pod = web["spec"]["template"]["spec"], worker["spec"]["template"]["spec"]
    for key in ("serviceAccountName", "securityContext", "volumes"):
        assert worker_pod[key] == web_pod[key], key
    for key in ("image", "securityContext", "volumeMounts", "envFrom", "resources", "ports"):
        assert worker_c[key] == web_c[key], key
    web_env = {e["name"]: e for e in web_c["env"] if e["name"] != "SLACK_APP_TOKEN"}  # Socket Mode: the front's
    assert {e["name"]: e for e in worker_c["env"]} == web_env
    routes = _app_routes("get")
    assert worker_c["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert worker_c["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    anti = worker_pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= worker_labels.items()


# -- least privilege -----------------------------------------------------------------------------


def granted(role: dict[str, Any]) -> set[Permission]:
    grants = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                name, _, sub = resource.partition("/")
                for verb in rule["verbs"]:
                    grants.add(Permission(verb, name, group, sub))
    return grants


def test_role_grants_exactly_what_the_code_calls(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "Role")
    needed = required_permissions() - set(WITHHELD)
    assert granted(role) == needed, (
        f"missing: {sorted(map(str, needed - granted(role)))}; unused: {sorted(map(str, granted(role) - needed))}"
    )
    flat = [x for rule in role["rules"] for key in ("apiGroups", "resources", "verbs") for x in rule[key]]
    assert "*" not in flat
    assert not {p for p in granted(role) if p.resource == "secrets"}


def test_role_is_bound_in_the_backends_namespace_to_the_bots_account(rendered: list[dict[str, Any]]) -> None:
    role, binding = one(rendered, "Role"), one(rendered, "RoleBinding")
    namespace = Settings.model_fields["namespace"].default
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    assert env_of(rendered)["FLK_NAMESPACE"] == namespace
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["roleRef"] == role_ref
    deployment, account = one(rendered, "Deployment", "flk-chatops"), one(rendered, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert deployment["metadata"]["namespace"] == account["metadata"]["namespace"] != namespace


def test_restarts_are_limited_to_the_configured_backend(rendered: list[dict[str, Any]]) -> None:
    rules = [r for r in one(rendered, "Role")["rules"] if "deployments" in r["resources"]]
    assert [r["resourceNames"] for r in rules] == [[RunbookConfig().resources.deployment]]
    assert all("resourceNames" not in r for r in one(rendered, "Role")["rules"] if r not in rules)


def test_admin_api_is_reached_directly_so_the_role_needs_no_service_proxy(rendered: list[dict[str, Any]]) -> None:
    """The only request the code builds by hand to the API server is the admin API through the
    services proxy (bot/service/context.py), used when FLK_ADMIN_URL is unset; the manifests set it."""
    raw = sorted(_raw_api_paths())
    assert raw == ["bot/service/context.py: {}/api/v1/namespaces/{}/services/{}/proxy"], raw
    assert env_of(rendered)["FLK_ADMIN_URL"].startswith("http")
    assert not {p for p in granted(one(rendered, "Role")) if p.resource == "services"}


def _raw_api_paths() -> Iterator[str]:
    for package in ("bot", "commands", "integrations"):
        for path in (ROOT / package).rglob("*.py"):
            nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
            parts = {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in n.values}
            for node in nodes:
                if id(node) in parts:
                    continue
                if isinstance(node, ast.JoinedStr):
                    text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                else:
                    continue
                if re.search(r"/apis?/v1/|/apis/[\w.]+/v\d", text):
                    yield f"{path.relative_to(ROOT).as_posix()}: {text}"


def test_derivation_agrees_with_the_labels_kube_py_gives_its_calls() -> None:
    """integrations/kube.py names each call's verb and resource for its error messages
    (``self._call("get", "pods/log", ...)``): the permission derived from the client agrees."""
    path = ROOT / "integrations" / "kube.py"
    calls = {int(c.where.rpartition(":")[2]): c for c in api_calls([path])}
    labels = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "_call" and len(node.args) == 3:
            verb, resource, inner = node.args
            labels[inner.lineno] = (ast.literal_eval(verb), ast.literal_eval(resource))
    assert calls and set(calls) <= set(labels), "every client call in kube.py goes through _call"
    for line, call in calls.items():
        permission = permission_for(*request_of(call.api, call.method))
        assert (permission.verb, permission.rbac_resource) == labels[line], call


def test_permission_for_reads_requests_as_the_api_server_does() -> None:
    assert permission_for("/api/v1/namespaces/{namespace}/pods/{name}/log", "GET") == Permission(
        "get", "pods", "", "log"
    )
    assert permission_for("/api/v1/namespaces/{namespace}/events", "GET") == Permission("list", "events")
    assert permission_for("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "PATCH") == Permission(
        "patch", "deployments", "apps"
    )
    assert permission_for("/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}", "GET") == Permission(
        "get", "services", "", "proxy"
    )
    assert permission_for("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", "POST") == Permission(
        "create", "leases", "coordination.k8s.io"
    )
    assert permission_for("/api/v1/namespaces/{namespace}/configmaps", "DELETE").verb == "deletecollection"


def test_scan_attributes_calls_through_assignments_and_refuses_to_guess(tmp_path: Path) -> None:
    sample = tmp_path / "lease.py"
    sample.write_text(
        "from kubernetes_asyncio import client\n"
        "class Leader:\n"
        "    def __init__(self, api):\n"
        "        self.coord = client.CoordinationV1Api(api)\n"
        "        self.events = client.EventsV1Api(api)\n"
        "    async def renew(self):\n"
        "        await self.coord.replace_namespaced_lease('l', 'ns', {})\n"
        "        await self.events.list_namespaced_event('ns')\n",
        encoding="utf-8",
    )
    assert required_permissions([sample]) == {
        Permission("update", "leases", "coordination.k8s.io"),
        Permission("list", "events", "events.k8s.io"),
    }
    ambiguous = tmp_path / "ambiguous.py"
    ambiguous.write_text("async def f(x):\n    await x.list_namespaced_event('ns')\n", encoding="utf-8")
    with pytest.raises(DerivationError, match="CoreV1Api, EventsV1Api"):
        api_calls([ambiguous])
