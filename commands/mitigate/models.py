"""A mitigation before and after it happens, Slack-free: the plan (the exact objects, each key's
before → after, the resourceVersion it was read at, the restart that follows), what was really
applied, and the typed ways a mitigation is refused or stops half-way."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import TypeAdapter

Action = Literal["degraded-mode", "quota", "rollback-policy", "key-window", "ip-block"]
# Mitigations meant to be temporary: each carries an expiry, at which the thread is reminded.
TEMPORARY: frozenset[str] = frozenset({"degraded-mode", "quota", "key-window", "ip-block"})
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name} (namespace {self.namespace})"


@dataclass(frozen=True)
class Change:
    key: str
    # None: the key is absent (before) or removed (after).
    before: str | None
    after: str | None

    def __str__(self) -> str:
        return f"{self.key}: {_shown(self.before)} → {_shown(self.after)}"


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else f'"{value}"'


@dataclass(frozen=True)
class ObjectChange:
    ref: ObjectRef
    # In a plan: the version the before values were read at (the patch's precondition).
    # In an Applied: the version the patch produced.
    resource_version: str
    changes: tuple[Change, ...]

    @property
    def patch(self) -> dict[str, str | None]:
        """The configmap data of a JSON merge patch (None removes the key)."""
        return {c.key: c.after for c in self.changes}

    def inverse(self, resource_version: str) -> ObjectChange:
        back = tuple(Change(c.key, c.after, c.before) for c in self.changes)
        return ObjectChange(self.ref, resource_version, back)


@dataclass(frozen=True)
class Draft:
    """What a plan builder found to change, before the plan's id, expiry and approvals."""

    objects: tuple[ObjectChange, ...]
    restart: bool
    notes: tuple[str, ...] = ()
    approval_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    id: str
    tenant: str
    action: Action
    objects: tuple[ObjectChange, ...]
    # The deployment rolled after the patch (`kubectl rollout restart`), or None.
    restart: ObjectRef | None
    needs_second_approver: bool
    approval_reasons: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    notes: tuple[str, ...] = ()
    # The id of the plan this one reverses (an undo), else None.
    undoes: str | None = None
    # A temporary mitigation lasts this long once applied (then a reminder); None: until undone.
    lasts_s: float | None = None

    @property
    def inverse(self) -> tuple[ObjectChange, ...]:
        """How to undo it: every key back to its exact previous value (versions known once applied)."""
        return tuple(o.inverse("") for o in self.objects)

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires_at

    def lines(self) -> list[str]:
        """The dry run, one line per key and one for the restart."""
        out = [f"{o.ref} · {c}" for o in self.objects for c in o.changes]
        if self.restart is not None:
            out.append(f"then `kubectl rollout restart` of {self.restart}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return _PLAN.dump_python(self, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return _PLAN.validate_python(data)


@dataclass(frozen=True)
class Applied:
    plan: Plan
    # What really changed: before → after as the API server answered, at the new resourceVersion.
    objects: tuple[ObjectChange, ...]
    applied_at: datetime
    # The restartedAt value of the rollout restart; None when none was done (yet).
    restarted_at: str | None = None
    # The plan's restart failed after the patch: retry it or undo.
    restart_pending: bool = False
    # When a temporary mitigation is due to be reverted (moved on by Extend); None: not temporary.
    until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return _APPLIED.dump_python(self, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Applied:
        return _APPLIED.validate_python(data)

    def restarted(self, at: str) -> Applied:
        return replace(self, restarted_at=at, restart_pending=False)


_PLAN: TypeAdapter[Plan] = TypeAdapter(Plan)
_APPLIED: TypeAdapter[Applied] = TypeAdapter(Applied)


class MitigationError(Exception):
    """A mitigation that was not made, or not fully; the message is short and safe to show."""


class Refused(MitigationError):
    """The plan cannot be made or applied; nothing changed."""


class Expired(Refused):
    """The plan was not confirmed in time: the objects may have moved on since."""


class Forbidden(Refused):
    """Kubernetes RBAC refused the bot (403); nothing changed."""

    def __init__(self, verb: str, resource: str, namespace: str, name: str) -> None:
        super().__init__(
            f"forbidden: the bot may not {verb} {resource} `{name}` in namespace {namespace} (RBAC); nothing changed"
        )
        self.verb, self.resource, self.namespace, self.name = verb, resource, namespace, name


class Conflict(MitigationError):
    """The object changed after the plan was read (409): nothing was applied; re-plan.

    ``current`` holds the plan's keys as they are now (None: absent); it is empty when the
    object could not be read back.
    """

    def __init__(
        self,
        ref: ObjectRef,
        planned_version: str,
        current_version: str | None,
        current: dict[str, str | None],
        planned: dict[str, str | None],
    ) -> None:
        self.ref, self.planned_version, self.current_version = ref, planned_version, current_version
        self.current, self.planned = current, planned
        moved = [
            f"{k} is now {_shown(v)}, planned from {_shown(planned.get(k))}"
            for k, v in current.items()
            if v != planned.get(k)
        ]
        if current_version is None:
            detail = "its current state could not be read"
        else:
            detail = "; ".join(moved) if moved else "other fields changed"
        super().__init__(
            f"{ref.kind.lower()}/{ref.name} changed since the plan was made ({detail}): nothing was applied; re-plan"
        )


class Uncertain(MitigationError):
    """The API server did not answer a write and could not be asked afterwards: the change may
    or may not have been made. Read the object before doing anything else."""


class PartialApply(MitigationError):
    """Part of the mitigation is in place and part is not (typically: the configmap is patched,
    the rollout restart failed). ``applied`` says exactly what changed; retry the restart or undo."""

    def __init__(self, applied: Applied, reason: str) -> None:
        super().__init__(reason)
        self.applied = applied
