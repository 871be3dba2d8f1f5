"""The three patch formats the API server accepts, chosen by the request's Content-Type.

JSON merge patch (RFC 7386) and strategic merge patch are small enough to write here;
JSON patch (RFC 6902) is the ``jsonpatch`` library's.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import jsonpatch
import jsonpointer

from sandbox.kube.errors import KubeError, bad_request, unsupported_media_type

PatchType = Literal["merge", "strategic", "json"]

CONTENT_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}

# patchMergeKey of the list fields the bot's objects carry (from the Kubernetes API types).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "ports": "port",  # containerPort for a container's ports, see _merge_key
}
# Lists of scalars whose patch strategy is "merge" (a union) rather than "replace".
_MERGED_SCALAR_LISTS = {"finalizers"}


def patch_type_for(content_type: str) -> PatchType:
    """The patch format of a Content-Type header; anything unknown is a 415."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise unsupported_media_type()
    return CONTENT_TYPES[media]


def apply_patch(obj: dict[str, Any], body: Any, patch_type: PatchType) -> dict[str, Any]:
    """A patched deep copy of ``obj``; ``obj`` itself is left alone."""
    if patch_type == "json":
        return _json_patch(obj, body)
    if not isinstance(body, dict):
        raise bad_request(f"{patch_type} patch must be a JSON object, got {type(body).__name__}")
    result = merge_patch(obj, body) if patch_type == "merge" else strategic_merge_patch(obj, body)
    return copy.deepcopy(result)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: dict[str, Any]) -> Any:
    """Merge patch, except that keyed lists merge item by item and ``$patch`` directives apply.

    Returns None when the patch says ``$patch: delete`` for this whole map.
    """
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    plain = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return copy.deepcopy(_strip_directives(plain))
    result = dict(target) if isinstance(target, dict) else {}
    # Directive keys first, so that "$deleteFromPrimitiveList/x" acts before "x" merges.
    for key in sorted(plain, key=lambda k: not k.startswith("$")):
        value = plain[key]
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
        elif key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys: ordering hints kubectl sends
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in _MERGED_SCALAR_LISTS:
            current = result.get(key) or []
            result[key] = current + [v for v in value if v not in current]
        elif isinstance(value, list) and key in _MERGE_KEYS and all(isinstance(v, dict) for v in value):
            result[key] = _merge_list(result.get(key) or [], value, _merge_key(key, value))
        else:
            result[key] = copy.deepcopy(_strip_directives(value))
    return result


def _merge_key(field: str, items: list[dict[str, Any]]) -> str:
    if field == "ports" and any("containerPort" in item for item in items):
        return "containerPort"
    return _MERGE_KEYS[field]


def _merge_list(current: list[Any], patch: list[dict[str, Any]], key: str) -> list[Any]:
    if any(item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch if item.get("$patch") != "replace"]
    result = list(current)
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {sorted(item)} does not contain declared merge key: {key}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            result = [old for old in result if not (isinstance(old, dict) and old.get(key) == item[key])]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _json_patch(obj: dict[str, Any], body: Any) -> dict[str, Any]:
    if not isinstance(body, list):
        raise bad_request("json patch must be a JSON array of operations")
    result: Any = obj
    # One operation at a time, so that an error can name the operation that failed.
    for op in body:
        try:
            result = jsonpatch.JsonPatch([op]).apply(result)
        except jsonpatch.InvalidJsonPatch as exc:
            raise bad_request(f"invalid JSON patch: {exc}") from None
        except jsonpatch.JsonPatchTestFailed:
            # The library's message quotes the values; a secret's must not reach the caller.
            raise _rejected(f"testing value {op.get('path')} failed") from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, TypeError, KeyError):
            raise _rejected(f"cannot apply operation {op.get('op')} at {op.get('path')}") from None
    if not isinstance(result, dict):
        raise bad_request("json patch must leave an object")
    return result if result is not obj else copy.deepcopy(obj)


def _rejected(detail: str) -> KubeError:
    return KubeError("Invalid", f"the server rejected our request due to an error in our request: {detail}", {})
