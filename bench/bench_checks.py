"""Verification checks at scale: 1,000 checks due within the same minute each fire within 1 s of
their due time, and exactly once, also with two replicas sharing PostgreSQL (issue 6, "Speed").

Run: ``python -m bench.bench_checks [--checks 1000] [--spread-s 30]`` (writes
``bench/results/checks.json``). In-process, with the real job queue: checks are ``slo_check``
jobs queued through ``JobQueue`` with ``not_before``, run by the real ``JobWorker`` (woken at
each due time by an APScheduler date job, polling the queue with a read otherwise, claiming
atomically) on a real ``Store``: a temp SQLite file, then the real PostgreSQL server, then two
workers with a ``Store`` (an engine) each on one PostgreSQL database, each queueing half of the
checks (as the replica that handled the click would), so each is woken for its own and finds
the other's by its poll.
The checks' due times are spread evenly over ``--spread-s`` seconds (30 by default: denser than
a whole minute) starting once they are all scheduled. The check itself only records its id and
the time it ran (no Slack, no Prometheus), so lateness is the scheduler's and the store's own:
run time minus due time. Fired twice / never are counted from those records after the last due
time plus three sweeps, and the store's final states are read back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import figure, latency_ms, machine, print_summary, write_results
from bot.service.jobs import JobWorker, Waker
from commands.flows.jobs import Job, JobQueue
from integrations.store import JobItem, Store
from sandbox.postgres import Postgres

GOAL_S = 1.0
SETTLE_S = 3.5  # many more polls after the last check ran: a second run would show by then


@dataclass
class Fired:
    """Every run of every check: (check id, replica, seconds after its due time)."""

    expected: int
    runs: list[tuple[int, str, float]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    all_ran: asyncio.Event = field(default_factory=asyncio.Event)

    def runner(self, replica: str) -> Any:
        async def run(check: JobItem) -> None:
            assert check.due_at is not None
            self.runs.append((check.id, replica, (datetime.now(UTC) - check.due_at).total_seconds()))
            self.seen.add(check.id)
            if len(self.seen) >= self.expected:
                self.all_ran.set()

        return run


async def _other_job(item: JobItem) -> None:
    raise AssertionError(f"only checks are queued here, not {item.op}")


def _worker(store: Store, run: Any) -> tuple[JobWorker, JobQueue]:
    waker = Waker()
    handlers = {job: run if job is Job.SLO_CHECK else _other_job for job in Job}
    return JobWorker(store, handlers, waker=waker), JobQueue(store, kick=waker.now, wake_at=waker.at)


async def _variant(name: str, urls: list[str], count: int, spread_s: float) -> dict[str, Any]:
    stores = [await Store.connect(url) for url in urls]
    fired = Fired(count)
    replicas = [f"replica-{n + 1}" for n in range(len(stores))]
    workers = [_worker(s, fired.runner(r)) for s, r in zip(stores, replicas, strict=True)]
    try:
        incident, _ = await stores[0].open_or_get_incident(f"bench-{name}", title="checks benchmark")
        # Lead time: long enough to schedule everything before the first one is due.
        lead_s = 2.0 + count * 0.004
        first_due = datetime.now(UTC) + timedelta(seconds=lead_s)
        for worker, _ in workers:
            worker.start()
        began = time.perf_counter()
        for i in range(count):
            due = first_due + timedelta(seconds=spread_s * i / max(1, count - 1))
            queue = workers[i % len(workers)][1]
            key = f"bench-{name}-{i}"
            await queue.enqueue(Job.SLO_CHECK, {"n": i}, key=key, incident_id=incident.id, not_before=due)
        schedule_s = time.perf_counter() - began
        scheduled_before_first_due = datetime.now(UTC) < first_due
        last_due = first_due + timedelta(seconds=spread_s)
        wait_s = (last_due - datetime.now(UTC)).total_seconds() + GOAL_S + 10
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fired.all_ran.wait(), max(0.0, wait_s))
        await asyncio.sleep(SETTLE_S)
    finally:
        for worker, _ in workers:
            await worker.stop()
    try:
        checks = await stores[0].jobs.for_incident(incident.id, ops=[Job.SLO_CHECK])
        ids = [c.id for c in checks]
        states = Counter(c.state for c in checks)
    finally:
        for store in stores:
            await store.close()
    runs_per_check = Counter(r[0] for r in fired.runs)
    first_run_late = {}
    for check_id, _, late in fired.runs:
        first_run_late.setdefault(check_id, late)
    lateness = list(first_run_late.values())
    return {
        "variant": name,
        "replicas": len(stores),
        "checks": count,
        "spread_s": spread_s,
        "schedule_s": round(schedule_s, 2),
        "scheduled_before_first_due": scheduled_before_first_due,
        "lateness": latency_ms(lateness) if lateness else None,
        "within_1s": sum(1 for x in lateness if x <= GOAL_S),
        "fired_once": sum(1 for i in ids if runs_per_check[i] == 1),
        "fired_twice_or_more": sum(1 for i in ids if runs_per_check[i] >= 2),
        "never_fired": sum(1 for i in ids if runs_per_check[i] == 0),
        "runs_by_replica": dict(Counter(r[1] for r in fired.runs)),
        "store_states": dict(states),
    }


def _row(result: dict[str, Any]) -> dict[str, Any]:
    lat = result["lateness"] or {}
    met = (
        result["fired_once"] == result["checks"]
        and result["within_1s"] == result["checks"]
        and result["scheduled_before_first_due"]
    )
    value = (
        f"lateness p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms; "
        f"once {result['fired_once']}, twice+ {result['fired_twice_or_more']}, never {result['never_fired']}"
    )
    name = f"{result['checks']} checks due within {result['spread_s']:g} s, {result['variant']}"
    return figure(name, value, "each within 1 s of due, exactly once", met)


async def _run(count: int, spread_s: float) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="flk-bench-checks-") as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'checks.sqlite'}"
        results.append(await _variant("SQLite", [url], count, spread_s))
        print_summary([_row(results[-1])])
    async with Postgres() as pg:
        results.append(await _variant("PostgreSQL", [await pg.create_database("one_replica")], count, spread_s))
        print_summary([_row(results[-1])])
        shared = await pg.create_database("two_replicas")
        results.append(await _variant("PostgreSQL, two replicas", [shared, shared], count, spread_s))
        print_summary([_row(results[-1])])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--spread-s", type=float, default=30.0, help="due times spread over this many seconds")
    args = parser.parse_args()
    if args.checks < 1 or not 0 <= args.spread_s <= 60:
        parser.error("--checks must be >= 1 and --spread-s within 0..60 (due within the same minute)")
    at_start = machine()
    results = asyncio.run(_run(args.checks, args.spread_s))
    summary = [_row(r) for r in results]
    path = write_results(
        "checks",
        {
            "machine": {**at_start, "load_average_at_end": machine()["load_average"]},
            "method": __doc__,
            "variants": results,
            "summary": summary,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
