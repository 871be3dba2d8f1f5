"""Scheduled verification checks: due at a time, run once across replicas, recovered if a worker dies."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from integrations.store import ScheduledCheck, Store
from tests.store.fixtures import FakeClock


async def test_due_checks_are_claimed_exactly_once(store: Store, replica: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    for minutes in (5, 10):
        for i in range(10):
            await store.checks.schedule(incident.id, "verify", clock.now + timedelta(minutes=minutes), {"i": i})
    assert await store.checks.claim_due(worker_id="early") == []
    clock.advance(minutes=5)
    batches = await asyncio.gather(
        *(s.checks.claim_due(worker_id=f"w{i}", limit=3) for i, s in enumerate([store, replica] * 5))
    )
    claimed = [c for batch in batches for c in batch]
    assert len(claimed) == 10 and len({c.id for c in claimed}) == 10
    assert all(c.due_at == clock.now and c.state == "claimed" and c.attempts == 1 for c in claimed)
    for batch, worker in zip(batches, [f"w{i}" for i in range(10)], strict=True):
        assert all(c.claimed_by == worker for c in batch)


async def test_finish_only_by_the_holder(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t2", title="breach")
    check = await store.checks.schedule(incident.id, "verify", clock.now, {"sli": "escalations"})
    [claimed] = await store.checks.claim_due(worker_id="a")
    assert claimed.payload == {"sli": "escalations"}
    assert not await store.checks.finish(check.id, worker_id="b", result={"ok": True})
    assert await store.checks.finish(check.id, worker_id="a", ok=False, result={"value": 0.04})
    assert not await store.checks.finish(check.id, worker_id="a")  # only once
    [done] = await store.checks.for_incident(incident.id)
    assert done.state == "failed" and done.result == {"value": 0.04}


async def test_a_dead_workers_check_is_retried_then_failed(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock) as store:
        incident, _ = await store.open_or_get_incident("t3", title="breach")
        check = await store.checks.schedule(incident.id, "verify", clock.now)
        grace = timedelta(minutes=2)
        holders = []
        for attempt in range(1, store.checks.max_attempts + 1):
            [claimed] = await store.checks.claim_due(worker_id=f"w{attempt}", grace=grace)
            assert claimed.attempts == attempt
            holders.append(claimed.claimed_by)
            clock.advance(minutes=1)
            assert await store.checks.claim_due(worker_id="x", grace=grace) == []  # still within grace
            clock.advance(minutes=1)
        assert await store.checks.claim_due(worker_id="x", grace=grace) == []
        [failed] = await store.checks.for_incident(incident.id)
        assert failed.id == check.id and failed.state == "failed"
        assert not await store.checks.finish(check.id, worker_id=holders[-1])  # the slow one lost it


async def test_cancel_pending_checks(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t4", title="breach")
    v5 = await store.checks.schedule(incident.id, "verify", clock.now + timedelta(minutes=5))
    await store.checks.schedule(incident.id, "escalate", clock.now + timedelta(minutes=10))
    assert await store.checks.cancel(incident.id, kinds=["verify"]) == 1
    states = {c.kind: c.state for c in await store.checks.for_incident(incident.id)}
    assert states == {"verify": "cancelled", "escalate": "pending"}
    clock.advance(minutes=10)
    claimed: list[ScheduledCheck] = await store.checks.claim_due(worker_id="w")
    assert [c.kind for c in claimed] == ["escalate"] and v5.id not in {c.id for c in claimed}
    assert [c.kind for c in await store.checks.for_incident(incident.id, states=["claimed"])] == ["escalate"]
