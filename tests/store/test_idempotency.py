"""Idempotency keys: Slack retries, double clicks and double submits win once across replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from integrations.store import Store
from tests.store.fixtures import FakeClock


async def test_first_claim_wins_across_replicas(store: Store, replica: Store) -> None:
    results = await asyncio.gather(*(s.keys.claim("slack:retry:T1:abc") for s in (store, replica) * 20))
    assert results.count(True) == 1
    assert await store.keys.claim("slack:retry:T1:other")


async def test_result_is_shared_with_later_callers(store: Store, replica: Store) -> None:
    assert await store.keys.claim("modal:V1")
    assert await replica.keys.result("modal:V1") is None
    await store.keys.set_result("modal:V1", {"posted_ts": "1700.1", "token": "xoxb-123456789012"})
    assert await replica.keys.result("modal:V1") == {"posted_ts": "1700.1", "token": "[redacted]"}
    assert await replica.keys.result("never-claimed") is None


async def test_long_keys_stay_distinct(store: Store) -> None:
    base = "x" * 300
    assert await store.keys.claim(base + "1")
    assert await store.keys.claim(base + "2")
    assert not await store.keys.claim(base + "1")


async def test_purge_forgets_old_keys_only(store: Store, clock: FakeClock) -> None:
    await store.keys.claim("old")
    clock.advance(hours=25)
    await store.keys.claim("new")
    assert await store.keys.purge(timedelta(hours=24)) == 1
    assert await store.keys.claim("old")
    assert not await store.keys.claim("new")
