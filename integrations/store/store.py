"""The incident store: incidents, their alerts and timeline (idempotency keys: ``keys``).

Every method is one short transaction. Races between replicas are settled by the
database (unique indexes + ``ON CONFLICT``), never by a check-then-act in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Row, case, exc, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from integrations.store import events
from integrations.store.alert_rows import AlertRows
from integrations.store.engine import Clock, Db, create_engine, upgrade, utcnow
from integrations.store.errors import IncidentConflict, NotFound
from integrations.store.keys import Keys
from integrations.store.plans import Plans
from integrations.store.queues import Jobs
from integrations.store.records import (
    INCIDENT_STATES,
    Incident,
    IncidentState,
)
from integrations.store.schema import incidents
from integrations.store.scrub import scrub
from integrations.store.timeline_rows import TimelineRows

# Re-reads after losing an insert race; more means incidents are resolved as fast as they open.
_RACE_RETRIES = 5
_UNSET: Any = object()


def _incident(row: Row[Any]) -> Incident:
    m = row._mapping
    return Incident(
        id=m["id"],
        kind=m["kind"],
        tenant=m["tenant"],
        tenants=tuple(m["tenants"] or ()),
        severity=m["severity"],
        title=m["title"],
        state=m["state"],
        channel=m["channel"],
        thread_ts=m["thread_ts"],
        scenario=m["scenario"],
        sli_summary=m["sli_summary"],
        opened_at=m["opened_at"],
        updated_at=m["updated_at"],
        resolved_at=m["resolved_at"],
        first_alert_at=m["first_alert_at"],
        last_alert_at=m["last_alert_at"],
    )


_unresolved = incidents.c.state != "resolved"


class Store(TimelineRows, AlertRows):
    """Async access to the incident database. Build it with ``await Store.connect(url)``."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow, job_max_attempts: int = 20) -> None:
        self._db = Db(engine, clock)
        self.jobs = Jobs(self._db, max_attempts=job_max_attempts)
        self.keys = Keys(self._db)
        self.plans = Plans(self._db)

    @classmethod
    async def connect(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        clock: Clock = utcnow,
        job_max_attempts: int = 20,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        busy_timeout: float = 10.0,
    ) -> Store:
        """Open the database at ``url`` (SQLite default file when empty) and upgrade its schema.

        ``connect_timeout``: PostgreSQL connect and pool wait; ``busy_timeout``: SQLite lock wait.
        """
        engine = create_engine(url, pool_size=pool_size, connect_timeout=connect_timeout, busy_timeout=busy_timeout)
        try:
            if migrate:
                await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock, job_max_attempts=job_max_attempts)

    @property
    def engine(self) -> AsyncEngine:
        return self._db.engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    async def close(self) -> None:
        await self._db.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def migrate(self) -> None:
        """Upgrade the schema to head (for a bot that started while the database was down)."""
        await upgrade(self._db.engine)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""
        async with self._db.read() as conn:
            await conn.execute(select(1))

    # -- incidents ------------------------------------------------------------------

    async def open_or_get_incident(
        self,
        tenant: str,
        *,
        title: str,
        severity: str = "P2",
        channel: str | None = None,
        sli_summary: dict[str, Any] | None = None,
        scenario: str | None = None,
        actor: str = "alertmanager",
        source: str = "alert",
        at: datetime | None = None,
    ) -> tuple[Incident, bool]:
        """The unresolved incident covering ``tenant`` (its own, or an isolation incident that
        lists it), or a new one. ``created`` is True for exactly one of any number of
        concurrent callers, across processes. ``source``: what opened it (``alert``, ``command``),
        recorded on its ``incident.opened`` event."""
        now = at or self._db.clock()
        values = {
            "kind": "tenant",
            "tenant": tenant,
            "tenants": [tenant],
            "severity": severity,
            "title": title,
            "state": "open",
            "channel": channel,
            "scenario": scenario,
            "sli_summary": scrub(sli_summary),
            "opened_at": now,
            "updated_at": now,
        }
        for _ in range(_RACE_RETRIES):
            async with self._db.write() as conn:
                existing = await self._open_covering(conn, tenant)
                if existing is not None:
                    return existing, False
                row = (
                    await conn.execute(
                        self._db.insert(incidents).values(values).on_conflict_do_nothing().returning(*incidents.c)
                    )
                ).first()
                if row is not None:
                    opened = {"title": title, "severity": severity, "tenants": [tenant], "source": source}
                    await events.insert(conn, row.id, now, actor, "incident.opened", opened)
                    return _incident(row), True
                # Another replica's insert won between our read and write; it is committed now.
                existing = await self._open_covering(conn, tenant)
                if existing is not None:
                    return existing, False
        raise IncidentConflict(f"incident for tenant {tenant!r} opened and resolved too often at once")

    async def open_isolation_incident(
        self,
        tenants: Iterable[str],
        *,
        title: str,
        severity: str = "P2",
        channel: str | None = None,
        sli_summary: dict[str, Any] | None = None,
        actor: str = "alertmanager",
        at: datetime | None = None,
    ) -> tuple[Incident, bool]:
        """The one unresolved isolation incident, created or extended by ``tenants``."""
        wanted = list(dict.fromkeys(tenants))
        if not wanted:
            raise ValueError("an isolation incident needs at least one tenant")
        now = at or self._db.clock()
        values = {
            "kind": "isolation",
            "tenant": None,
            "tenants": wanted,
            "severity": severity,
            "title": title,
            "state": "open",
            "channel": channel,
            "sli_summary": scrub(sli_summary),
            "opened_at": now,
            "updated_at": now,
        }
        for _ in range(_RACE_RETRIES):
            async with self._db.write() as conn:
                row = (
                    await conn.execute(
                        self._db.insert(incidents).values(values).on_conflict_do_nothing().returning(*incidents.c)
                    )
                ).first()
                if row is not None:
                    opened = {"title": title, "severity": severity, "tenants": wanted, "source": "isolation"}
                    await events.insert(conn, row.id, now, actor, "incident.opened", opened)
                    return _incident(row), True
                current = (
                    await conn.execute(
                        select(incidents).where(incidents.c.kind == "isolation", _unresolved).with_for_update()
                    )
                ).first()
                if current is None:
                    continue  # resolved meanwhile: try to open a new one
                added = [t for t in wanted if t not in current.tenants]
                if not added:
                    return _incident(current), False
                row = (
                    await conn.execute(
                        update(incidents)
                        .where(incidents.c.id == current.id)
                        .values(tenants=[*current.tenants, *added], updated_at=now)
                        .returning(*incidents.c)
                    )
                ).one()
                await events.insert(conn, row.id, now, actor, "incident.tenants_added", {"tenants": added})
                return _incident(row), False
        raise IncidentConflict("isolation incident opened and resolved too often at once")

    async def get(self, incident_id: int) -> Incident:
        async with self._db.read() as conn:
            row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return _incident(row)

    async def find_by_thread(self, channel: str, thread_ts: str) -> Incident | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(incidents).where(incidents.c.channel == channel, incidents.c.thread_ts == thread_ts)
                )
            ).first()
        return None if row is None else _incident(row)

    async def find_open(self, tenant: str) -> Incident | None:
        """The unresolved incident covering ``tenant``, if any."""
        async with self._db.read() as conn:
            return await self._open_covering(conn, tenant)

    async def latest_for_tenant(self, tenant: str) -> Incident | None:
        """The tenant's open incident, else its most recently resolved one (an RCA comes after)."""
        open_first = case((_unresolved, 0), else_=1)
        query = (
            select(incidents)
            .where(incidents.c.tenant == tenant)
            .order_by(open_first, incidents.c.resolved_at.desc(), incidents.c.id.desc())
            .limit(1)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _incident(row)

    async def tenant_incidents(self, tenant: str, within: timedelta, *, limit: int = 20) -> list[Incident]:
        """The tenant's incidents opened within ``within`` of now, newest first (open ones included)."""
        query = (
            select(incidents)
            .where(incidents.c.tenant == tenant, incidents.c.opened_at >= self._db.clock() - within)
            .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [_incident(row) for row in await conn.execute(query)]

    async def open_incidents(self, *, kind: str | None = None) -> list[Incident]:
        """Unresolved incidents (of ``kind`` when given), oldest first."""
        query = select(incidents).where(_unresolved)
        if kind is not None:
            query = query.where(incidents.c.kind == kind)
        async with self._db.read() as conn:
            rows = await conn.execute(query.order_by(incidents.c.opened_at, incidents.c.id))
            return [_incident(r) for r in rows]

    async def set_state(
        self,
        incident_id: int,
        state: IncidentState,
        *,
        actor: str,
        reason: str = "",
        text: str | None = None,
        at: datetime | None = None,
    ) -> Incident:
        """Move an incident to ``state`` and record who did it and why (``reason``, plain text;
        ``text``: its legacy name, until the mitigation flow passes ``reason``). Reopening fails
        with ``IncidentConflict`` when the tenant already has another unresolved incident."""
        if state not in INCIDENT_STATES:
            raise ValueError(f"unknown incident state {state!r}; expected one of {', '.join(INCIDENT_STATES)}")
        now = at or self._db.clock()
        try:
            async with self._db.write() as conn:
                before = await self._locked(conn, incident_id)
                if before.state == state:
                    return _incident(before)
                row = (
                    await conn.execute(
                        update(incidents)
                        .where(incidents.c.id == incident_id)
                        .values(state=state, updated_at=now, resolved_at=now if state == "resolved" else None)
                        .returning(*incidents.c)
                    )
                ).one()
                change = {"state": state, "previous": before.state, "reason": reason or text or ""}
                await events.insert(conn, incident_id, now, actor, "incident.state", change)
                return _incident(row)
        except exc.IntegrityError:
            raise IncidentConflict(
                f"incident {incident_id} cannot be reopened: its tenant already has an unresolved incident"
            ) from None

    async def set_thread(self, incident_id: int, channel: str, thread_ts: str) -> Incident:
        return await self.update_incident(incident_id, channel=channel, thread_ts=thread_ts)

    async def update_incident(
        self,
        incident_id: int,
        *,
        title: str = _UNSET,
        severity: str = _UNSET,
        scenario: str | None = _UNSET,
        sli_summary: dict[str, Any] | None = _UNSET,
        channel: str = _UNSET,
        thread_ts: str = _UNSET,
    ) -> Incident:
        """Change the given fields (only those passed)."""
        given = {
            "title": title,
            "severity": severity,
            "scenario": scenario,
            "sli_summary": sli_summary,
            "channel": channel,
            "thread_ts": thread_ts,
        }
        values = {k: scrub(v) for k, v in given.items() if v is not _UNSET}
        values["updated_at"] = self._db.clock()
        try:
            async with self._db.write() as conn:
                row = (
                    await conn.execute(
                        update(incidents).where(incidents.c.id == incident_id).values(values).returning(*incidents.c)
                    )
                ).first()
        except exc.IntegrityError:
            raise IncidentConflict("that Slack thread already belongs to another incident") from None
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return _incident(row)

    # -- helpers --------------------------------------------------------------------

    async def _open_covering(self, conn: AsyncConnection, tenant: str) -> Incident | None:
        rows = (
            await conn.execute(
                select(incidents).where(_unresolved, (incidents.c.tenant == tenant) | (incidents.c.kind == "isolation"))
            )
        ).all()
        own = [r for r in rows if r.tenant == tenant]
        covering = own or [r for r in rows if r.kind == "isolation" and tenant in r.tenants]
        return _incident(covering[0]) if covering else None

    async def _locked(self, conn: AsyncConnection, incident_id: int) -> Row[Any]:
        row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id).with_for_update())).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return row
