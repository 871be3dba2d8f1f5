"""Undo: the inverse of an applied mitigation, itself a plan (own confirmation, own expiry, own
resourceVersion check) that puts every key back to its exact previous value."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from commands.context import Context
from commands.mitigate.models import Applied, Conflict, Plan
from commands.mitigate.plans import read


async def plan_undo(ctx: Context, applied: Applied, *, now: datetime | None = None) -> Plan:
    """The plan that restores the values before ``applied``; a ``Conflict`` if any object changed
    since (its resourceVersion is no longer the one the mitigation produced)."""
    now = now or datetime.now(UTC)
    objects = []
    for change in applied.objects:
        cm = await read(ctx, change.ref.name)
        if cm.resource_version != change.resource_version:
            current = {c.key: cm.data.get(c.key) for c in change.changes}
            planned = {c.key: c.after for c in change.changes}
            raise Conflict(change.ref, change.resource_version, cm.resource_version, current, planned)
        objects.append(change.inverse(cm.resource_version))
    original = applied.plan
    return Plan(
        id=uuid.uuid4().hex[:12],
        tenant=original.tenant,
        action=original.action,
        objects=tuple(objects),
        # The restored values take effect the way the mitigation's did: with a restart if it had one.
        restart=original.restart,
        # It restores a state that ran before, so the original's approvals are not asked again.
        needs_second_approver=False,
        approval_reasons=(),
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.config.mitigations.plan_expiry_s),
        notes=(f"undo of {original.action} (plan {original.id})",),
        undoes=original.id,
    )
