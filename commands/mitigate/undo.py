"""Undo: the inverse of an applied mitigation, itself a plan (own confirmation, own expiry, own
resourceVersion check) that puts every key back to its exact previous value."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from commands.context import Context
from commands.mitigate.ip_block import LIST_KEYS, undo_list
from commands.mitigate.models import Applied, Change, Conflict, ObjectChange, Plan, Refused
from commands.mitigate.objects import read


async def plan_undo(
    ctx: Context, applied: Applied, *, now: datetime | None = None, reapplies: Plan | None = None
) -> Plan:
    """The plan that restores the values before ``applied``, read at each object's current
    resourceVersion. Only the mitigation's own keys are compared: a later change to other keys
    of the same object does not stop the undo, a later change to one of its keys is a ``Conflict``.

    ``reapplies``: ``applied`` was itself an undo, so this plan applies that original change again
    and needs the approvals it needed."""
    now = now or datetime.now(UTC)
    objects = []
    for change in applied.objects:
        cm = await read(ctx, change.ref)
        values = [c for c in change.changes if c.key not in LIST_KEYS]
        current = {c.key: cm.data.get(c.key) for c in values}
        ours = {c.key: c.after for c in values}
        if current != ours:
            raise Conflict(change.ref, change.resource_version, cm.resource_version, current, ours)
        # A list (a denylist) may have been edited since by others: take back only our entries.
        lists = [
            Change(c.key, cm.data.get(c.key), undo_list(c, cm.data.get(c.key)))
            for c in change.changes
            if c.key in LIST_KEYS
        ]
        back = [
            *ObjectChange(change.ref, "", tuple(values)).inverse("").changes,
            *(c for c in lists if c.before != c.after),
        ]
        if back:
            objects.append(ObjectChange(change.ref, cm.resource_version, tuple(back)))
    if not objects:
        raise Refused("someone already took this change back: nothing to undo")
    original = applied.plan
    return Plan(
        id=uuid.uuid4().hex[:12],
        tenant=original.tenant,
        action=original.action,
        objects=tuple(objects),
        # The restored values take effect the way the mitigation's did: with a restart if it had one.
        restart=original.restart,
        # Restoring a state that ran before asks no approvals again; re-applying a change does.
        needs_second_approver=reapplies.needs_second_approver if reapplies else False,
        approval_reasons=reapplies.approval_reasons if reapplies else (),
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.config.mitigations.plan_expiry_s),
        notes=(f"undo of {original.action} (plan {original.id})",),
        undoes=original.id,
    )
