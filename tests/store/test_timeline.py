"""The incident timeline: who did what when, in order, without secrets; typed rows (a kind and
its fields) and the legacy writer whose rows are converted like the migration converts them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from integrations.store import NotFound, Store
from tests.store.fixtures import FakeClock

VERDICT = {"step": "triage", "scenario": "escalations", "headline": "likely scenario B"}


async def test_events_in_time_order_then_recording_order(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    clock.advance(minutes=2)
    await store.append_event(incident.id, "bot", "verdict", VERDICT)
    await store.append_event(incident.id, "U42", "command", {"verb": "diagnose", "text": "diagnose t1 escalations"})
    # reported late: happened before the triage finished
    await store.append_event(
        incident.id, "U7", "note", {"text": "customer called", "author": "U7"}, at=clock.now - timedelta(minutes=1)
    )
    events = await store.timeline(incident.id)
    assert [e.kind for e in events] == ["incident.opened", "note", "verdict", "command"]
    assert events[2].data == VERDICT and (events[2].text, events[2].details) == (None, {})
    assert [e.kind for e in await store.timeline(incident.id, limit=2)] == ["incident.opened", "note"]
    assert (await store.get(incident.id)).updated_at == clock.now  # a late event does not move it back


async def test_the_store_records_its_own_changes_as_typed_events(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach", severity="P1", actor="U1", source="command")
    clock.advance(minutes=1)
    await store.set_state(incident.id, "resolved", actor="U1", reason="rolled back")
    opened, resolved = await store.timeline(incident.id)
    assert (opened.kind, opened.actor, opened.data) == (
        "incident.opened",
        "U1",
        {"title": "breach", "severity": "P1", "tenants": ["t1"], "source": "command"},
    )
    assert (resolved.kind, resolved.data) == (
        "incident.state",
        {"state": "resolved", "previous": "open", "reason": "rolled back"},
    )


async def test_concurrent_events_are_all_kept(store: Store, replica: Store) -> None:
    incident, _ = await store.open_or_get_incident("t2", title="breach")
    await asyncio.gather(
        *(
            s.append_event(incident.id, "bot", "note", {"text": f"probe {i}", "author": "bot"})
            for i, s in enumerate([store, replica] * 15)
        )
    )
    texts = {e.data["text"] for e in await store.timeline(incident.id) if e.kind == "note"}
    assert texts == {f"probe {i}" for i in range(30)}


async def test_last_event_of_each_incident(store: Store, clock: FakeClock) -> None:
    a, _ = await store.open_or_get_incident("t3", title="breach")
    b, _ = await store.open_or_get_incident("t4", title="breach")
    clock.advance(seconds=5)
    await store.append_event(a.id, "U1", "mitigation.resumed", {"plan_id": "p1"})
    last = await store.last_events([a.id, b.id])
    assert last[a.id].kind == "mitigation.resumed" and last[b.id].kind == "incident.opened"
    assert await store.last_events([]) == {}


async def test_secret_values_never_reach_the_database(store: Store) -> None:
    incident, _ = await store.open_or_get_incident("t5", title="breach")
    await store.append_event(
        incident.id,
        "U1",
        "command",
        {"verb": "triage", "text": "ran with token xoxb-1234567890-abcdef", "nested": [{"client_secret": "s"}]},
    )
    await store.add_event(
        incident.id,
        "U1",
        "probe",
        "ran with token xoxb-1234567890-abcdef",
        {"secret": "tenant-t5-signing", "password": "hunter2", "nested": [{"client_secret": "s"}]},
    )
    typed, legacy = (await store.timeline(incident.id))[1:]
    assert typed.data == {
        "verb": "triage",
        "text": "ran with token [redacted]",
        "nested": [{"client_secret": "[redacted]"}],
    }
    assert "xoxb-1234567890" not in (legacy.text or "") and "xoxb-1234567890" not in str(legacy.data)
    assert legacy.details == {
        "secret": "tenant-t5-signing",
        "password": "[redacted]",
        "nested": [{"client_secret": "[redacted]"}],
    }


async def test_event_on_missing_incident(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.append_event(10_000, "bot", "note", {"text": "nobody home", "author": "bot"})
    with pytest.raises(NotFound):
        await store.add_event(10_000, "bot", "note", "nobody home")


async def test_data_with_datetimes_and_sets_are_stored_readably(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t6", title="breach")
    await store.append_event(incident.id, "bot", "silence.created", {"ends_at": clock.now, "tenants": ("a", "b")})
    event = (await store.timeline(incident.id))[-1]
    assert event.data == {"ends_at": clock.now.isoformat(), "tenants": ["a", "b"]}


async def test_legacy_writer_stores_the_typed_event_its_details_carry(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t7", title="breach")
    plan = {
        "id": "p7",
        "tenant": "t7",
        "action": "quota",
        "objects": [
            {
                "ref": {"kind": "ConfigMap", "namespace": "lba", "name": "tenant-t7"},
                "resource_version": "12",
                "changes": [{"key": "token_rate", "before": "100", "after": "200"}],
            }
        ],
        "restart": {"kind": "Deployment", "namespace": "lba", "name": "backend"},
        "needs_second_approver": False,
        "expires_at": "2026-03-01T12:10:00Z",
        "undoes": None,
    }
    await store.keys.put("plan:p7", {"plan": plan, "incident": incident.id})
    await store.add_event(incident.id, "U1", "mitigation.planned", "quota: …", {"plan_id": "p7", "dry_run": False})
    changes = [{"object": "configmap/tenant-t7 (namespace lba)", "key": "token_rate", "before": "100", "after": "200"}]
    await store.add_event(
        incident.id,
        "U2",
        "mitigation.applied",
        "quota applied, confirmed by <@U2>",
        {"plan_id": "p7", "changes": changes, "confirmed_by": "U2"},
    )
    await store.add_event(incident.id, "bot", "check.failed", ":x: SLO check 1/2", {"n": 1, "of": 2, "plan_id": "p7"})
    await store.add_event(incident.id, "U3", "mitigation.expired", "plan p8 expired")  # no details to type it by
    planned, applied, check, expired = (await store.timeline(incident.id))[1:]
    change = {"object": "configmap/tenant-t7", "namespace": "lba", "key": "token_rate", "before": "100", "after": "200"}
    assert (planned.kind, planned.data["action"], planned.data["changes"]) == ("mitigation.planned", "quota", [change])
    assert planned.data["restart"] == "deployment/backend" and planned.text == "quota: …"
    assert (applied.kind, applied.data["changes"], applied.data["confirmed_by"]) == (
        "mitigation.applied",
        [change],
        "U2",
    )
    assert (check.kind, check.data["ok"], check.data["n"], check.data["plan_id"]) == ("check", False, 1, "p7")
    assert (expired.kind, expired.data) == ("legacy", {"legacy_kind": "mitigation.expired", "text": "plan p8 expired"})
    assert expired.details == {}
