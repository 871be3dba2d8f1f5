"""The Grafana client against the sandbox stand-in, which checks requests as Grafana does: the
bearer token, the body's field types, a non-empty text. The RESOLVED annotation lands on the
tenant dashboard with the breach's span and tags; no error message carries the token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commands.comms import annotation, load_facts, stakeholder_resolved
from commands.config import Comms
from integrations.errors import BackendError
from integrations.grafana import Grafana
from sandbox.grafana import GrafanaStandIn
from sandbox.prom.process import free_port
from tests.commands.comms_script import BREACH, RESOLVED, TENANT, script_incident, sqlite_store

TOKEN = "glsa_test-token-0123456789abcdef"
START = datetime(2031, 5, 4, 9, 58, tzinfo=UTC)


@pytest.fixture
async def grafana() -> AsyncIterator[GrafanaStandIn]:
    async with GrafanaStandIn(TOKEN, dashboards=["flk-tenant-health", "other-board"]) as stand_in:
        yield stand_in


@pytest.fixture
async def client(grafana: GrafanaStandIn) -> AsyncIterator[Grafana]:
    c = Grafana(grafana.url, TOKEN)
    yield c
    await c.close()


async def post(grafana: GrafanaStandIn, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{grafana.url}/api/annotations", data=data, headers={**headers, "Content-Type": "application/json"}
        ) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Unauthorized"),
        ({"Authorization": "Bearer wrong"}, "Invalid API key"),
        ({"Authorization": TOKEN}, "Invalid API key"),
    ],
)
async def test_stand_in_refuses_missing_or_wrong_tokens(
    grafana: GrafanaStandIn, headers: dict[str, str], message: str
) -> None:
    assert await post(grafana, {"text": "x"}, headers) == (401, {"message": message})
    assert grafana.annotations == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "bad request data"),
        ([1, 2], "bad request data"),
        ({"text": 5}, "bad request data"),
        ({"text": "x", "time": "1700000000000"}, "bad request data"),
        ({"text": "x", "time": 1.5}, "bad request data"),
        ({"text": "x", "tags": "a b"}, "bad request data"),
        ({"text": "x", "tags": [1]}, "bad request data"),
        ({"text": "x", "panelId": True}, "bad request data"),
        ({"text": ""}, "Failed to save annotation"),
        ({"tags": ["a"]}, "Failed to save annotation"),
        (None, "Failed to save annotation"),
    ],
)
async def test_stand_in_refuses_malformed_bodies(grafana: GrafanaStandIn, body: Any, message: str) -> None:
    assert await post(grafana, body) == (400, {"message": message})
    assert grafana.annotations == []


async def test_annotation_is_stored_and_read_back(grafana: GrafanaStandIn, client: Grafana) -> None:
    end = START + timedelta(hours=1, minutes=23, seconds=30)
    first = await client.annotate(
        "SLO breach - Root cause: x - Mitigation: y",
        start=START,
        end=end,
        tags=["flk", "tenant:t-blue"],
        dashboard_uid="flk-tenant-health",
    )
    second = await client.annotate("note", start=end, tags=["flk"], dashboard_uid="other-board", panel_id=4)
    assert (first, second) == (1, 2)
    stored = grafana.annotations[0]
    assert (stored.dashboard_uid, stored.dashboard_id, stored.time, stored.time_end, stored.tags) == (
        "flk-tenant-health",
        1,
        1935655080000,
        1935655080000 + 5010_000,
        ["flk", "tenant:t-blue"],
    )
    listed = await client.annotations(dashboard_uid="flk-tenant-health")
    assert [(a["id"], a["text"], a["time"], a["timeEnd"]) for a in listed] == [
        (1, "SLO breach - Root cause: x - Mitigation: y", stored.time, stored.time_end)
    ]
    assert [a["id"] for a in await client.annotations(tags=["flk"])] == [2, 1]  # newest first
    assert [a["id"] for a in await client.annotations(tags=["flk", "tenant:t-blue"])] == [1]
    assert [a["id"] for a in await client.annotations(start=end + timedelta(seconds=1))] == []
    assert (await client.annotations(dashboard_uid="other-board"))[0]["panelId"] == 4


async def test_unknown_dashboard_uid_becomes_an_organisation_annotation(
    grafana: GrafanaStandIn, client: Grafana
) -> None:
    await client.annotate("x", start=START, dashboard_uid="no-such-board")
    (listed,) = await client.annotations()
    assert (listed["dashboardId"], listed["dashboardUID"]) == (0, None)


async def test_client_errors_name_the_cause_never_the_token(grafana: GrafanaStandIn) -> None:
    wrong = Grafana(grafana.url, "another-secret-value-123")
    try:
        with pytest.raises(BackendError) as caught:
            await wrong.annotate("x", start=START)
        assert str(caught.value) == "Grafana: the API token was refused (HTTP 401)"
        assert "another-secret-value-123" not in repr(caught.value)
    finally:
        await wrong.close()
    right = Grafana(grafana.url, TOKEN)
    try:
        grafana.fail_with = 503
        with pytest.raises(BackendError, match=r"^Grafana: /api/annotations answered HTTP 503"):
            await right.annotate("x", start=START)
        grafana.fail_with = None
        with pytest.raises(BackendError, match="Failed to save annotation"):
            await right.annotate("", start=START)
    finally:
        await right.close()
    down = Grafana(f"http://127.0.0.1:{free_port()}", TOKEN, timeout_s=1)
    try:
        with pytest.raises(BackendError, match="cannot reach") as caught:
            await down.annotate("x", start=START)
        assert TOKEN not in str(caught.value)
    finally:
        await down.close()


async def test_resolved_incident_annotation_on_the_tenant_dashboard(
    grafana: GrafanaStandIn, client: Grafana, tmp_path: Path
) -> None:
    comms = Comms()
    async with sqlite_store(tmp_path) as (store, clock):
        incident_id = await script_incident(store, clock)
        facts = await load_facts(store, incident_id, now=RESOLVED)
    note = annotation(facts, comms, stakeholder_resolved(facts, comms))
    await client.annotate(
        note.text, start=note.start, end=note.end, tags=note.tags, dashboard_uid=comms.grafana_dashboard_uid
    )
    (stored,) = grafana.annotations
    assert stored.dashboard_uid == "flk-tenant-health"
    assert (stored.time, stored.time_end) == (int(BREACH.timestamp() * 1000), int(RESOLVED.timestamp() * 1000))
    assert stored.tags == ["flk", "slo-breach", f"tenant:{TENANT}", f"incident:{incident_id}"]
    assert stored.text.startswith("SLO breach - Root cause: scenario D · per-tenant policy misconfiguration: ")
    assert " - Mitigation: rollback-policy on configmap/tenant-t-blue (policy_version v9 → v8)" in stored.text
