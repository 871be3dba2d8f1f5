"""The API server's validation of the fields the bot writes (422 Invalid, never a crash)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from sandbox.kube.errors import invalid
from sandbox.kube.resources import Resource

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _describe(value: Any) -> str:
    # Invalid messages echo the offending value except for secrets, whose values stay hidden.
    return repr(value) if isinstance(value, str) else type(value).__name__


def _string_map(obj: dict[str, Any], path: str, *, keys: bool, hide: bool) -> list[tuple[str, str]]:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return []
    if not isinstance(node, dict):
        return [(path, "Invalid value: must be a map of strings")]
    causes = []
    for key, value in node.items():
        field = f"{path}[{key}]"
        if keys and not _CONFIG_KEY.match(key):
            causes.append(
                (field, "Invalid value: a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
            )
        if not isinstance(value, str):
            shown = "value hidden" if hide else _describe(value)
            causes.append((field, f"Invalid value: {shown}: must be a string"))
    return causes


def check(resource: Resource, obj: dict[str, Any]) -> None:
    """Raise the API server's 422 for values it would refuse; fold a Secret's stringData in."""
    name = (obj.get("metadata") or {}).get("name", "")
    causes = _string_map(obj, "metadata.labels", keys=False, hide=False)
    causes += _string_map(obj, "metadata.annotations", keys=False, hide=False)
    if resource.plural == "configmaps":
        causes += _string_map(obj, "data", keys=True, hide=False)
        causes += _string_map(obj, "binaryData", keys=True, hide=False)
    elif resource.plural == "secrets":
        causes += _string_map(obj, "stringData", keys=True, hide=True)
        causes += _string_map(obj, "data", keys=True, hide=True)
        if not causes:
            causes += _fold_string_data(obj)
    if causes:
        raise invalid(resource, name, causes)


def _fold_string_data(secret: dict[str, Any]) -> list[tuple[str, str]]:
    """stringData is write-only: the API server stores it base64-encoded under data."""
    causes = []
    for key, value in (secret.get("data") or {}).items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            causes.append((f"data[{key}]", "Invalid value: value hidden: must be base64-encoded"))
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
    return causes
