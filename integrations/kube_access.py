"""Which Kubernetes permissions the bot needs, read from its own code, and whether it has them.

``required_permissions()`` walks the source of ``bot``, ``commands`` and ``integrations`` for
every kubernetes-asyncio API call and asks the client which HTTP request each one makes, so
the list follows the code as it changes (the shipped Role is tested against it, and
``flk doctor`` checks each entry with a SelfSubjectAccessReview).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from integrations.kube import Kube, KubeError

SCANNED_PACKAGES = ("bot", "commands", "integrations")
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, order=True)
class Permission:
    """One RBAC grant: ``verb`` on ``group``/``resource``[/``subresource``], optionally one object."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    name: str | None = None

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        where = f"{self.group}/" if self.group else ""
        return f"{self.verb} {where}{self.rbac_resource}" + (f" {self.name}" if self.name else "")


# Every authenticated user may ask what they may do (ClusterRole system:basic-user).
GRANTED_TO_EVERYONE = frozenset({Permission("create", "selfsubjectaccessreviews", "authorization.k8s.io")})

# Left out of the shipped Role on purpose. RBAC cannot grant a Secret's key names without its
# values, nor name the signing secrets by pattern: with `get secrets` the bot could read every
# tenant's signing key. Without it scenario A's "Signing keys" probe reports the 403 as an
# error finding ("forbidden ... (RBAC)") and the verdict rests on key-rotation events and the
# rejected signatures in the backend logs.
WITHHELD = {Permission("get", "secrets"): "scenario A lists the signing keys' names only with it"}


@dataclass(frozen=True)
class ApiCall:
    """One kubernetes-asyncio API method called in the code, and where."""

    api: str  # the client class, e.g. CoreV1Api
    method: str
    where: str  # path:line


class DerivationError(Exception):
    """A call the scan cannot attribute to one API class."""


def _api_classes() -> dict[str, type]:
    return {
        name: cls
        for name, cls in vars(client).items()
        if isinstance(cls, type) and name.endswith("Api") and name != "ApiClient"
    }


@functools.cache
def _methods() -> dict[str, frozenset[str]]:
    """API method name -> the classes that define it."""
    owners: dict[str, set[str]] = {}
    for name, cls in _api_classes().items():
        for method in vars(cls):
            if not method.startswith("_") and not method.endswith("_with_http_info"):
                owners.setdefault(method, set()).add(name)
    return {m: frozenset(c) for m, c in owners.items()}


def _terminal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _api_of(node: ast.AST, classes: dict[str, type]) -> str | None:
    """``client.CoreV1Api(...)`` -> "CoreV1Api"."""
    if isinstance(node, ast.Call) and _terminal(node.func) in classes:
        return _terminal(node.func)
    return None


def _source_files(packages: Iterable[str]) -> Iterator[Path]:
    root = Path(__file__).resolve().parent.parent
    for package in packages:
        yield from sorted((root / package).rglob("*.py"))


def api_calls(files: Iterable[Path] | None = None) -> list[ApiCall]:
    """Every kubernetes-asyncio API method call in ``files`` (default: the bot's packages).

    A receiver is attributed through the assignments that build API objects
    (``self.core = client.CoreV1Api(api)``), or by the method name when one class has it.
    """
    classes, methods = _api_classes(), _methods()
    paths = _source_files(SCANNED_PACKAGES) if files is None else files
    trees = [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in paths]
    bound: dict[str, set[str]] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                api = _api_of(node.value, classes)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if api and (name := _terminal(target)):
                        bound.setdefault(name, set()).add(api)
    found = []
    for path, tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owners = methods.get(node.func.attr)
            if not owners:
                continue
            receiver = node.func.value
            direct = _api_of(receiver, classes)
            candidates = {direct} if direct else (bound.get(_terminal(receiver) or "", set()) & owners) or owners
            where = f"{path.parent.name}/{path.name}:{node.lineno}"
            if len(candidates) != 1:
                raise DerivationError(f"{where}: {node.func.attr} belongs to {', '.join(sorted(candidates))}")
            found.append(ApiCall(next(iter(candidates)), node.func.attr, where))
    return found


class _Recorder:
    """Stands in for ApiClient: records the request an API method would send."""

    client_side_validation = False

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def call_api(self, path: str, method: str, *args: Any, **kwargs: Any) -> None:
        self.requests.append((path, method))

    def select_header_accept(self, *args: Any, **kwargs: Any) -> None:
        return None

    def select_header_content_type(self, *args: Any, **kwargs: Any) -> None:
        return None


def request_of(api: str, method: str) -> tuple[str, str]:
    """The (path template, HTTP method) the client sends for ``api.method``."""
    recorder = _Recorder()
    bound = getattr(_api_classes()[api](api_client=recorder), method)
    required = [
        p
        for p in inspect.signature(bound).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    bound(*["x"] * len(required))
    return recorder.requests[-1]


def permission_for(path: str, http_method: str) -> Permission:
    """The RBAC permission a request needs, as the API server's request-info resolver sees it."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if len(rest) > 2 and rest[:2] == ["namespaces", "{namespace}"]:
        rest = rest[2:]
    resource, named = rest[0], len(rest) > 1
    subresource = rest[2] if len(rest) > 2 else ""
    if http_method == "GET":
        verb = "get" if named else "list"
    elif http_method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS[http_method]
    return Permission(verb, resource, group, subresource)


def required_permissions(files: Iterable[Path] | None = None) -> set[Permission]:
    """What the code's Kubernetes calls need, less what every user has anyway."""
    if files is None:
        return set(_bots_permissions())
    found = {permission_for(*request_of(call.api, call.method)) for call in api_calls(files)}
    return found - GRANTED_TO_EVERYONE


@functools.cache
def _bots_permissions() -> frozenset[Permission]:
    """The installed code does not change while it runs: scanned once."""
    return frozenset(required_permissions(list(_source_files(SCANNED_PACKAGES))))


async def can_i(kube: Kube, permission: Permission) -> bool:
    """A SelfSubjectAccessReview of ``permission`` in the bot's namespace."""
    attributes = client.V1ResourceAttributes(
        namespace=kube.namespace,
        verb=permission.verb,
        group=permission.group,
        resource=permission.resource,
        subresource=permission.subresource or None,
        name=permission.name,
    )
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    api = client.AuthorizationV1Api(kube.core.api_client)
    try:
        answer = await asyncio.wait_for(api.create_self_subject_access_review(review), kube.timeout_s)
    except TimeoutError:
        raise KubeError(f"no answer within {kube.timeout_s:g} s", 504, "Timeout") from None
    except ApiException as exc:
        status = exc.status or 0
        reason = "the API server rejected the bot's token" if status == 401 else f"access review: HTTP {status}"
        raise KubeError(reason, status) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise KubeError(f"cannot reach the API server ({type(exc).__name__})", 503, "Unavailable") from None
    return bool(answer.status and answer.status.allowed)
