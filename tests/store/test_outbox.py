"""The Slack outbox: stored with the incident, claimed by one worker, retried with backoff,
kept across restarts, in order per incident."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from integrations.store import NotFound, Store, default_backoff
from tests.store.fixtures import FakeClock


async def test_enqueue_dedupes_by_key(store: Store, replica: Store) -> None:
    results = await asyncio.gather(
        *(s.outbox.enqueue("chat.postMessage", {"text": "hi"}, dedupe_key="parent:1") for s in (store, replica) * 5)
    )
    assert sum(r is not None for r in results) == 1
    assert len(await store.outbox.pending()) == 1


async def test_each_item_is_claimed_by_one_worker(store: Store, replica: Store) -> None:
    for i in range(30):
        await store.outbox.enqueue("chat.postMessage", {"n": i})
    claims = await asyncio.gather(
        *(s.outbox.claim_due(worker_id=f"w{i}", limit=2) for i, s in enumerate([store, replica] * 6))
    )
    claimed = [item.payload["n"] for batch in claims for item in batch]
    assert len(claimed) == len(set(claimed)) == 24  # 12 workers x 2, none twice
    assert await store.outbox.claim_due(worker_id="late", limit=100) != []  # the 6 left
    assert await store.outbox.claim_due(worker_id="later", limit=100) == []  # all leased now


async def test_failure_backs_off_then_retries(store: Store, clock: FakeClock) -> None:
    item = await store.outbox.enqueue("chat.postMessage", {"text": "x"})
    assert item is not None
    [claimed] = await store.outbox.claim_due(worker_id="w")
    assert claimed.attempts == 1
    failed = await store.outbox.fail(claimed.id, "ratelimited")
    assert failed.last_error == "ratelimited" and failed.next_attempt_at == clock.now + default_backoff(1)
    assert await store.outbox.claim_due(worker_id="w") == []
    clock.advance(seconds=default_backoff(1).total_seconds())
    [again] = await store.outbox.claim_due(worker_id="w")
    assert again.attempts == 2
    await store.outbox.fail(again.id, "ratelimited", retry_after=timedelta(seconds=30))
    clock.advance(seconds=29)
    assert await store.outbox.claim_due(worker_id="w") == []
    clock.advance(seconds=1)
    [third] = await store.outbox.claim_due(worker_id="w")
    await store.outbox.complete(third.id)
    assert await store.outbox.pending() == []
    clock.advance(hours=1)
    assert await store.outbox.claim_due(worker_id="w") == []


def test_backoff_grows_and_is_capped() -> None:
    delays = [default_backoff(n).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == 300 and delays == sorted(delays)


async def test_failing_an_unknown_item(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.outbox.fail(10_000, "boom")


async def test_gives_up_after_max_attempts(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock, outbox_max_attempts=3) as store:
        item = await store.outbox.enqueue("chat.postMessage", {"text": "x"})
        assert item is not None
        for _ in range(3):
            [claimed] = await store.outbox.claim_due(worker_id="w")
            await store.outbox.fail(claimed.id, "channel_not_found", retry_after=timedelta(0))
        assert await store.outbox.claim_due(worker_id="w") == []
        assert [i.id for i in await store.outbox.given_up()] == [item.id]


async def test_a_job_whose_worker_dies_every_time_is_quarantined_at_claim(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock, outbox_max_attempts=3) as store:
        item = await store.outbox.enqueue("export", {"tenant": "acme"})
        assert item is not None
        for _ in range(3):
            claimed = await store.outbox.claim_due(worker_id="w", limit=1, lease=timedelta(seconds=15))
            assert [c.id for c in claimed] == [item.id]
            clock.advance(seconds=16)  # the worker died: its lease runs out, nothing recorded a failure
        other = await store.outbox.enqueue("post", {"text": "fine"})
        assert other is not None
        [quarantined] = await store.outbox.quarantine()
        assert quarantined.id == item.id and "quarantined" in (quarantined.last_error or "")
        assert [c.id for c in await store.outbox.claim_due(worker_id="w")] == [other.id]
        assert [i.id for i in await store.outbox.given_up()] == [item.id]
        assert await store.outbox.quarantine() == []


async def test_a_worker_that_died_loses_its_lease(store: Store, replica: Store, clock: FakeClock) -> None:
    await store.outbox.enqueue("chat.postMessage", {"text": "x"})
    [claimed] = await store.outbox.claim_due(worker_id="dies", lease=timedelta(seconds=60))
    clock.advance(seconds=59)
    assert await replica.outbox.claim_due(worker_id="other") == []
    clock.advance(seconds=1)
    [retaken] = await replica.outbox.claim_due(worker_id="other")
    assert retaken.id == claimed.id and retaken.attempts == 2


async def test_items_of_one_incident_go_out_in_order(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("t1", title="breach")
    other, _ = await store.open_or_get_incident("t2", title="breach")
    parent = await store.outbox.enqueue("post_parent", {}, incident_id=incident.id)
    reply = await store.outbox.enqueue("post_reply", {}, incident_id=incident.id)
    elsewhere = await store.outbox.enqueue("post_parent", {}, incident_id=other.id)
    assert parent and reply and elsewhere
    first = await store.outbox.claim_due(worker_id="w", limit=10)
    assert [i.id for i in first] == [parent.id, elsewhere.id]  # the reply waits for its parent
    await store.outbox.fail(parent.id, "slack down", retry_after=timedelta(seconds=5))
    clock.advance(seconds=10)
    assert [i.id for i in await store.outbox.claim_due(worker_id="w")] == [parent.id]
    await store.outbox.complete(parent.id)
    assert [i.id for i in await store.outbox.claim_due(worker_id="w")] == [reply.id]


async def test_pending_items_survive_a_restart(db_url: str, clock: FakeClock) -> None:
    async with await Store.connect(db_url, clock=clock) as before:
        incident, _ = await before.open_or_get_incident("t3", title="breach")
        await before.outbox.enqueue("post_parent", {"text": "P2 breach"}, incident_id=incident.id)
        [claimed] = await before.outbox.claim_due(worker_id="old-process", lease=timedelta(seconds=30))
    clock.advance(seconds=30)
    async with await Store.connect(db_url, clock=clock) as after:
        assert [i.payload for i in await after.outbox.pending(incident_id=incident.id)] == [{"text": "P2 breach"}]
        [resumed] = await after.outbox.claim_due(worker_id="new-process")
        assert resumed.id == claimed.id


async def test_a_running_item_keeps_its_claim_by_renewal(store: Store, replica: Store, clock: FakeClock) -> None:
    await store.outbox.enqueue("triage", {"tenant": "acme"})
    [item] = await store.outbox.claim_due(worker_id="a", lease=timedelta(seconds=15))
    clock.advance(seconds=10)
    assert await store.outbox.renew([item.id], worker_id="a", lease=timedelta(seconds=15)) == {item.id}
    clock.advance(seconds=10)  # past the first lease, inside the renewed one
    assert await replica.outbox.claim_due(worker_id="b") == []
    assert await store.outbox.renew([item.id], worker_id="b", lease=timedelta(seconds=15)) == set()
    clock.advance(seconds=6)  # "a" died and stopped renewing: "b" gets the item
    [again] = await replica.outbox.claim_due(worker_id="b")
    assert again.id == item.id and again.attempts == 2
    assert await store.outbox.renew([item.id], worker_id="a", lease=timedelta(seconds=15)) == set()
