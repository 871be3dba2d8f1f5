"""Silences against the real Alertmanager the sandbox runs: created for exactly the tenant's
FLKTenantSLOBreach (an alert of that tenant is muted, another tenant's is not), listed,
expired, recorded on the incident's timeline; failures are BackendErrors, never a traceback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commands.comms import expire_silences, open_silences, silence_matchers, silence_tenant
from commands.config import RunbookConfig
from commands.registry import UsageError
from commands.timeline import read_timeline
from commands.timeline.events import SilenceChanged
from integrations.alertmanager import Alertmanager
from integrations.errors import BackendError
from integrations.store import Store
from sandbox.prom.process import free_port
from sandbox.up import Sandbox

CONFIG = RunbookConfig()


def tenant() -> str:
    """A tenant of this test alone: the session's Alertmanager is shared."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def am(sandbox: Sandbox) -> AsyncIterator[Alertmanager]:
    client = Alertmanager(sandbox.alertmanager_url)
    yield client
    await client.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.connect(f"sqlite:///{tmp_path / 'am.sqlite'}") as s:
        yield s


async def raw(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> Any:
    """Alertmanager's own answer, read without our client."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{sandbox.alertmanager_url}/api/v2{path}", **kwargs) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json(content_type=None)


async def fire(sandbox: Sandbox, *tenants: str) -> None:
    now = datetime.now(UTC)
    alerts = [
        {
            "labels": {"alertname": CONFIG.alert_name, "tenant_id": t, "sli": "escalations"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }
        for t in tenants
    ]
    await raw(sandbox, "POST", "/alerts", json=alerts)


async def alert_states(sandbox: Sandbox, tenants: set[str]) -> dict[str, tuple[str, list[str]]]:
    alerts = await raw(sandbox, "GET", "/alerts", params={"silenced": "true", "inhibited": "true"})
    return {
        a["labels"]["tenant_id"]: (a["status"]["state"], a["status"]["silencedBy"])
        for a in alerts
        if a["labels"].get("tenant_id") in tenants
    }


async def test_silence_mutes_exactly_the_tenant_and_expires(sandbox: Sandbox, am: Alertmanager) -> None:
    mine, other = tenant(), tenant()
    now = datetime.now(UTC)
    silence_id = await am.create_silence(
        silence_matchers(CONFIG, mine),
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        created_by="U_ALICE",
        comment="rollback under way",
    )
    listed = await raw(sandbox, "GET", "/silences")
    ours = next(s for s in listed if s["id"] == silence_id)
    assert ours["status"]["state"] == "active"
    assert ours["createdBy"] == "U_ALICE" and ours["comment"] == "rollback under way"
    assert sorted((m["name"], m["value"], m["isEqual"], m["isRegex"]) for m in ours["matchers"]) == [
        ("alertname", "FLKTenantSLOBreach", True, False),
        ("tenant_id", mine, True, False),
    ]

    await fire(sandbox, mine, other)
    states = await alert_states(sandbox, {mine, other})
    for _ in range(50):  # Alertmanager marks alerts on its next pass
        if states.get(mine, ("", []))[0] == "suppressed" and other in states:
            break
        await asyncio.sleep(0.1)
        states = await alert_states(sandbox, {mine, other})
    assert states[mine] == ("suppressed", [silence_id])
    assert states[other] == ("active", [])

    found = await am.silences({"tenant_id": mine})
    assert [(s.id, s.matchers, s.state) for s in found] == [
        (silence_id, {"alertname": "FLKTenantSLOBreach", "tenant_id": mine}, "active")
    ]
    assert found[0].ends_at - found[0].starts_at == pytest.approx(timedelta(hours=2), abs=timedelta(seconds=1))
    assert await am.silences({"tenant_id": other}) == []

    assert await am.expire_silence(silence_id) is True
    assert (await raw(sandbox, "GET", f"/silence/{silence_id}"))["status"]["state"] == "expired"
    assert await am.expire_silence(silence_id) is True  # again: still fine
    assert await am.expire_silence(str(uuid.uuid4())) is False
    assert (await am.silence(silence_id)).state == "expired"  # type: ignore[union-attr]
    assert await am.silence(str(uuid.uuid4())) is None


async def test_refusals_are_backend_errors(am: Alertmanager) -> None:
    now = datetime.now(UTC)
    with pytest.raises(BackendError, match="start time must be before end time") as caught:
        await am.create_silence(
            {"tenant_id": "x"},
            starts_at=now,
            ends_at=now - timedelta(minutes=1),
            created_by="U_ALICE",
            comment="backwards",
        )
    assert caught.value.system == "Alertmanager" and "HTTP 400" in caught.value.reason
    with pytest.raises(BackendError, match="is not a silence id"):
        await am.expire_silence("../../-/reload")
    with pytest.raises(ValueError, match="at least one matcher"):
        await am.create_silence({}, starts_at=now, ends_at=now, created_by="x", comment="x")


async def test_unreachable_alertmanager_is_a_backend_error() -> None:
    down = Alertmanager(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    try:
        with pytest.raises(BackendError, match=r"^Alertmanager: cannot reach http://127\.0\.0\.1:\d+ "):
            await down.silences()
    finally:
        await down.close()


async def test_incident_silence_recorded_and_expired_on_resolve(
    sandbox: Sandbox, am: Alertmanager, store: Store
) -> None:
    mine = tenant()
    incident, _ = await store.open_or_get_incident(mine, title=f"FLKTenantSLOBreach · {mine}")
    created = await silence_tenant(store, am, CONFIG, incident, mine, 1800, "waiting for the 5m rate", "U_ALICE")
    assert (await raw(sandbox, "GET", f"/silence/{created.id}"))["comment"] == (
        f"waiting for the 5m rate (flk incident #{incident.id})"
    )
    entry = (await read_timeline(store, incident.id))[-1]
    assert (entry.actor, entry.event) == (
        "U_ALICE",
        SilenceChanged(
            kind="silence.created",
            silence_id=created.id,
            tenant=mine,
            reason="waiting for the 5m rate",
            ends_at=created.ends_at.isoformat(),
        ),
    )
    assert created.text.startswith(f"FLKTenantSLOBreach silenced for {mine} for 30 min (until ")
    assert open_silences(await read_timeline(store, incident.id)) == [created.id]

    # Alertmanager down at resolve: reported, nothing recorded, so a retry picks it up.
    down = Alertmanager(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    try:
        failed = await expire_silences(store, down, incident.id, "U_ALICE")
    finally:
        await down.close()
    assert failed.expired == [] and list(failed.failed) == [created.id]
    assert "cannot reach" in failed.failed[created.id]
    assert (await raw(sandbox, "GET", f"/silence/{created.id}"))["status"]["state"] == "active"

    done = await expire_silences(store, am, incident.id, "U_ALICE")
    assert (done.expired, done.unknown, done.failed) == ([created.id], [], {})
    assert (await raw(sandbox, "GET", f"/silence/{created.id}"))["status"]["state"] == "expired"
    assert open_silences(await read_timeline(store, incident.id)) == []
    expired = (await read_timeline(store, incident.id))[-1].event
    assert expired == SilenceChanged(kind="silence.expired", silence_id=created.id)
    again = await expire_silences(store, am, incident.id, "U_ALICE")
    assert (again.expired, again.unknown, again.failed) == ([], [], {})


async def test_silence_refused_outside_the_incident_or_above_the_maximum(am: Alertmanager, store: Store) -> None:
    mine = tenant()
    incident, _ = await store.open_or_get_incident(mine, title="t")
    with pytest.raises(UsageError, match="is not part of incident"):
        await silence_tenant(store, am, CONFIG, incident, "t-else", 600, "r", "U_ALICE")
    with pytest.raises(UsageError, match="at most 1 d, not 1 d 1 min"):
        await silence_tenant(store, am, CONFIG, incident, mine, 86460, "r", "U_ALICE")
    assert await am.silences({"tenant_id": mine}) == []
    assert [e.kind for e in await store.timeline(incident.id)] == ["incident.opened"]
