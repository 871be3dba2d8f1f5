"""The object store behind the Kubernetes fake: versioned objects, optimistic concurrency,
selectors and change callbacks.

The store is privileged (no RBAC); the HTTP server checks permissions before calling it.
Other sandbox parts read it directly and react to writes through ``on_change``.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.kube import validate
from sandbox.kube.errors import KubeError, already_exists, bad_request, conflict, invalid, no_such_path, not_found
from sandbox.kube.patch import PatchType, apply_patch
from sandbox.kube.resources import BY_KIND, RESOURCES, Resource
from sandbox.kube.selectors import field_matcher, label_matcher
from sandbox.kube.timefmt import rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# (resource plural, object before the write or None, object after the write or None)
ChangeCallback = Callable[[str, Obj | None, Obj | None], None]

# Resources whose status is written by controllers, not through the main resource.
_STATUS_SUBRESOURCE = {"deployments", "pods", "services", "ingresses"}
# Resources whose metadata.generation counts spec changes.
_GENERATION = {"deployments"}


def resource(plural: str) -> Resource:
    if plural not in RESOURCES:
        raise no_such_path()
    return RESOURCES[plural]


class KubeStore:
    """Objects by (resource, namespace, name). Reads return deep copies; writes bump a global
    ``resourceVersion`` and call every ``on_change`` callback after the store is consistent."""

    def __init__(self, objects: Iterable[Obj] = (), *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._version = 0
        self._lock = threading.RLock()
        self._callbacks: list[ChangeCallback] = []
        self.load(objects)

    @property
    def resource_version(self) -> str:
        return str(self._version)

    def load(self, objects: Iterable[Obj]) -> list[Obj]:
        """Create objects of any served kind (``kind`` names the resource)."""
        created = []
        for obj in objects:
            kind = obj.get("kind")
            if kind not in BY_KIND:
                raise ValueError(f"cannot load an object of kind {kind!r}; served kinds: {sorted(BY_KIND)}")
            created.append(self.create(BY_KIND[kind].plural, obj))
        return created

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(resource, before, after)`` after each successful write; returns an
        unsubscribe function. ``before`` is None on create, ``after`` None on delete."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        resource(plural)
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def read(self, plural: str, namespace: str, name: str) -> Obj:
        """Like ``get`` but a missing object is the API's NotFound error."""
        obj = self.get(plural, namespace, name)
        if obj is None:
            raise not_found(resource(plural), name)
        return obj

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        """Objects of a resource (all namespaces when ``namespace`` is None), by namespace and name."""
        res = resource(plural)
        by_label, by_field = label_matcher(label_selector), field_matcher(field_selector, res)
        with self._lock:
            found = [
                copy.deepcopy(obj)
                for (p, ns, _), obj in sorted(self._objects.items())
                if p == plural and (namespace is None or ns == namespace) and by_label(obj) and by_field(obj)
            ]
        return found

    def create(self, plural: str, obj: Obj, namespace: str | None = None) -> Obj:
        res = resource(plural)
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        namespace = self._namespace(res, meta, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name:
            raise invalid(res, "", [("metadata.name", "Required value: name or generateName is required")])
        validate.check(res, new)
        with self._lock:
            if (plural, namespace, name) in self._objects:
                raise already_exists(res, name)
            new["kind"], new["apiVersion"] = res.kind, res.api_version
            meta["uid"] = str(uuid.uuid4())
            # A loaded world object may bring its own creation time; the API server would not.
            meta.setdefault("creationTimestamp", rfc3339(self._clock()))
            if plural in _GENERATION:
                meta["generation"] = 1
                new.setdefault("status", {})["observedGeneration"] = 1
            stored = self._commit(plural, namespace, name, new)
        self._notify(plural, None, stored)
        return copy.deepcopy(stored)

    def replace(self, plural: str, namespace: str, name: str, obj: Obj) -> Obj:
        """PUT: the whole object; a ``metadata.resourceVersion`` that is not current is a 409."""
        return self._write(plural, namespace, name, lambda current: copy.deepcopy(obj))

    def patch(self, plural: str, namespace: str, name: str, body: Any, patch_type: PatchType = "merge") -> Obj:
        """PATCH: apply ``body`` to the current object; a stale resourceVersion in it is a 409."""
        return self._write(plural, namespace, name, lambda current: apply_patch(current, body, patch_type))

    def set_status(self, plural: str, namespace: str, name: str, status: Obj) -> Obj:
        """Replace an object's status, as its controller would (the main resource ignores it)."""
        res = resource(plural)
        with self._lock:
            current = self._objects.get((plural, namespace, name))
            if current is None:
                raise not_found(res, name)
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(status)
            stored = self._commit(plural, namespace, name, new)
        self._notify(plural, current, stored)
        return copy.deepcopy(stored)

    def delete(self, plural: str, namespace: str, name: str) -> Obj:
        res = resource(plural)
        with self._lock:
            before = self._objects.pop((plural, namespace, name), None)
            if before is None:
                raise not_found(res, name)
            self._version += 1
        self._notify(plural, before, None)
        return copy.deepcopy(before)

    def _write(self, plural: str, namespace: str, name: str, change: Callable[[Obj], Obj]) -> Obj:
        res = resource(plural)
        with self._lock:
            current = self._objects.get((plural, namespace, name))
            if current is None:
                raise not_found(res, name)
            new = change(copy.deepcopy(current))
            if not isinstance(new, dict):
                raise bad_request(f"the body must be a {res.kind} object")
            meta = new.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise bad_request("metadata must be an object")
            if meta.get("name", name) != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            if meta.get("namespace", namespace) != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            version = meta.get("resourceVersion")
            if version not in (None, "") and version != current["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            validate.check(res, new)
            new["kind"], new["apiVersion"] = res.kind, res.api_version
            old_meta = current["metadata"]
            meta.update(
                name=name,
                namespace=namespace,
                uid=old_meta["uid"],
                creationTimestamp=old_meta["creationTimestamp"],
                resourceVersion=old_meta["resourceVersion"],
            )
            if plural in _STATUS_SUBRESOURCE:
                new.pop("status", None)
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
            if plural in _GENERATION:
                meta["generation"] = old_meta.get("generation", 1)
                if new.get("spec") != current.get("spec"):
                    meta["generation"] += 1
                    # No controller runs here: the rollout is observed as soon as it is asked for.
                    new.setdefault("status", {})["observedGeneration"] = meta["generation"]
            if new == current:
                return copy.deepcopy(current)  # a no-op write keeps its resourceVersion, as in etcd
            stored = self._commit(plural, namespace, name, new)
        self._notify(plural, current, stored)
        return copy.deepcopy(stored)

    def _commit(self, plural: str, namespace: str, name: str, obj: Obj) -> Obj:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self._objects[(plural, namespace, name)] = obj
        return obj

    @staticmethod
    def _namespace(res: Resource, meta: Obj, namespace: str | None) -> str:
        if not res.namespaced:
            return ""
        declared = meta.get("namespace")
        if namespace and declared and declared != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        chosen = namespace or declared
        if not chosen:
            raise bad_request(f"a {res.kind} needs a namespace")
        meta["namespace"] = chosen
        return chosen

    def _notify(self, plural: str, before: Obj | None, after: Obj | None) -> None:
        for callback in list(self._callbacks):
            try:
                callback(plural, copy.deepcopy(before), copy.deepcopy(after))
            except Exception:
                # A watcher's bug must not turn a successful write into a failed request.
                log.exception("kube store change callback %r failed", callback)


__all__ = ["ChangeCallback", "KubeError", "KubeStore", "Obj"]
