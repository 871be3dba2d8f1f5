"""Alert fingerprints per incident, repeats, resolution, and breach starts for correlation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from integrations.store import AlertIn, NotFound, Store
from tests.store.fixtures import FakeClock


def _alert(
    clock: FakeClock,
    tenant: str,
    fingerprint: str,
    *,
    status: str = "firing",
    started_min_ago: float = 3,
    sli: str = "escalations",
) -> AlertIn:
    return AlertIn(
        fingerprint=fingerprint,
        tenant=tenant,
        status=status,  # type: ignore[arg-type]
        starts_at=clock.now - timedelta(minutes=started_min_ago),
        ends_at=clock.now if status == "resolved" else None,
        generator_url="http://prometheus/graph?g0.expr=x",
        labels={"tenant_id": tenant, "sli": sli},
        annotations={"value": "0.0500", "slo": "0.02"},
    )


async def test_new_then_repeat_then_resolved(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    first = await store.record_alert(incident.id, _alert(clock, "t1", "fp1"))
    assert first.new and first.previous_status is None and not first.status_changed
    assert first.alert.first_seen_at == first.alert.last_seen_at == clock.now
    clock.advance(minutes=4)
    repeat = await store.record_alert(incident.id, _alert(clock, "t1", "fp1", started_min_ago=7))
    assert not repeat.new and repeat.previous_status == "firing" and not repeat.status_changed
    assert repeat.alert.last_seen_at == clock.now and repeat.alert.first_seen_at < clock.now
    clock.advance(minutes=4)
    resolved = await store.record_alert(incident.id, _alert(clock, "t1", "fp1", status="resolved"))
    assert resolved.status_changed and resolved.alert.status == "resolved" and resolved.alert.ends_at == clock.now
    other = await store.record_alert(incident.id, _alert(clock, "t1", "fp2", sli="signature_errors"))
    assert other.new
    assert [(a.fingerprint, a.status) for a in await store.alerts(incident.id)] == [
        ("fp1", "resolved"),
        ("fp2", "firing"),
    ]
    stored = await store.get(incident.id)
    assert stored.first_alert_at == clock.now - timedelta(minutes=11)  # earliest start seen
    assert stored.last_alert_at == clock.now


async def test_same_notification_twice_at_once_is_new_once(store: Store, replica: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t2", title="breach")
    alert = _alert(clock, "t2", "fp-dup")
    results = await asyncio.gather(*(s.record_alert(incident.id, alert) for s in (store, replica) * 10))
    assert sum(r.new for r in results) == 1
    assert len(await store.alerts(incident.id)) == 1


async def test_alert_on_missing_incident(store: Store, clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        await store.record_alert(10_000, _alert(clock, "t3", "fp"))


async def test_secrets_in_labels_are_not_stored(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t4", title="breach")
    leaky = AlertIn(
        fingerprint="fp",
        tenant="t4",
        status="firing",
        starts_at=clock.now,
        labels={"tenant_id": "t4", "api_key": "k-123456789"},
        annotations={"description": "header was Bearer abcdefghijklmnop"},
    )
    update = await store.record_alert(incident.id, leaky)
    assert update.alert.labels == {"tenant_id": "t4", "api_key": "[redacted]"}
    assert "abcdefghijklmnop" not in update.alert.annotations["description"]


async def test_recent_breach_starts_counts_tenants_in_the_window(store: Store, clock: FakeClock) -> None:
    starts = {"old": 20, "a": 4, "b": 3, "c": 1}
    for tenant, minutes_ago in starts.items():
        incident, _ = await store.open_or_get_incident(tenant, title="breach")
        await store.record_alert(incident.id, _alert(clock, tenant, f"fp-{tenant}", started_min_ago=minutes_ago))
    # a second SLI for tenant a, started earlier but still in the window: a counts once, by its earliest start
    a = await store.find_open("a")
    assert a is not None
    await store.record_alert(a.id, _alert(clock, "a", "fp-a2", started_min_ago=4.5, sli="signature_errors"))
    recent = await store.recent_breach_starts(timedelta(minutes=5))
    assert [b.tenant for b in recent] == ["a", "b", "c"]
    assert recent[0].started_at == clock.now - timedelta(minutes=4.5) and recent[0].incident_id == a.id
    later = await store.recent_breach_starts(timedelta(minutes=5), now=clock.now + timedelta(minutes=2))
    assert [b.tenant for b in later] == ["b", "c"]
