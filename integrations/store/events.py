"""Timeline rows: written typed (``append``), or in the old shape converted by ``legacy``
(``append_legacy``), each moving its incident's ``updated_at``; and read back (``from_row``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.store.keys import stored_key
from integrations.store.legacy import LegacyRow, plan_key, typed
from integrations.store.records import TimelineEvent
from integrations.store.schema import UTCDateTime, idempotency, incidents, timeline
from integrations.store.scrub import scrub, scrub_text


def from_row(row: Row[Any]) -> TimelineEvent:
    m = row._mapping
    return TimelineEvent(
        id=m["id"],
        incident_id=m["incident_id"],
        at=m["at"],
        actor=m["actor"],
        kind=m["kind"],
        data=m["data"] or {},
        text=m["text"],
        details=m["details"] or {},
    )


async def insert(
    conn: AsyncConnection,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: str,
    data: dict[str, Any],
    text: str | None = None,
    details: dict[str, Any] | None = None,
) -> TimelineEvent:
    """One row, nothing else (the store's own events, written with the change they record)."""
    row = (
        await conn.execute(
            timeline.insert()
            .values(
                incident_id=incident_id,
                at=at,
                actor=actor,
                kind=kind,
                data=scrub(data),
                text=None if text is None else scrub_text(text),
                details=scrub(details or {}),
            )
            .returning(*timeline.c)
        )
    ).one()
    return from_row(row)


async def append(
    conn: AsyncConnection,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: str,
    data: dict[str, Any],
    text: str | None = None,
    details: dict[str, Any] | None = None,
) -> TimelineEvent:
    """A row, and the incident's ``updated_at`` moved to it (never back: an event may be reported late)."""
    event = await insert(conn, incident_id, at, actor, kind, data, text, details)
    ts, updated = literal(at, UTCDateTime()), incidents.c.updated_at
    await conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id)
        .values(updated_at=case((updated < ts, ts), else_=updated))
    )
    return event


async def append_legacy(
    conn: AsyncConnection,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: str,
    text: str,
    details: dict[str, Any],
) -> TimelineEvent:
    """A row in the old shape, stored as the typed event the migration's mapping makes of it;
    its text and details are kept beside it."""
    tenant = (await conn.execute(select(incidents.c.tenant).where(incidents.c.id == incident_id))).scalar_one_or_none()
    row = LegacyRow(kind, scrub_text(text), scrub(details), actor, tenant)
    key = plan_key(row)
    plan = None
    if key is not None:
        plan = (
            await conn.execute(select(idempotency.c.result).where(idempotency.c.key == stored_key(key)))
        ).scalar_one_or_none()
    new_kind, data = typed(row, plan)
    return await append(conn, incident_id, at, actor, new_kind, data, row.text, dict(row.details))
