"""`flk serve --workers 2` on SQLite: the front only acks and queues, two worker processes run
the jobs, and a worker SIGKILLed in the middle of a triage loses nothing: the other worker takes
the job once its lease lapses and finishes the checklist the dead one posted, once."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.up import Sandbox
from tests.replicas.cluster import Cluster, worker_pids
from tests.replicas.slack_view import checklists, firing, send_webhook, summaries, thread_ts, until

LEASE_S = 3  # FLK_JOB_LEASE_S: the lapse the test waits for, kept short
SETTLE_S = 2.0


@pytest.fixture(scope="module")
async def workers(replicas_sandbox: Sandbox, runbook_env: dict[str, str]) -> AsyncIterator[Cluster]:
    """One `flk serve --workers 2` on a SQLite file of its own."""
    database = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='flk-workers-')) / 'flk.sqlite'}"
    env = {**runbook_env, "FLK_JOB_LEASE_S": str(LEASE_S)}
    running = Cluster(replicas_sandbox, database, env, serve_args=("--workers", "2"))
    try:
        yield await running.start(1)
    finally:
        await running.close()


async def test_a_worker_killed_mid_triage_loses_nothing(workers: Cluster) -> None:
    assert workers.store is not None and workers.driver is not None
    store, tenant, [front] = workers.store, "orbit", workers.replicas
    children = await until(lambda: len(worker_pids(front.pid)) == 2 and worker_pids(front.pid), 10, "two workers")
    # The alert opens the incident and its triage runs (whatever state other tests left the shared
    # world in, e.g. orbit mitigated): the triage killed below runs in that thread.
    assert await send_webhook(workers, workers.front.url, firing(tenant)) == 200
    ts = await thread_ts(workers, tenant, wait_s=30)
    await until(lambda: summaries(workers, ts, tenant), 30, "the alert's triage summary", workers)
    incident = await store.find_open(tenant)
    assert incident is not None
    # The admin API hangs: the triage waits on that probe's timeout, long enough to kill its worker.
    workers.sandbox.backend.faults["admin"] = "hang"
    try:
        assert (await workers.driver.slash(f"triage {tenant}")).status == 200
        item_id, victim = await until(lambda: workers.claimed("triage", incident.id), 10, "a worker on the triage")
        # A worker process runs it, not the front.
        assert victim in children and victim != front.pid

        async def checklist_recorded() -> str | None:
            progress = await store.keys.result(f"progress:{item_id}")
            return progress.get("ts") if progress else None

        checklist_ts = await until(checklist_recorded, 10, "the checklist posted", workers)
        assert len(summaries(workers, ts, tenant)) == 1
        os.kill(victim, signal.SIGKILL)
    finally:
        workers.sandbox.backend.faults["admin"] = None
    other = "the triage summary from the other worker"
    await until(lambda: len(summaries(workers, ts, tenant)) == 2, 30, other, workers)
    await asyncio.sleep(SETTLE_S)
    assert len(summaries(workers, ts, tenant)) == 2
    # One checklist for it: the one the dead worker posted, finished by the other.
    [(_, done, of)] = [c for c in checklists(workers, ts, tenant) if c[0].ts == checklist_ts]
    assert done == of > 0

    async def triage_job_done() -> bool:
        [job] = [j for j in await store.jobs.for_incident(incident.id, ops=["triage"]) if j.id == item_id]
        return job.state == "done"

    # Done after its chart, which is uploaded last; claimed twice: the dead worker, the other.
    await until(triage_job_done, 10, "the triage job done", workers)
    [job] = [j for j in await store.jobs.for_incident(incident.id, ops=["triage"]) if j.id == item_id]
    assert job.attempts == 2
    # The front started a worker in the dead one's place.
    await until(lambda: len(worker_pids(front.pid) - {victim}) == 2, 10, "the killed worker replaced", workers)
