"""The incident timeline: who did what when, in order, without secrets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from integrations.store import NotFound, Store
from tests.store.fixtures import FakeClock


async def test_events_in_time_order_then_recording_order(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    clock.advance(minutes=2)
    await store.add_event(incident.id, "bot", "triage.finished", "likely scenario B", {"scenario": "B"})
    await store.add_event(incident.id, "U42", "command", "/flk diagnose t1 escalations")
    # reported late: happened before the triage finished
    await store.add_event(incident.id, "U7", "note", "customer called", at=clock.now - timedelta(minutes=1))
    events = await store.timeline(incident.id)
    assert [e.kind for e in events] == ["incident.opened", "note", "triage.finished", "command"]
    assert events[2].details == {"scenario": "B"} and events[3].details == {}
    assert [e.kind for e in await store.timeline(incident.id, limit=2)] == ["incident.opened", "note"]
    assert (await store.get(incident.id)).updated_at == clock.now  # a late event does not move it back


async def test_concurrent_events_are_all_kept(store: Store, replica: Store) -> None:
    incident, _ = await store.open_or_get_incident("t2", title="breach")
    await asyncio.gather(
        *(s.add_event(incident.id, "bot", "probe", f"probe {i}") for i, s in enumerate([store, replica] * 15))
    )
    texts = {e.text for e in await store.timeline(incident.id) if e.kind == "probe"}
    assert texts == {f"probe {i}" for i in range(30)}


async def test_last_event_of_each_incident(store: Store, clock: FakeClock) -> None:
    a, _ = await store.open_or_get_incident("t3", title="breach")
    b, _ = await store.open_or_get_incident("t4", title="breach")
    clock.advance(seconds=5)
    await store.add_event(a.id, "U1", "mitigation.applied", "degraded mode on")
    last = await store.last_events([a.id, b.id])
    assert last[a.id].kind == "mitigation.applied" and last[b.id].kind == "incident.opened"
    assert await store.last_events([]) == {}


async def test_secret_values_never_reach_the_database(store: Store) -> None:
    incident, _ = await store.open_or_get_incident("t5", title="breach")
    await store.add_event(
        incident.id,
        "U1",
        "command",
        "ran with token xoxb-1234567890-abcdef",
        {"secret": "tenant-t5-signing", "password": "hunter2", "nested": [{"client_secret": "s"}]},
    )
    event = (await store.timeline(incident.id))[-1]
    assert "xoxb-1234567890" not in event.text
    assert event.details == {
        "secret": "tenant-t5-signing",
        "password": "[redacted]",
        "nested": [{"client_secret": "[redacted]"}],
    }


async def test_event_on_missing_incident(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_event(10_000, "bot", "note", "nobody home")


async def test_details_with_datetimes_and_sets_are_stored_readably(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t6", title="breach")
    await store.add_event(
        incident.id, "bot", "check.scheduled", "verify at +5 min", {"due": clock.now, "tenants": ("a", "b")}
    )
    event = (await store.timeline(incident.id))[-1]
    assert event.details == {"due": clock.now.isoformat(), "tenants": ["a", "b"]}
