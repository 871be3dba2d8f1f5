"""Alertmanager → incident → thread → triage, on SQLite and on the real PostgreSQL.

Alerts here are Alertmanager webhook bodies (payload version 4) posted over HTTP; the test with
the real Prometheus rule and the real Alertmanager is in test_alerts_e2e.py.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.postgres import Postgres
from sandbox.up import Sandbox
from tests.bot.harness import Harness, running

_names = itertools.count()


def new_tenant(prefix: str = "wh") -> str:
    return f"{prefix}-{next(_names)}-{datetime.now(UTC).strftime('%H%M%S')}"


def alert(
    tenant: str, *, status: str = "firing", sli: str = "escalations", value: str = "0.0410", age_min: float = 60
) -> dict[str, Any]:
    """A FLKTenantSLOBreach alert. Breaches started an hour ago by default: outside the isolation
    window, so that tenants of different tests never look like one storm."""
    started = (datetime.now(UTC) - timedelta(minutes=age_min)).isoformat().replace("+00:00", "Z")
    return {
        "status": status,
        "labels": {"alertname": "FLKTenantSLOBreach", "tenant_id": tenant, "severity": "P2", "sli": sli},
        "annotations": {"value": value, "slo": "0.02" if sli == "escalations" else "0.01"},
        "startsAt": started,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(UTC).isoformat(),
        "generatorURL": "http://prometheus.example/graph?g0.expr=x",
        "fingerprint": f"fp-{tenant}-{sli}",
    }


def body(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "flk", "groupKey": "{}", "alerts": list(alerts)}


async def send(h: Harness, payload: Any, *, token: str | None = "ok") -> tuple[int, Any]:
    secret = h.sandbox.env["FLK_ALERT_WEBHOOK_TOKEN"] if token == "ok" else token
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    data = payload if isinstance(payload, bytes) else None
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{h.bot.url}/alerts/alertmanager", json=None if data else payload, data=data, headers=headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def alerts_harness(
    request: pytest.FixtureRequest, sandbox: Sandbox, postgres: Postgres
) -> AsyncIterator[Harness]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-test-db-')) / 'alerts.sqlite'}"
    else:
        url = await postgres.create_database(f"alerts_{next(_names)}")
    async with running(sandbox, FLK_DATABASE_URL=url) as h:
        yield h


def parents(h: Harness, tenant: str) -> list:
    return [m for m in h.sandbox.slack.channel_messages(h.channel) if f"· {tenant}*" in m.all_text()]


async def test_a_firing_alert_opens_one_thread_with_its_triage(alerts_harness: Harness) -> None:
    h, tenant = alerts_harness, new_tenant()
    status, answer = await send(h, body(alert(tenant)))
    assert (status, answer["firing"]) == (200, 1)
    summary = await h.wait_summary(tenant)
    parent = h.parent(tenant)
    assert parent is not None
    text = parent.all_text()
    assert f"P2 · FLKTenantSLOBreach · {tenant}*" in text
    assert "escalation ratio 4.1% vs SLO 2%" in text
    assert "<http://prometheus.example/graph?g0.expr=x|alert>" in text
    assert f"var-tenant={tenant}|Tenant Health dashboard>" in text
    assert summary.thread_ts == parent.ts
    store = h.bot.rt.store  # type: ignore[union-attr]
    incident = await store.find_open(tenant)
    assert incident is not None

    async def kinds() -> list[str]:
        return [e.kind for e in await store.timeline(incident.id)]

    for _ in range(100):
        if "verdict" in await kinds():
            break
        await asyncio.sleep(0.05)
    assert (await kinds())[:2] == ["incident.opened", "alert.firing"]
    assert "verdict" in await kinds()


async def test_repeats_only_refresh_the_parent_and_resolved_updates_it(alerts_harness: Harness) -> None:
    h, tenant = alerts_harness, new_tenant()
    await send(h, body(alert(tenant)))
    await h.wait_summary(tenant)
    parent = h.parent(tenant)
    assert parent is not None
    edits = len(parent.edits)
    for _ in range(3):
        assert (await send(h, body(alert(tenant))))[0] == 200
    await h.sandbox.slack.wait_for(lambda: len(h.parent(tenant).edits) > edits)  # type: ignore[union-attr]
    assert len(parents(h, tenant)) == 1
    assert len(h.summaries(tenant)) == 1
    resolved = alert(tenant, status="resolved")
    assert (await send(h, body(resolved)))[0] == 200
    await h.sandbox.slack.wait_for(lambda: "alert resolved at" in h.parent(tenant).all_text())  # type: ignore[union-attr]
    incident = await h.bot.rt.store.find_open(tenant)  # type: ignore[union-attr]
    assert incident is not None and incident.state == "open"
    kinds = [e.kind for e in await h.bot.rt.store.timeline(incident.id)]  # type: ignore[union-attr]
    assert "alert.resolved" in kinds


async def test_the_same_webhook_twice_at_once_opens_one_incident(alerts_harness: Harness) -> None:
    h, tenant = alerts_harness, new_tenant()
    results = await asyncio.gather(*(send(h, body(alert(tenant))) for _ in range(4)))
    assert {status for status, _ in results} == {200}
    await h.wait_summary(tenant)
    await asyncio.sleep(0.5)
    assert len(parents(h, tenant)) == 1
    assert len(h.summaries(tenant)) == 1


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_401_and_stores_nothing(alerts_harness: Harness, token: str | None) -> None:
    h, tenant = alerts_harness, new_tenant()
    status, _ = await send(h, body(alert(tenant)), token=token)
    assert status == 401
    assert await h.bot.rt.store.find_open(tenant) is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json{", "body is not JSON"),
        ({"version": "3", "alerts": []}, "payload version 4"),
        ({"version": "4"}, "missing 'alerts' list"),
        ([1, 2], "not a JSON object"),
    ],
)
async def test_bad_bodies_are_400_with_the_reason(alerts_harness: Harness, payload: Any, reason: str) -> None:
    status, answer = await send(alerts_harness, payload)
    assert status == 400
    assert reason in answer["error"]


async def test_an_invalid_tenant_is_skipped_and_the_rest_of_the_batch_handled(alerts_harness: Harness) -> None:
    h, good = alerts_harness, new_tenant()
    bad = alert("x")
    bad["labels"]["tenant_id"] = 'acme"} or vector(1)'
    missing = alert("y")
    del missing["labels"]["tenant_id"]
    status, answer = await send(h, body(bad, alert(good), missing))
    assert status == 200
    assert (answer["firing"], answer["skipped"]) == (1, 2)
    await h.wait_summary(good)


async def test_a_storm_of_breaches_opens_one_isolation_incident(alerts_harness: Harness) -> None:
    h = alerts_harness
    tenants = [new_tenant("storm") for _ in range(4)]
    before = len(h.sandbox.slack.channel_messages(h.channel))
    status, _ = await send(h, body(*(alert(t, age_min=1) for t in tenants)))
    assert status == 200
    store = h.bot.rt.store
    assert store is not None

    def isolation_parent() -> Any:
        found = [m for m in h.sandbox.slack.channel_messages(h.channel)[before:] if "Isolation breach" in m.all_text()]
        return found[0] if found else None

    parent = await h.sandbox.slack.wait_for(isolation_parent, timeout=20)
    for tenant in tenants:
        assert tenant in parent.all_text()
        assert parents(h, tenant) == []
    incident = await store.find_open(tenants[0])
    assert incident is not None and incident.kind == "isolation" and set(incident.tenants) == set(tenants)
    await h.sandbox.slack.wait_for(
        lambda: any("Isolation triage" in m.all_text() for m in h.sandbox.slack.thread(h.channel, parent.ts)),
        timeout=20,
    )
    await store.set_state(incident.id, "resolved", actor="test")
