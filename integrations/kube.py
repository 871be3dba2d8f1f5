"""The Kubernetes API through kubernetes-asyncio: only the reads and writes the runbook needs."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from integrations.errors import BackendError

if TYPE_CHECKING:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

_VERB_BY_METHOD = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}
# The pod-template annotation `kubectl rollout restart` sets; a new value rolls every pod.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


log = logging.getLogger(__name__)


class KubeError(BackendError):
    def __init__(self, reason: str, status: int, kind: str = "") -> None:
        super().__init__("kubernetes", reason)
        self.status = status
        self.kind = kind  # the Status reason: NotFound, Forbidden, Conflict, ...


@dataclass(frozen=True)
class ConfigMap:
    name: str
    data: dict[str, str]
    resource_version: str


@dataclass(frozen=True)
class Ingress:
    """An Ingress as far as mitigations read it: its annotations (the controller's settings)."""

    name: str
    annotations: dict[str, str]
    resource_version: str


@dataclass(frozen=True)
class Rollout:
    """A rollout restart as the API server accepted it."""

    deployment: str
    restarted_at: str
    generation: int
    resource_version: str


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str
    object_kind: str
    object_name: str
    last_seen: str
    count: int


class Kube:
    """The API client is made at the first call: kubernetes-asyncio's model classes cost ~38 MB
    and only the processes that talk to the cluster (the workers, not the front) import them."""

    def __init__(self, url: str | None, token: str | None, namespace: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._token = token
        self.namespace = namespace
        self.timeout_s = timeout_s
        self._api: client.ApiClient | None = None
        self._core: client.CoreV1Api | None = None
        self._apps: client.AppsV1Api | None = None
        self._networking: client.NetworkingV1Api | None = None

    @classmethod
    async def connect(cls, url: str | None, token: str | None, namespace: str, timeout_s: float) -> Kube:
        """A client for the given API server, or the in-cluster service account when url is None."""
        return cls(url, token, namespace, timeout_s)

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            from kubernetes_asyncio import client, config

            if self._url is None:
                configuration = client.Configuration()
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException as exc:
                    raise KubeError(f"no in-cluster service account ({exc})", 503, "Unavailable") from None
            else:
                configuration = client.Configuration(host=self._url)
                if self._token:
                    configuration.api_key = {"BearerToken": self._token}
                    configuration.api_key_prefix = {"BearerToken": "Bearer"}
            self._api = client.ApiClient(configuration)
        return self._api

    @property
    def core(self) -> client.CoreV1Api:
        if self._core is None:
            from kubernetes_asyncio.client import CoreV1Api

            # Named as the attribute: kube_access derives the Role from such assignments.
            core = CoreV1Api(self.api)
            self._core = core
        return self._core

    @property
    def apps(self) -> client.AppsV1Api:
        if self._apps is None:
            from kubernetes_asyncio.client import AppsV1Api

            apps = AppsV1Api(self.api)
            self._apps = apps
        return self._apps

    @property
    def networking(self) -> client.NetworkingV1Api:
        if self._networking is None:
            from kubernetes_asyncio.client import NetworkingV1Api

            networking = NetworkingV1Api(self.api)
            self._networking = networking
        return self._networking

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()

    async def _call(self, verb: str, resource: str, coro: Any) -> Any:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except TimeoutError:
            raise KubeError(f"no answer within {self.timeout_s:g} s", 504, "Timeout") from None
        except ApiException as exc:
            raise _from_api_exception(exc, verb, resource, self.namespace) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise KubeError(f"cannot reach the API server ({type(exc).__name__})", 503, "Unavailable") from None

    async def config_map(self, name: str) -> ConfigMap:
        cm = await self._call("get", "configmaps", self.core.read_namespaced_config_map(name, self.namespace))
        return ConfigMap(name=name, data=dict(cm.data or {}), resource_version=cm.metadata.resource_version)

    async def config_maps(self) -> list[ConfigMap]:
        """Every configmap in the namespace (one LIST instead of one GET per tenant)."""
        found = await self._call("list", "configmaps", self.core.list_namespaced_config_map(self.namespace))
        return [
            ConfigMap(name=c.metadata.name, data=dict(c.data or {}), resource_version=c.metadata.resource_version)
            for c in found.items
        ]

    async def patch_config_map(
        self, name: str, data: dict[str, str | None], resource_version: str | None = None
    ) -> ConfigMap:
        """JSON merge patch of ``data`` (None deletes a key), as ``kubectl patch --type=merge``.

        With ``resource_version`` the patch applies only to that version of the object: a newer
        one is a 409 Conflict and nothing changes.
        """
        body: dict[str, Any] = {"data": data}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        cm = await self._call(
            "patch",
            "configmaps",
            self.core.patch_namespaced_config_map(
                name, self.namespace, body, _content_type="application/merge-patch+json"
            ),
        )
        return ConfigMap(name=name, data=dict(cm.data or {}), resource_version=cm.metadata.resource_version)

    async def ingress(self, name: str) -> Ingress:
        found = await self._call("get", "ingresses", self.networking.read_namespaced_ingress(name, self.namespace))
        meta = found.metadata
        return Ingress(name=name, annotations=dict(meta.annotations or {}), resource_version=meta.resource_version)

    async def patch_ingress_annotations(
        self, name: str, annotations: dict[str, str | None], resource_version: str | None = None
    ) -> Ingress:
        """JSON merge patch of the Ingress's annotations (None deletes one), at ``resource_version``
        when given (a newer object is a 409 Conflict and nothing changes)."""
        meta: dict[str, Any] = {"annotations": annotations}
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        found = await self._call(
            "patch",
            "ingresses",
            self.networking.patch_namespaced_ingress(
                name, self.namespace, {"metadata": meta}, _content_type="application/merge-patch+json"
            ),
        )
        meta_out = found.metadata
        return Ingress(
            name=name, annotations=dict(meta_out.annotations or {}), resource_version=meta_out.resource_version
        )

    async def restart_deployment(self, name: str, at: datetime | None = None) -> Rollout:
        """``kubectl rollout restart``: a strategic merge patch of the pod template's restartedAt
        annotation. Fractional seconds, so that two restarts in one second are two rollouts."""
        stamp = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        deployment = await self._call(
            "patch",
            "deployments",
            self.apps.patch_namespaced_deployment(
                name, self.namespace, body, _content_type="application/strategic-merge-patch+json"
            ),
        )
        meta = deployment.metadata
        return Rollout(name, stamp, meta.generation or 0, meta.resource_version)

    async def backend_pods(self, selector: str) -> list[str]:
        pods = await self._call("list", "pods", self.core.list_namespaced_pod(self.namespace, label_selector=selector))
        return [p.metadata.name for p in pods.items]

    async def pod_log(
        self,
        pod: str,
        container: str | None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        max_bytes: int | None = None,
    ) -> list[str]:
        """The pod's log lines; with ``max_bytes`` only the newest ``max_bytes`` of them are kept
        while the answer streams in (the first, cut line dropped), so memory stays bounded."""
        kwargs: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        # Without _preload_content=False the client json-decodes a body that happens to be JSON.
        response = await self._call(
            "get",
            "pods/log",
            self.core.read_namespaced_pod_log(pod, self.namespace, _preload_content=False, **kwargs),
        )
        async with response:
            if response.status >= 400 or max_bytes is None:
                text = await response.text()
            else:
                text, cut = await _newest(response.content, max_bytes)
                if cut:
                    log.warning(
                        "pod %s: log over %d bytes; only its newest %d bytes were read", pod, max_bytes, max_bytes
                    )
        if response.status >= 400:
            # Unpreloaded answers are not checked by the client: an error is a Status, not log lines.
            try:
                status_body = json.loads(text)
            except ValueError:
                status_body = None
            raise _from_status(status_body, response.status, "get", "pods/log", self.namespace)
        return text.splitlines()

    async def secret_keys(self, name: str) -> list[str]:
        """The key names of a Secret, never its values.

        The body is read raw (the client's model would keep the values in ``last_response``
        and its debug log would print them) and dropped as soon as the names are out.
        """
        response = await self._call(
            "get", "secrets", self.core.read_namespaced_secret(name, self.namespace, _preload_content=False)
        )
        async with response:
            status = response.status
            # content.read() does not cache the body on the response, unlike read()/text().
            raw = await self._call("get", "secrets", response.content.read())
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        kind = body.get("reason") if isinstance(body, dict) else None
        data = (body.get("data") or {}) if isinstance(body, dict) else None
        keys = sorted(data) if isinstance(data, dict) else None
        del raw, body, data  # the values go now, before anything can raise or log
        if status >= 400:
            # Only the Status reason is kept: a broken server could echo anything in its message.
            safe = {
                "reason": kind if isinstance(kind, str) and kind.isalpha() else "",
                "message": f'secrets "{name}" not found' if status == 404 else "",
            }
            raise _from_status(safe, status, "get", "secrets", self.namespace)
        if keys is None:
            raise KubeError(f"secret {name}: the answer is not a Secret", 502, "BadResponse")
        return keys

    async def events_for(self, kind: str, name: str) -> list[Event]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        events = await self._call(
            "list", "events", self.core.list_namespaced_event(self.namespace, field_selector=selector)
        )
        return [
            Event(
                reason=e.reason or "",
                message=e.message or "",
                type=e.type or "",
                object_kind=e.involved_object.kind,
                object_name=e.involved_object.name,
                last_seen=_iso(e.last_timestamp or e.event_time or e.first_timestamp),
                count=e.count or 1,
            )
            for e in events.items
        ]


async def _newest(stream: Any, max_bytes: int) -> tuple[str, bool]:
    """The last ``max_bytes`` of a streamed body, from its first whole line on; and whether it was cut."""
    kept = bytearray()
    cut = False
    async for chunk in stream.iter_chunked(64 * 1024):
        kept += chunk
        if len(kept) > max_bytes:
            del kept[: len(kept) - max_bytes]
            cut = True
    if cut:
        newline = kept.find(b"\n")
        del kept[: newline + 1 if newline >= 0 else len(kept)]
    return kept.decode("utf-8", "replace"), cut


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def _from_api_exception(exc: ApiException, verb: str, resource: str, namespace: str) -> KubeError:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return _from_status(body, exc.status or 0, verb, resource, namespace)


def _from_status(body: Any, status: int, verb: str, resource: str, namespace: str) -> KubeError:
    kind = str(body.get("reason", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if status == 403:
        reason = f"forbidden: the bot may not {verb} {resource} in namespace {namespace} (RBAC)"
    elif status == 404:
        reason = message or f"{resource} not found in namespace {namespace}"
    elif status == 401:
        reason = "unauthorised: the API server rejected the bot's token"
    elif status == 409:
        reason = message or "conflict: the object changed"
    else:
        reason = f"HTTP {status} {kind}: {message}".strip().rstrip(":")
    return KubeError(reason[:300], status, kind)
