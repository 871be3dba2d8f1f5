"""`POST /alerts/alertmanager`: FLKTenantSLOBreach opens (or finds) the tenant's incident, posts
its thread and queues the triage. Many tenants at once open one isolation-breach incident."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from bot.service.telemetry import ALERTS
from bot.slack.incidents import IncidentThreads
from commands.flows.alerts import AlertIntake, Batch
from commands.flows.jobs import JobQueue
from commands.tenants import well_formed
from commands.timestamps import parse_time
from integrations.store import AlertIn, StoreUnavailable

log = logging.getLogger(__name__)


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
        starts = parse_time(raw.get("startsAt"))
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
            ends_at=parse_time(raw.get("endsAt")),
            generator_url=raw.get("generatorURL") if isinstance(raw.get("generatorURL"), str) else None,
            labels={str(k): str(v) for k, v in labels.items()},
            annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
        )
        (batch.firing if status == "firing" else batch.resolved).append(alert)
    return batch


class AlertWebhook:
    """The HTTP side only: the bearer token, the body parsed into a ``Batch``; the intake decides."""

    def __init__(self, threads: IncidentThreads, token: str | None, *, threshold: int, window_s: float) -> None:
        self.threads = threads
        self._token = f"Bearer {token}".encode() if token else None
        jobs = JobQueue(threads.store, threads.rt.kick_jobs)
        self.intake = AlertIntake(threads.store, jobs, threads.opener, threshold=threshold, window_s=window_s)

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if self._token is None or not hmac.compare_digest(given, self._token):
            ALERTS.labels(outcome="unauthorised").inc()
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        cap = self.threads.rt.config.limits.alert_body_bytes
        raw = await request.content.read(cap + 1)
        if len(raw) > cap:
            ALERTS.labels(outcome="too_large").inc()
            return web.json_response({"error": f"body over {cap:,} bytes (limits.alert_body_bytes)"}, status=413)
        try:
            body = json.loads(raw)
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
        self.threads.rt.kick_jobs()
        return web.json_response(
            {"firing": len(batch.firing), "resolved": len(batch.resolved), "skipped": len(batch.skipped)}
        )

    async def process(self, batch: Batch) -> None:
        await self.intake.process(batch)
