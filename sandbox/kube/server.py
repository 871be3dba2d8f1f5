"""The Kubernetes API fake: an aiohttp server that the real ``kubernetes_asyncio`` client talks
to over plain HTTP with a bearer token.

Serves core/v1 configmaps, secrets, pods (+ ``log``), events, services (+ ``proxy``);
apps/v1 deployments; networking.k8s.io/v1 ingresses; coordination.k8s.io/v1 leases; and authorization.k8s.io/v1
selfsubjectaccessreviews. Requests are checked in the API server's order: authentication
(401), authorisation against the ``Rbac`` deny table (403), then the request itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.kube import proxy
from sandbox.kube.errors import (
    KubeError,
    bad_request,
    conflict,
    forbidden,
    internal_error,
    invalid,
    no_such_path,
    unauthorized,
)
from sandbox.kube.logs import LogOptions, PodLogs, check_container, no_logs, render
from sandbox.kube.patch import patch_type_for
from sandbox.kube.rbac import Rbac
from sandbox.kube.resources import RESOURCES, Resource, resource_for
from sandbox.kube.store import KubeStore

log = logging.getLogger(__name__)

DEFAULT_USER = "system:serviceaccount:flk:flk-chatops"
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SSAR = Resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", "authorization.k8s.io", namespaced=False)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


STALL_S = 30.0
# The faults ``fail_next`` can inject: the API server's answers when it, or the object, says no.
FAULTS = ("Conflict", "Forbidden", "InternalError")


@dataclass(frozen=True)
class Recorded:
    """One request the fake answered (for tests that assert what a client sent)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    status: int


class KubeFake:
    """``KubeFake(store, token=...)``; ``await start()`` then point a client at ``url``.

    ``pod_logs`` supplies each pod's log lines; ``proxy_upstreams`` maps a service name to the
    base URL its proxy path forwards to; ``rbac`` (default: empty deny table) can be changed
    while the fake runs; ``clock`` is "now" for log windows.
    """

    def __init__(
        self,
        store: KubeStore,
        *,
        token: str,
        user: str = DEFAULT_USER,
        rbac: Rbac | None = None,
        pod_logs: PodLogs = no_logs,
        proxy_upstreams: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rbac = rbac or Rbac()
        self.user = user
        self.pod_logs = pod_logs
        self.proxy_upstreams: dict[str, str] = dict(proxy_upstreams or {})
        # The latest requests answered, for tests; bounded so that a long demo does not grow it.
        self.requests: deque[Recorded] = deque(maxlen=1000)
        # A stalled API server (see stall()): tests use it to act in the middle of the bot's write.
        self.stalled: set[str] = set()
        # "METHOD path" of each request waiting in a stall, so a test can act while one waits.
        self.waiting: list[str] = []
        # (HTTP method, plural) -> the faults its next requests answer with (see fail_next).
        self.failing: dict[tuple[str, str], list[str]] = {}
        self._released = asyncio.Event()
        self._token = token
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url = ""
        self.app = self._build_app()

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the Kubernetes fake is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0: any free port) and return the base URL."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self._url = f"http://{bound[0]}:{bound[1]}"
        return self._url

    def stall(self, *plurals: str) -> None:
        """Requests to these resources wait until ``release()`` (at most STALL_S)."""
        self.stalled.update(plurals)
        self._released.clear()

    def release(self) -> None:
        self.stalled.clear()
        self._released.set()

    def fail_next(self, method: str, plural: str, reason: str, count: int = 1) -> None:
        """The next ``count`` ``method`` requests to ``plural`` answer the API server's Status for
        ``reason`` (one of FAULTS: 409 Conflict, 403 Forbidden, 500 InternalError) and change nothing."""
        if reason not in FAULTS:
            raise ValueError(f"no injectable fault {reason!r}; one of {FAULTS}")
        self.failing[(method.upper(), plural)] = [reason] * count

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._url = ""

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate, self._stall, self._inject])
        ns = "/namespaces/{ns}"
        for prefix in ("/api/{version:v1}", "/apis/{group}/{version}"):
            app.router.add_get(prefix + "/{plural}", self._list)
            app.router.add_get(prefix + ns + "/{plural}", self._list)
            app.router.add_post(prefix + ns + "/{plural}", self._create)
            app.router.add_get(prefix + ns + "/{plural}/{name}", self._get)
            app.router.add_put(prefix + ns + "/{plural}/{name}", self._replace)
            app.router.add_patch(prefix + ns + "/{plural}/{name}", self._patch)
            app.router.add_delete(prefix + ns + "/{plural}/{name}", self._delete)
        app.router.add_post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self._access_review)
        app.router.add_get("/api/v1" + ns + "/pods/{name}/log", self._pod_log)
        proxy_path = "/api/v1" + ns + "/services/{target}/proxy"
        app.router.add_route("*", proxy_path, self._proxy)
        app.router.add_route("*", proxy_path + "/{path:.*}", self._proxy)
        app.router.add_get("/version", self._version)
        return app

    # --- middlewares -------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except KubeError as exc:
            response = web.json_response(exc.status, status=exc.code)
        except web.HTTPMethodNotAllowed:
            error = KubeError("MethodNotAllowed", "the server does not allow this method on the requested resource")
            response = web.json_response(error.status, status=error.code)
        except web.HTTPNotFound:
            error = no_such_path()
            response = web.json_response(error.status, status=error.code)
        except Exception:
            log.exception("kube fake: %s %s failed", request.method, request.path)
            error = KubeError("InternalError", "an error on the server has prevented the request from succeeding")
            response = web.json_response(error.status, status=error.code)
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), request.content_type, response.status)
        )
        return response

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self._token:
            raise unauthorized()
        return await handler(request)

    @web.middleware
    async def _stall(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.get("plural") in self.stalled:
            waiting = f"{request.method} {request.path}"
            self.waiting.append(waiting)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), STALL_S)
            finally:
                self.waiting.remove(waiting)
            # Like a request queued by the API server's priority and fairness: one whose client
            # went away while it waited is dropped, never executed.
            if request.transport is None or request.transport.is_closing():
                raise KubeError("InternalError", "the client went away while the request was queued")
        return await handler(request)

    @web.middleware
    async def _inject(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        plural = request.match_info.get("plural", "")
        queued = self.failing.get((request.method, plural))
        if not queued:
            return await handler(request)
        reason = queued.pop(0)
        res, name = RESOURCES.get(plural) or Resource(plural, plural), request.match_info.get("name")
        if reason == "Conflict":
            raise conflict(res, name or "")
        if reason == "Forbidden":
            raise forbidden(res, _VERBS[request.method], self.user, request.match_info.get("ns"), name)
        raise internal_error(res, name)

    # --- helpers -----------------------------------------------------------------------------

    def _authorize(
        self, res: Resource, verb: str, namespace: str | None, name: str | None, subresource: str = ""
    ) -> None:
        full = f"{res.plural}/{subresource}" if subresource else res.plural
        if not self.rbac.allowed(verb, full, name):
            raise forbidden(res, verb, self.user, namespace, name, subresource)

    @staticmethod
    def _resource(request: web.Request) -> Resource:
        info = request.match_info
        res = resource_for(info.get("group", ""), info["version"], info["plural"])
        if res is None:
            raise no_such_path()
        return res

    @staticmethod
    async def _json(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except ValueError:
            raise bad_request("the request body is not valid JSON") from None

    @staticmethod
    def _ok(obj: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response(obj, status=status)

    # --- resources ---------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        namespace = request.match_info.get("ns")
        watching = request.query.get("watch", "").lower() in ("true", "1")
        self._authorize(res, "watch" if watching else "list", namespace, None)
        if watching:
            raise bad_request("watch is not supported by the sandbox Kubernetes fake")
        items = self.store.list(
            res.plural,
            namespace,
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
        )
        for item in items:  # list items carry no kind/apiVersion of their own
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return self._ok(
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": items,
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        res, ns, name = self._resource(request), request.match_info["ns"], request.match_info["name"]
        self._authorize(res, "get", ns, name)
        return self._ok(self.store.read(res.plural, ns, name))

    async def _create(self, request: web.Request) -> web.Response:
        res, ns = self._resource(request), request.match_info["ns"]
        body = await self._json(request)
        name = body.get("metadata", {}).get("name") if isinstance(body, dict) else None
        self._authorize(res, "create", ns, name)
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a {res.kind} object")
        return self._ok(self.store.create(res.plural, body, ns), status=201)

    async def _replace(self, request: web.Request) -> web.Response:
        res, ns, name = self._resource(request), request.match_info["ns"], request.match_info["name"]
        self._authorize(res, "update", ns, name)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a {res.kind} object")
        return self._ok(self.store.replace(res.plural, ns, name, body))

    async def _patch(self, request: web.Request) -> web.Response:
        res, ns, name = self._resource(request), request.match_info["ns"], request.match_info["name"]
        self._authorize(res, "patch", ns, name)
        patch_type = patch_type_for(request.headers.get("Content-Type", ""))
        body = await self._json(request)
        return self._ok(self.store.patch(res.plural, ns, name, body, patch_type))

    async def _delete(self, request: web.Request) -> web.Response:
        res, ns, name = self._resource(request), request.match_info["ns"], request.match_info["name"]
        self._authorize(res, "delete", ns, name)
        deleted = self.store.delete(res.plural, ns, name)
        details: dict[str, Any] = {"name": name}
        if res.group:
            details["group"] = res.group
        details.update(kind=res.plural, uid=deleted["metadata"]["uid"])
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        return self._ok(status)

    # --- subresources ------------------------------------------------------------------------

    async def _pod_log(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        self._authorize(RESOURCES["pods"], "get", ns, name, "log")
        pod = self.store.read("pods", ns, name)
        options = LogOptions.from_query(name, request.query)
        check_container(pod, options)
        text = render(self.pod_logs(name), options, self._clock())
        return web.Response(text=text, content_type="text/plain")

    async def _proxy(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        name, port = proxy.parse_target(request.match_info["target"])
        self._authorize(RESOURCES["services"], _VERBS.get(request.method, "get"), ns, name, "proxy")
        service = self.store.read("services", ns, name)
        proxy.check_port(service, port)
        upstream = self.proxy_upstreams.get(name)
        if upstream is None or self._session is None:
            raise proxy.unavailable(f'no endpoints available for service "{name}"')
        query = {k: v for k, v in request.query.items() if k != "path"}
        path = request.match_info.get("path") or request.query.get("path", "")
        return await proxy.forward(self._session, upstream, request, path, query)

    async def _access_review(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        spec = body.get("spec") if isinstance(body, dict) else None
        attributes = spec.get("resourceAttributes") if isinstance(spec, dict) else None
        non_resource = spec.get("nonResourceAttributes") if isinstance(spec, dict) else None
        if (attributes is None) == (non_resource is None):
            message = "Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified"
            raise invalid(_SSAR, "", [("spec.resourceAttributes", message)])
        allowed = True
        if attributes is not None:
            resource = attributes.get("resource", "")
            if attributes.get("subresource"):
                resource = f"{resource}/{attributes['subresource']}"
            allowed = self.rbac.allowed(attributes.get("verb", ""), resource, attributes.get("name") or None)
        review = {
            "kind": _SSAR.kind,
            "apiVersion": _SSAR.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed},
        }
        return self._ok(review, status=201)

    async def _version(self, request: web.Request) -> web.Response:
        return self._ok({"major": "1", "minor": "31", "gitVersion": "v1.31.0-flk-sandbox", "platform": "linux/amd64"})
