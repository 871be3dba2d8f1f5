"""Incidents: one unresolved incident per tenant, whatever the concurrency, on both backends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from integrations.store import IncidentConflict, NotFound, Store
from integrations.store.schema import incidents
from tests.store.fixtures import FakeClock


async def _unresolved_count(store: Store, tenant: str) -> int:
    async with store.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(incidents)
                .where(incidents.c.tenant == tenant, incidents.c.state != "resolved")
            )
        ).scalar_one()


async def test_open_then_get(store: Store, clock: FakeClock) -> None:
    first, created = await store.open_or_get_incident(
        "t-a", title="escalations 5% > 2%", channel="C1", sli_summary={"sli": "escalations", "value": 0.05}
    )
    assert created
    assert (first.kind, first.tenant, first.tenants, first.state, first.severity) == (
        "tenant",
        "t-a",
        ("t-a",),
        "open",
        "P2",
    )
    assert first.opened_at == clock.now and first.sli_summary == {"sli": "escalations", "value": 0.05}
    clock.advance(minutes=1)
    again, created = await store.open_or_get_incident("t-a", title="other title")
    assert not created and again == first
    events = await store.timeline(first.id)
    assert [(e.kind, e.actor) for e in events] == [("incident.opened", "alertmanager")]


async def test_concurrent_opens_on_two_replicas_make_one_incident(store: Store, replica: Store) -> None:
    calls = [(store if i % 2 else replica).open_or_get_incident("t-race", title=f"call {i}") for i in range(40)]
    results = await asyncio.gather(*calls)
    assert sum(created for _, created in results) == 1
    assert len({incident.id for incident, _ in results}) == 1
    assert await _unresolved_count(store, "t-race") == 1


async def test_concurrent_storm_over_many_tenants(store: Store, replica: Store) -> None:
    tenants = [f"t{i}" for i in range(12)]
    calls = [s.open_or_get_incident(t, title="breach") for t in tenants for s in (store, replica, store)]
    results = await asyncio.gather(*calls)
    by_tenant: dict[str, set[int]] = {}
    for incident, _ in results:
        by_tenant.setdefault(incident.tenant or "", set()).add(incident.id)
    assert all(len(ids) == 1 for ids in by_tenant.values()) and set(by_tenant) == set(tenants)
    assert sum(created for _, created in results) == len(tenants)


async def test_resolved_incident_is_not_reused(store: Store, clock: FakeClock) -> None:
    first, _ = await store.open_or_get_incident("t-b", title="breach")
    clock.advance(minutes=30)
    resolved = await store.set_state(first.id, "resolved", actor="U123", reason="fixed by rollback")
    assert resolved.state == "resolved" and resolved.resolved_at == clock.now
    second, created = await store.open_or_get_incident("t-b", title="breach again")
    assert created and second.id != first.id
    with pytest.raises(IncidentConflict):
        await store.set_state(first.id, "open", actor="U123")
    events = await store.timeline(first.id)
    assert events[-1].kind == "incident.state" and events[-1].actor == "U123"
    assert events[-1].data == {"state": "resolved", "previous": "open", "reason": "fixed by rollback"}


async def test_state_changes_and_bad_state(store: Store) -> None:
    incident, _ = await store.open_or_get_incident("t-c", title="breach")
    for state in ("mitigating", "verifying"):
        assert (await store.set_state(incident.id, state, actor="bot")).state == state
    assert (await store.set_state(incident.id, "verifying", actor="bot")).state == "verifying"
    kinds = [e.data["state"] for e in await store.timeline(incident.id) if e.kind == "incident.state"]
    assert kinds == ["mitigating", "verifying"]  # setting the same state twice records nothing
    with pytest.raises(ValueError, match="unknown incident state"):
        await store.set_state(incident.id, "closed", actor="bot")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await store.set_state(10_000, "resolved", actor="bot")
    with pytest.raises(NotFound):
        await store.get(10_000)


async def test_thread_lookup(store: Store) -> None:
    a, _ = await store.open_or_get_incident("t-d", title="breach")
    b, _ = await store.open_or_get_incident("t-e", title="breach")
    await store.set_thread(a.id, "CINC", "1700000000.000100")
    found = await store.find_by_thread("CINC", "1700000000.000100")
    assert found is not None and found.id == a.id and found.thread_ts == "1700000000.000100"
    assert await store.find_by_thread("CINC", "1700000000.999999") is None
    with pytest.raises(IncidentConflict):
        await store.set_thread(b.id, "CINC", "1700000000.000100")


async def test_update_only_given_fields(store: Store) -> None:
    incident, _ = await store.open_or_get_incident("t-f", title="breach", sli_summary={"value": 0.03})
    updated = await store.update_incident(incident.id, scenario="B")
    assert updated.scenario == "B" and updated.title == "breach" and updated.sli_summary == {"value": 0.03}
    cleared = await store.update_incident(incident.id, scenario=None)
    assert cleared.scenario is None
    with pytest.raises(NotFound):
        await store.update_incident(10_000, scenario="A")


async def test_open_incidents_oldest_first_without_resolved(store: Store, clock: FakeClock) -> None:
    ids = []
    for tenant in ("t-x", "t-y", "t-z"):
        ids.append((await store.open_or_get_incident(tenant, title="breach"))[0].id)
        clock.advance(seconds=10)
    await store.set_state(ids[1], "resolved", actor="U1")
    assert [i.id for i in await store.open_incidents()] == [ids[0], ids[2]]
    assert (await store.find_open("t-y")) is None
    found = await store.find_open("t-z")
    assert found is not None and found.id == ids[2]


async def test_isolation_incident_is_one_and_covers_its_tenants(store: Store, replica: Store) -> None:
    results = await asyncio.gather(
        *(
            s.open_isolation_incident(tenants, title="isolation breach")
            for s, tenants in [
                (store, ["t1", "t2", "t3", "t4"]),
                (replica, ["t3", "t4", "t5"]),
                (store, ["t5", "t6"]),
                (replica, ["t1"]),
            ]
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({i.id for i, _ in results}) == 1
    incident = await store.get(results[0][0].id)
    assert incident.kind == "isolation" and incident.tenant is None
    assert sorted(incident.tenants) == ["t1", "t2", "t3", "t4", "t5", "t6"]
    covering, created = await store.open_or_get_incident("t5", title="per-tenant")
    assert not created and covering.id == incident.id
    assert (await store.find_open("t6")) == covering
    listed = [
        t
        for e in await store.timeline(incident.id)
        if e.kind in ("incident.opened", "incident.tenants_added")
        for t in e.data["tenants"]
    ]
    assert sorted(listed) == sorted(incident.tenants)  # each tenant recorded once, when it joined
    with pytest.raises(ValueError):
        await store.open_isolation_incident([], title="nobody")


async def test_a_resolved_isolation_incident_makes_room_for_a_new_one(store: Store) -> None:
    first, _ = await store.open_isolation_incident(["a", "b"], title="isolation")
    await store.set_state(first.id, "resolved", actor="U1")
    second, created = await store.open_isolation_incident(["c"], title="isolation")
    assert created and second.id != first.id and second.tenants == ("c",)
    own, created = await store.open_or_get_incident("a", title="per tenant")
    assert created and own.kind == "tenant"
