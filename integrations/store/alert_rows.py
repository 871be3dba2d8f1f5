"""The incident store's alerts: each Alertmanager notification by fingerprint, and the breach
starts the isolation rule correlates across webhook calls and replicas."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, exc, func, literal, select, update

from integrations.store.engine import Db
from integrations.store.errors import NotFound
from integrations.store.records import Alert, AlertIn, AlertUpdate, BreachStart
from integrations.store.schema import UTCDateTime, alerts, incidents
from integrations.store.scrub import scrub, scrub_text


def _alert(row: Row[Any]) -> Alert:
    m = row._mapping
    return Alert(
        incident_id=m["incident_id"],
        fingerprint=m["fingerprint"],
        tenant=m["tenant"],
        status=m["status"],
        starts_at=m["starts_at"],
        ends_at=m["ends_at"],
        first_seen_at=m["first_seen_at"],
        last_seen_at=m["last_seen_at"],
        generator_url=m["generator_url"],
        labels=m["labels"],
        annotations=m["annotations"],
    )


class AlertRows:
    _db: Db

    async def record_alert(self, incident_id: int, alert: AlertIn) -> AlertUpdate:
        """Store an alert notification; ``new`` tells whether the fingerprint is new for the incident."""
        now = self._db.clock()
        fields = {
            "tenant": alert.tenant,
            "status": alert.status,
            "starts_at": alert.starts_at,
            "ends_at": alert.ends_at,
            "last_seen_at": now,
            "generator_url": scrub_text(alert.generator_url) if alert.generator_url else None,
            "labels": scrub(dict(alert.labels)),
            "annotations": scrub(dict(alert.annotations)),
        }
        key = (alerts.c.incident_id == incident_id, alerts.c.fingerprint == alert.fingerprint)
        try:
            async with self._db.write() as conn:
                row = (
                    await conn.execute(
                        self._db.insert(alerts)
                        .values(incident_id=incident_id, fingerprint=alert.fingerprint, first_seen_at=now, **fields)
                        .on_conflict_do_nothing(index_elements=["incident_id", "fingerprint"])
                        .returning(*alerts.c)
                    )
                ).first()
                previous = None
                if row is None:
                    previous = (await conn.execute(select(alerts.c.status).where(*key).with_for_update())).scalar_one()
                    row = (await conn.execute(update(alerts).where(*key).values(fields).returning(*alerts.c))).one()
                first, started = incidents.c.first_alert_at, literal(alert.starts_at, UTCDateTime())
                await conn.execute(
                    update(incidents)
                    .where(incidents.c.id == incident_id)
                    .values(
                        first_alert_at=case((first.is_(None) | (first > started), started), else_=first),
                        last_alert_at=now,
                        updated_at=now,
                    )
                )
        except exc.IntegrityError:
            raise NotFound(f"no incident {incident_id}") from None
        return AlertUpdate(alert=_alert(row), new=previous is None, previous_status=previous)

    async def alerts(self, incident_id: int) -> list[Alert]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(alerts).where(alerts.c.incident_id == incident_id).order_by(alerts.c.starts_at, alerts.c.id)
            )
            return [_alert(r) for r in rows]

    async def recent_breach_starts(self, window: timedelta, *, now: datetime | None = None) -> list[BreachStart]:
        """Tenants whose alerts started within ``window`` before ``now``, earliest first
        (for isolation-breach correlation across webhook calls and replicas)."""
        since = (now or self._db.clock()) - window
        query = (
            select(
                alerts.c.tenant,
                func.min(alerts.c.starts_at).label("started_at"),
                func.min(alerts.c.incident_id).label("incident_id"),
            )
            .where(alerts.c.starts_at >= since)
            .group_by(alerts.c.tenant)
            .order_by(func.min(alerts.c.starts_at), alerts.c.tenant)
        )
        async with self._db.read() as conn:
            rows = await conn.execute(query)
            return [BreachStart(tenant=r.tenant, started_at=r.started_at, incident_id=r.incident_id) for r in rows]
