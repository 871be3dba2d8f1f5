"""What a person waits on goes first: a command's job is claimed before older bot work, and a
worker whose every slot runs long work (an alert storm's triages) still runs it."""

from __future__ import annotations

import asyncio

from bot.service.jobs import JobWorker
from commands.flows.jobs import Job
from integrations.store import Store
from integrations.store.records import JobItem


async def test_a_command_is_claimed_before_older_triages(store: Store) -> None:
    for n in range(3):
        await store.jobs.enqueue(Job.TRIAGE, {"n": n})
    await store.jobs.enqueue(Job.INTERACTION, {"kind": "command"})
    [first] = await store.jobs.claim_due(worker_id="w", limit=1, first=[Job.INTERACTION])
    assert first.op == Job.INTERACTION
    assert await store.jobs.claim_due(worker_id="w", only=[Job.INTERACTION]) == []
    assert [j.payload["n"] for j in await store.jobs.claim_due(worker_id="w", limit=10)] == [0, 1, 2]


async def test_a_worker_full_of_triages_still_answers_a_command(store: Store) -> None:
    release, answered = asyncio.Event(), asyncio.Event()
    started: list[int] = []

    async def long_triage(item: JobItem) -> None:
        started.append(item.id)
        await release.wait()

    async def command(_: JobItem) -> None:
        answered.set()

    handlers = {job: long_triage for job in Job} | {Job.INTERACTION: command}
    worker = JobWorker(store, handlers, poll_s=0.01, max_in_flight=2)
    for n in range(4):
        await store.jobs.enqueue(Job.TRIAGE, {"n": n})
    worker.start()
    try:
        for _ in range(200):
            if len(started) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(started) == 2  # both slots on triages
        await store.jobs.enqueue(Job.INTERACTION, {"kind": "command"})
        await asyncio.wait_for(answered.wait(), timeout=5)
        assert len(started) == 2  # no third triage took a slot kept for people
    finally:
        release.set()
        await worker.stop()
