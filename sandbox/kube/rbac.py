"""Who may do what: everything is allowed except the entries of a deny table that tests
and the world spec (``World.rbac_deny``) can change while the fake runs."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sandbox.world.spec import RbacDeny


class Rbac:
    """A deny table. ``resource`` is a plural, optionally with a subresource (``pods/log``,
    ``services/proxy``); an entry without ``name`` denies the verb on every object."""

    def __init__(self, denies: Iterable[RbacDeny] = ()) -> None:
        self._lock = threading.Lock()
        self._denies: list[RbacDeny] = list(denies)

    @property
    def denies(self) -> tuple[RbacDeny, ...]:
        with self._lock:
            return tuple(self._denies)

    def deny(self, verb: str, resource: str, name: str | None = None) -> None:
        entry = RbacDeny.model_validate({"verb": verb, "resource": resource, "name": name})
        with self._lock:
            if entry not in self._denies:
                self._denies.append(entry)

    def allow(self, verb: str, resource: str, name: str | None = None) -> None:
        """Remove the deny entry with exactly these fields (if any)."""
        with self._lock:
            self._denies = [d for d in self._denies if (d.verb, d.resource, d.name) != (verb, resource, name)]

    def reset(self, denies: Iterable[RbacDeny] = ()) -> None:
        with self._lock:
            self._denies = list(denies)

    def allowed(self, verb: str, resource: str, name: str | None = None) -> bool:
        with self._lock:
            return not any(
                d.verb == verb and d.resource == resource and (d.name is None or d.name == name) for d in self._denies
            )
