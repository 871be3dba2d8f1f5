"""The incident store's timeline: events appended (typed data, or the legacy shape) and read back
in the order they happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exc, func, select

from integrations.store import events
from integrations.store.engine import Db
from integrations.store.errors import NotFound
from integrations.store.records import TimelineEvent
from integrations.store.schema import timeline


class TimelineRows:
    _db: Db

    async def append_event(
        self, incident_id: int, actor: str, kind: str, data: dict[str, Any], *, at: datetime | None = None
    ) -> TimelineEvent:
        """Append an event to the incident's timeline: its ``kind`` and its fields (``data``, JSON), as
        ``commands.timeline.events`` defines them (``actor``: a Slack user id, ``bot`` or ``alertmanager``)."""
        now = at or self._db.clock()
        try:
            async with self._db.write() as conn:
                return await events.append(conn, incident_id, now, actor, kind, data)
        except exc.IntegrityError:
            raise NotFound(f"no incident {incident_id}") from None

    async def add_event(
        self,
        incident_id: int,
        actor: str,
        kind: str,
        text: str,
        details: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> TimelineEvent:
        """Legacy: append an event in the old shape (a kind, prose, loose ``details``), for the callers
        not typed yet (the mitigation flow). It is stored as the typed event ``legacy.typed`` makes
        of it (the migration's mapping), or as ``legacy`` with its text; use ``append_event``."""
        now = at or self._db.clock()
        try:
            async with self._db.write() as conn:
                return await events.append_legacy(conn, incident_id, now, actor, kind, text, details or {})
        except exc.IntegrityError:
            raise NotFound(f"no incident {incident_id}") from None

    async def timeline(self, incident_id: int, *, limit: int | None = None) -> list[TimelineEvent]:
        """Events in the order they happened (ties: the order they were recorded)."""
        query = (
            select(timeline)
            .where(timeline.c.incident_id == incident_id)
            .order_by(timeline.c.at, timeline.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [events.from_row(r) for r in await conn.execute(query)]

    async def last_events(self, incident_ids: Sequence[int]) -> dict[int, TimelineEvent]:
        """The latest event of each incident (for ``/flk incidents``)."""
        if not incident_ids:
            return {}
        rank = (
            func.row_number()
            .over(partition_by=timeline.c.incident_id, order_by=(timeline.c.at.desc(), timeline.c.id.desc()))
            .label("rank")
        )
        ranked = select(timeline, rank).where(timeline.c.incident_id.in_(incident_ids)).subquery()
        async with self._db.read() as conn:
            rows = await conn.execute(select(ranked).where(ranked.c.rank == 1))
            return {r.incident_id: events.from_row(r) for r in rows}
