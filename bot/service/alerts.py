"""`POST /alerts/alertmanager`: FLKTenantSLOBreach opens (or finds) the tenant's incident, posts
its thread and queues the triage. Many tenants at once open one isolation-breach incident."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.service.logs import bind
from bot.service.telemetry import ALERTS
from bot.slack.incidents import IncidentThreads
from commands.tenants import well_formed
from commands.timeline import append
from commands.timeline.events import AlertNotified
from integrations.store import AlertIn, Incident, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass
class Batch:
    firing: list[AlertIn] = field(default_factory=list)
    resolved: list[AlertIn] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: str | None) -> float | None:
    """An annotation's number (Alertmanager sends text); None when it is not a finite one."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_batch(body: Any, alert_name: str) -> Batch:
    """Validate a webhook body (payload version 4); raise ValueError with the reason if unusable."""
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    if str(body.get("version")) != "4":
        raise ValueError(f"expected Alertmanager webhook payload version 4, got {str(body.get('version'))[:10]!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("missing 'alerts' list")
    batch = Batch()
    for raw in alerts:
        labels = raw.get("labels") if isinstance(raw, dict) else None
        if not isinstance(labels, dict) or labels.get("alertname") != alert_name:
            batch.skipped.append("not " + alert_name)
            continue
        tenant = labels.get("tenant_id")
        if not isinstance(tenant, str) or not well_formed(tenant):
            batch.skipped.append("missing or invalid tenant_id")
            continue
        status = raw.get("status")
        starts = _time(raw.get("startsAt"))
        if status not in ("firing", "resolved") or starts is None:
            batch.skipped.append("bad status or startsAt")
            continue
        fingerprint = raw.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        alert = AlertIn(
            fingerprint=fingerprint[:64],
            tenant=tenant,
            status=status,
            starts_at=starts,
            ends_at=_time(raw.get("endsAt")),
            generator_url=raw.get("generatorURL") if isinstance(raw.get("generatorURL"), str) else None,
            labels={str(k): str(v) for k, v in labels.items()},
            annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
        )
        (batch.firing if status == "firing" else batch.resolved).append(alert)
    return batch


class AlertWebhook:
    def __init__(self, threads: IncidentThreads, token: str | None, *, threshold: int, window_s: float) -> None:
        self.threads = threads
        self.store = threads.store
        self._token = f"Bearer {token}".encode() if token else None
        self.threshold = threshold
        self.window = timedelta(seconds=window_s)

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if self._token is None or not hmac.compare_digest(given, self._token):
            ALERTS.labels(outcome="unauthorised").inc()
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:
            body = json.loads(await request.read())
            batch = parse_batch(body, self.threads.rt.config.alert_name)
        except ValueError as exc:
            ALERTS.labels(outcome="bad_request").inc()
            reason = "body is not JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return web.json_response({"error": reason}, status=400)
        for reason in batch.skipped:
            log.warning("alert skipped: %s", reason)
        ALERTS.labels(outcome="skipped").inc(len(batch.skipped))
        try:
            await self.process(batch)
        except StoreUnavailable:
            ALERTS.labels(outcome="store_unavailable").inc()
            # Alertmanager retries a failed delivery; nothing was half-done that a retry repeats.
            return web.json_response({"error": "incident store unavailable, retry later"}, status=503)
        ALERTS.labels(outcome="accepted").inc(len(batch.firing) + len(batch.resolved))
        self.threads.rt.kick_outbox()
        return web.json_response(
            {"firing": len(batch.firing), "resolved": len(batch.resolved), "skipped": len(batch.skipped)}
        )

    async def process(self, batch: Batch) -> None:
        isolation = await self._isolation_incident(batch.firing)
        for alert in batch.firing:
            if isolation is not None and alert.tenant in isolation.tenants:
                await self._record(isolation, alert)
                continue
            title = f"FLKTenantSLOBreach · {alert.tenant}"
            incident, created = await self.threads.open_for_tenant(alert.tenant, "alertmanager", title, source="alert")
            await self._record(incident, alert)
            if created:
                await self.threads.queue(
                    incident, "triage", {"tenant": alert.tenant, "actor": "bot"}, dedupe_key=f"triage:{incident.id}"
                )
        for alert in batch.resolved:
            incident = await self.store.find_open(alert.tenant)
            if incident is not None:
                await self._record(incident, alert)

    async def _record(self, incident: Incident, alert: AlertIn) -> None:
        # The request's task: the lines logged from here on name this alert's incident and tenant.
        bind(incident_id=incident.id, tenant_id=alert.tenant, user="alertmanager")
        update = await self.store.record_alert(incident.id, alert)
        if (update.new and alert.status == "firing") or update.status_changed:
            event = AlertNotified(
                kind=f"alert.{alert.status}",
                fingerprint=alert.fingerprint,
                tenant=alert.tenant,
                sli=alert.labels.get("sli", ""),
                value=_number(alert.annotations.get("value")),
                slo=_number(alert.annotations.get("slo")),
            )
            await append(self.store, incident.id, "alertmanager", event)
        # New, changed or repeated: the parent message shows it (a repeat only refreshes "last notification").
        if incident.thread_ts is not None:
            await self.store.outbox.enqueue("update_parent", {}, incident_id=incident.id)

    async def _isolation_incident(self, firing: list[AlertIn]) -> Incident | None:
        """The isolation incident these alerts belong to, opened when too many tenants start at once."""
        if not firing:
            return None
        fresh = []
        for alert in firing:
            if await self.store.find_open(alert.tenant) is None:
                fresh.append(alert.tenant)
        # Only the isolation incident: reading every open incident per webhook grew with the storm.
        current = next(iter(await self.store.open_incidents(kind="isolation")), None)
        if current is not None and not fresh:
            return current
        if not fresh:
            return None
        recent = {b.tenant for b in await self.store.recent_breach_starts(self.window)}
        starting = sorted(recent | set(fresh))
        if current is None and len(starting) <= self.threshold:
            return None
        tenants = starting if current is None else fresh
        title = f"Isolation breach: {len(starting)} tenants"
        incident, created = await self.store.open_isolation_incident(
            tenants, title=title, channel=self.threads.channel, actor="alertmanager"
        )
        if incident.thread_ts is None:
            await self.store.outbox.enqueue(
                "post_parent", {}, incident_id=incident.id, dedupe_key=f"parent:{incident.id}"
            )
        if created:
            await self.store.outbox.enqueue(
                "isolation_triage", {}, incident_id=incident.id, dedupe_key=f"triage:{incident.id}"
            )
        else:
            await self.store.outbox.enqueue("update_parent", {}, incident_id=incident.id)
        return incident
