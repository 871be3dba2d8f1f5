"""Jobs due later in the one queue: a check due in ten minutes waits for its time without holding
up its incident's ordered thread posts, and ordered posts still run one after another."""

from __future__ import annotations

from datetime import timedelta

from integrations.store import Store
from tests.store.fixtures import FakeClock


async def test_a_future_check_does_not_block_the_incidents_ordered_posts(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("acme", title="breach")
    check = await store.jobs.enqueue(
        "slo_check", {"n": 1}, incident_id=incident.id, not_before=clock.now + timedelta(minutes=10), ordered=False
    )
    first = await store.jobs.enqueue("post", {"text": "a"}, incident_id=incident.id)
    second = await store.jobs.enqueue("post", {"text": "b"}, incident_id=incident.id)
    assert check is not None and first is not None and second is not None
    assert not check.ordered and check.due_at == clock.now + timedelta(minutes=10)
    # Only the first post: the second waits for it, and the check for its time.
    assert [j.id for j in await store.jobs.claim_due(worker_id="w", limit=10)] == [first.id]
    assert not await store.jobs.has_due()
    await store.jobs.complete(first.id)
    assert [j.id for j in await store.jobs.claim_due(worker_id="w", limit=10)] == [second.id]
    await store.jobs.complete(second.id)
    clock.advance(minutes=10)
    [due] = await store.jobs.claim_due(worker_id="w", limit=10)
    assert (due.id, due.op, due.payload) == (check.id, "slo_check", {"n": 1})


async def test_an_unordered_job_runs_beside_an_unfinished_ordered_one(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("acme", title="breach")
    post = await store.jobs.enqueue("post", {"text": "a"}, incident_id=incident.id)
    [claimed] = await store.jobs.claim_due(worker_id="w1")
    assert post is not None and claimed.id == post.id
    reminder = await store.jobs.enqueue("rca_reminder", {}, incident_id=incident.id, ordered=False)
    assert reminder is not None
    assert await store.jobs.has_due()
    assert [j.id for j in await store.jobs.claim_due(worker_id="w2")] == [reminder.id]


async def test_the_incidents_jobs_are_listed_by_kind_in_any_state(store: Store, clock: FakeClock) -> None:
    incident, _ = await store.open_or_get_incident("acme", title="breach")
    check = await store.jobs.enqueue("slo_check", {"n": 1}, incident_id=incident.id, ordered=False)
    await store.jobs.enqueue("post", {"text": "a"}, incident_id=incident.id)
    assert check is not None
    [claimed] = [j for j in await store.jobs.claim_due(worker_id="w", limit=10) if j.op == "slo_check"]
    await store.jobs.complete(claimed.id)
    [listed] = await store.jobs.for_incident(incident.id, ops=["slo_check"])
    assert (listed.id, listed.state, listed.attempts) == (check.id, "done", 1)
    assert {j.op for j in await store.jobs.for_incident(incident.id)} == {"slo_check", "post"}
