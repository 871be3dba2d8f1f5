"""Apply a plan: each object (configmap, ingress) patched only at the resourceVersion the plan was read at, then the
rollout restart. Either all of it happens, or nothing (a later patch that fails puts the earlier
ones back), or a ``PartialApply`` says exactly what is in place: never a silent half-change."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from commands.context import Context
from commands.mitigate.models import (
    Applied,
    Change,
    Conflict,
    Expired,
    Forbidden,
    MitigationError,
    ObjectChange,
    PartialApply,
    Plan,
    Refused,
    Uncertain,
)
from commands.mitigate.objects import Snapshot, fetch, resource_of, write
from integrations.kube import KubeError

log = logging.getLogger(__name__)


async def apply(ctx: Context, plan: Plan, *, now: datetime | None = None, resume: bool = False) -> Applied:
    """Make the plan's change. Raises ``Expired``, ``Conflict`` (409: nothing applied),
    ``Forbidden`` (403: nothing applied), ``Refused`` (other API refusals: nothing applied),
    ``Uncertain`` (no answer, state unknown) or ``PartialApply`` (patched, restart failed).

    ``resume``: an earlier attempt stopped part-way (its replica died). Objects that already hold
    their planned values are kept, the rest are patched as planned, and the restart runs again,
    since nothing tells whether it ran. The confirmation came in time, so expiry is not checked."""
    now = now or datetime.now(UTC)
    if plan.expired(now) and not resume:
        raise Expired(f"plan {plan.id} expired at {plan.expires_at:%H:%M:%S} UTC: nothing was applied; re-plan")
    done: list[ObjectChange] = []
    for change in plan.objects:
        try:
            cm = (await _patched_already(ctx, change) if resume else None) or await patch(ctx, change)
        except MitigationError as exc:
            await _put_back(ctx, plan, done, exc, now)
            raise
        done.append(observed(change, cm))
    applied = Applied(plan, tuple(done), now, restart_pending=plan.restart is not None)
    return await retry_restart(ctx, applied) if plan.restart is not None else applied


async def retry_restart(ctx: Context, applied: Applied) -> Applied:
    """The plan's rollout restart (again); ``PartialApply`` if it fails, with the patch in place."""
    target = applied.plan.restart
    if target is None:
        return applied
    try:
        rollout = await ctx.kube.restart_deployment(target.name)
    except KubeError as exc:
        patched = ", ".join(f"{o.ref.kind.lower()}/{o.ref.name}" for o in applied.objects) or "nothing"
        raise PartialApply(
            Applied(applied.plan, applied.objects, applied.applied_at, restart_pending=True),
            f"{patched} patched, but the rollout restart of deployment/{target.name} failed ({exc.reason}): "
            "the change is not in effect until the backend restarts; retry the restart or undo",
        ) from None
    return applied.restarted(rollout.restarted_at)


async def patch(ctx: Context, change: ObjectChange) -> Snapshot:
    """One merge patch with the change's resourceVersion as its precondition."""
    ref = change.ref
    try:
        return await write(ctx, ref, change.patch, change.resource_version)
    except KubeError as exc:
        if exc.status == 409:
            raise await conflict(ctx, change) from None
        if exc.status == 403:
            raise Forbidden("patch", resource_of(ref), ref.namespace, ref.name) from None
        if exc.status < 500:
            raise Refused(f"{ref.kind.lower()}/{ref.name}: {exc.reason}; nothing changed") from None
        return await _settle(ctx, change, exc)


async def _settle(ctx: Context, change: ObjectChange, failure: KubeError) -> Snapshot:
    """A write without a clear answer (timeout, 5xx) may still have landed: look before saying."""
    ref = change.ref
    try:
        cm = await fetch(ctx, ref)
    except KubeError:
        raise Uncertain(
            f"{ref.kind.lower()}/{ref.name}: no clear answer to the patch ({failure.reason}) and the object "
            "cannot be read back: it may or may not have changed; check it before anything else"
        ) from None
    if cm.resource_version == change.resource_version:
        raise Refused(f"{ref.kind.lower()}/{ref.name}: {failure.reason}; nothing changed")
    if all(cm.data.get(k) == v for k, v in change.patch.items()):
        return cm
    raise Conflict(ref, change.resource_version, cm.resource_version, _values(cm, change), _planned(change))


async def conflict(ctx: Context, change: ObjectChange) -> Conflict:
    """The 409 with the object's current values, so the user sees what moved and can re-plan."""
    try:
        cm = await fetch(ctx, change.ref)
    except KubeError:
        return Conflict(change.ref, change.resource_version, None, {}, _planned(change))
    return Conflict(change.ref, change.resource_version, cm.resource_version, _values(cm, change), _planned(change))


async def _patched_already(ctx: Context, change: ObjectChange) -> Snapshot | None:
    """The object when an earlier attempt's patch landed: moved on from the plan's version and
    holding every planned value. A read that fails leaves it to the patch to find out."""
    try:
        cm = await fetch(ctx, change.ref)
    except KubeError:
        return None
    moved = cm.resource_version != change.resource_version
    return cm if moved and all(cm.data.get(k) == v for k, v in change.patch.items()) else None


def observed(change: ObjectChange, cm: Snapshot) -> ObjectChange:
    """What the API server says changed, at the version the patch produced."""
    after = tuple(Change(c.key, c.before, cm.data.get(c.key)) for c in change.changes)
    return ObjectChange(change.ref, cm.resource_version, after)


def _values(cm: Snapshot, change: ObjectChange) -> dict[str, str | None]:
    return {c.key: cm.data.get(c.key) for c in change.changes}


def _planned(change: ObjectChange) -> dict[str, str | None]:
    return {c.key: c.before for c in change.changes}


async def _put_back(
    ctx: Context, plan: Plan, done: list[ObjectChange], failure: MitigationError, now: datetime
) -> None:
    """After a later object failed, undo the earlier ones so that nothing stays applied; if that
    fails too, the half that stays is raised as a ``PartialApply``."""
    left = list(done)
    for change in reversed(done):
        try:
            await patch(ctx, change.inverse(change.resource_version))
        except MitigationError as exc:
            log.warning("plan %s: could not put %s back: %s", plan.id, change.ref.name, exc)
            raise PartialApply(
                Applied(plan, tuple(left), now, restart_pending=plan.restart is not None),
                f"{failure}; and {change.ref.kind.lower()}/{change.ref.name}, already patched, "
                f"could not be put back ({exc}): undo it",
            ) from None
        left.remove(change)
