"""The job queue: stored with the incident, claimed by one worker, retried with backoff,
kept across restarts, in order per incident."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from integrations.store import NotFound, Store, default_backoff
from tests.store.fixtures import FakeClock


async def test_enqueue_dedupes_by_key(store: Store, replica: Store) -> None:
    results = await asyncio.gather(
        *(s.jobs.enqueue("chat.postMessage", {"text": "hi"}, dedupe_key="parent:1") for s in (store, replica) * 5)
    )
    assert sum(r is not None for r in results) == 1
    assert len(await store.jobs.pending()) == 1


async def test_each_item_is_claimed_by_one_worker(store: Store, replica: Store) -> None:
    for i in range(30):
        await store.jobs.enqueue("chat.postMessage", {"n": i})
    claims = await asyncio.gather(
        *(s.jobs.claim_due(worker_id=f"w{i}", limit=2) for i, s in enumerate([store, replica] * 6))
    )
    claimed = [item.payload["n"] for batch in claims for item in batch]
    assert len(claimed) == len(set(claimed)) == 24  # 12 workers x 2, none twice
    assert await store.jobs.claim_due(worker_id="late", limit=100) != []  # the 6 left
    assert await store.jobs.claim_due(worker_id="later", limit=100) == []  # all leased now


async def test_failure_backs_off_then_retries(store: Store, clock: FakeClock) -> None:
    item = await store.jobs.enqueue("chat.postMessage", {"text": "x"})
    assert item is not None
    [claimed] = await store.jobs.claim_due(worker_id="w")
    assert claimed.attempts == 1
    failed = await store.jobs.fail(claimed.id, "ratelimited")
    assert failed.last_error == "ratelimited" and failed.next_attempt_at == clock.now + default_backoff(1)
    assert await store.jobs.claim_due(worker_id="w") == []
    clock.advance(seconds=default_backoff(1).total_seconds())
    [again] = await store.jobs.claim_due(worker_id="w")
    assert again.attempts == 2
    await store.jobs.fail(again.id, "ratelimited", retry_after=timedelta(seconds=30))
    clock.advance(seconds=29)
    assert await store.jobs.claim_due(worker_id="w") == []
    clock.advance(seconds=1)
    [third] = await store.jobs.claim_due(worker_id="w")
    await store.jobs.complete(third.id)
    assert await store.jobs.pending() == []
    clock.advance(hours=1)
    assert await store.jobs.claim_due(worker_id="w") == []


def test_backoff_grows_and_is_capped() -> None:
    delays = [default_backoff(n).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == 300 and delays == sorted(delays)


async def test_failing_an_unknown_item(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.jobs.fail(10_000, "boom")


async def test_gives_up_after_max_attempts(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock, job_max_attempts=3) as store:
        item = await store.jobs.enqueue("chat.postMessage", {"text": "x"})
        assert item is not None
        for _ in range(3):
            [claimed] = await store.jobs.claim_due(worker_id="w")
            await store.jobs.fail(claimed.id, "channel_not_found", retry_after=timedelta(0))
        assert await store.jobs.claim_due(worker_id="w") == []
        assert [i.id for i in await store.jobs.given_up()] == [item.id]


async def test_a_job_whose_worker_dies_every_time_is_quarantined_at_claim(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock, job_max_attempts=3) as store:
        item = await store.jobs.enqueue("export", {"tenant": "acme"})
        assert item is not None
        for _ in range(3):
            claimed = await store.jobs.claim_due(worker_id="w", limit=1, lease=timedelta(seconds=15))
            assert [c.id for c in claimed] == [item.id]
            clock.advance(seconds=16)  # the worker died: its lease runs out, nothing recorded a failure
        other = await store.jobs.enqueue("post", {"text": "fine"})
        assert other is not None
        [quarantined] = await store.jobs.quarantine()
        assert quarantined.id == item.id and "quarantined" in (quarantined.last_error or "")
        assert [c.id for c in await store.jobs.claim_due(worker_id="w")] == [other.id]
        assert [i.id for i in await store.jobs.given_up()] == [item.id]
        assert await store.jobs.quarantine() == []


async def test_a_worker_that_died_loses_its_lease(store: Store, replica: Store, clock: FakeClock) -> None:
    await store.jobs.enqueue("chat.postMessage", {"text": "x"})
    [claimed] = await store.jobs.claim_due(worker_id="dies", lease=timedelta(seconds=60))
    clock.advance(seconds=59)
    assert await replica.jobs.claim_due(worker_id="other") == []
    clock.advance(seconds=1)
    [retaken] = await replica.jobs.claim_due(worker_id="other")
    assert retaken.id == claimed.id and retaken.attempts == 2


async def test_items_of_one_incident_go_out_in_order(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    other, _ = await store.open_or_get_incident("t2", title="breach")
    parent = await store.jobs.enqueue("post_parent", {}, incident_id=incident.id)
    reply = await store.jobs.enqueue("post_reply", {}, incident_id=incident.id)
    elsewhere = await store.jobs.enqueue("post_parent", {}, incident_id=other.id)
    assert parent and reply and elsewhere
    first = await store.jobs.claim_due(worker_id="w", limit=10)
    assert [i.id for i in first] == [parent.id, elsewhere.id]  # the reply waits for its parent
    await store.jobs.fail(parent.id, "slack down", retry_after=timedelta(seconds=5))
    clock.advance(seconds=10)
    assert [i.id for i in await store.jobs.claim_due(worker_id="w")] == [parent.id]
    await store.jobs.complete(parent.id)
    assert [i.id for i in await store.jobs.claim_due(worker_id="w")] == [reply.id]


async def test_pending_items_survive_a_restart(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock) as before:
        incident, _ = await before.open_or_get_incident("t3", title="breach")
        await before.jobs.enqueue("post_parent", {"text": "P2 breach"}, incident_id=incident.id)
        [claimed] = await before.jobs.claim_due(worker_id="old-process", lease=timedelta(seconds=30))
    clock.advance(seconds=30)
    async with await Store.connect(db_url, clock=clock) as after:
        assert [i.payload for i in await after.jobs.pending(incident_id=incident.id)] == [{"text": "P2 breach"}]
        [resumed] = await after.jobs.claim_due(worker_id="new-process")
        assert resumed.id == claimed.id


async def test_a_running_item_keeps_its_claim_by_renewal(store: Store, replica: Store, clock: FakeClock) -> None:
    await store.jobs.enqueue("triage", {"tenant": "acme"})
    [item] = await store.jobs.claim_due(worker_id="a", lease=timedelta(seconds=15))
    clock.advance(seconds=10)
    assert await store.jobs.renew([item.id], worker_id="a", lease=timedelta(seconds=15)) == {item.id}
    clock.advance(seconds=10)  # past the first lease, inside the renewed one
    assert await replica.jobs.claim_due(worker_id="b") == []
    assert await store.jobs.renew([item.id], worker_id="b", lease=timedelta(seconds=15)) == set()
    clock.advance(seconds=6)  # "a" died and stopped renewing: "b" gets the item
    [again] = await replica.jobs.claim_due(worker_id="b")
    assert again.id == item.id and again.attempts == 2
    assert await store.jobs.renew([item.id], worker_id="a", lease=timedelta(seconds=15)) == set()
