"""API errors as the real API server reports them: ``Status`` objects with its messages."""

from __future__ import annotations

from typing import Any

from sandbox.kube.resources import Resource

_CODES = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "AlreadyExists": 409,
    "Conflict": 409,
    "UnsupportedMediaType": 415,
    "Invalid": 422,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
)


class KubeError(Exception):
    """A failed request; ``status`` is the body the API server would send."""

    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = _CODES[reason]
        self.message = message
        self.details = details

    @property
    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(resource: Resource, name: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: Resource, name: str) -> KubeError:
    return KubeError("NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def already_exists(resource: Resource, name: str) -> KubeError:
    return KubeError("AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource: Resource, name: str) -> KubeError:
    message = (
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return KubeError("Conflict", message, _details(resource, name))


def forbidden(
    resource: Resource, verb: str, user: str, namespace: str | None, name: str | None, subresource: str = ""
) -> KubeError:
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    full = f"{resource.plural}/{subresource}" if subresource else resource.plural
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "{resource.group}"{scope}'
    )
    return KubeError("Forbidden", message, _details(resource, name))


def invalid(resource: Resource, name: str, causes: list[tuple[str, str]]) -> KubeError:
    """``causes``: (field, message) pairs, e.g. ("data.x", 'Invalid value: 5: must be a string')."""
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    details = _details(resource, name)
    details["kind"] = resource.kind
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": message, "field": field} for field, message in causes
    ]
    return KubeError("Invalid", f'{resource.qualified_kind} "{name}" is invalid: {text}', details)


def internal_error(resource: Resource, name: str | None) -> KubeError:
    """What the API server answers when etcd or an admission webhook fails under it."""
    message = "Internal error occurred: etcdserver: request timed out"
    details = _details(resource, name)
    details["causes"] = [{"message": "etcdserver: request timed out"}]
    return KubeError("InternalError", message, details)


def unsupported_media_type() -> KubeError:
    accepted = ", ".join(PATCH_TYPES)
    message = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
    return KubeError("UnsupportedMediaType", message, {})


def bad_request(message: str) -> KubeError:
    return KubeError("BadRequest", message)


def unauthorized() -> KubeError:
    return KubeError("Unauthorized", "Unauthorized")


def no_such_path() -> KubeError:
    return KubeError("NotFound", "the server could not find the requested resource", {})
