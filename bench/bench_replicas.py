"""Two replicas on PostgreSQL (issue 8, "Speed"): 200 concurrent slash commands and 200 alert
webhooks with no duplicates and the ack p99; the scheduler's leader failover time, median of 5.

Run: ``python -m bench.bench_replicas [--commands 200] [--alerts 200] [--failovers 5]``
(writes ``bench/results/replicas.json``).

Setup: the sandbox (default world) and a PostgreSQL server of its own in this process; two
``flk serve`` processes on one database (the default runbook config, except the isolation
rule, which is off so that 200 tenants make 200 incidents), behind the round-robin front of
``tests/replicas/front.py`` (also in this process).

1. Load, all at once. ``--commands`` slash commands ``/flk status <tenant>`` (the world's tenants
   in turn) from a spawned load process (``bench.ack_load.fire``, one sender per command),
   through the front; then each command again, as Slack retries it, through the front (so the
   retry usually reaches the other replica). Meanwhile, from this process, ``--alerts``
   webhooks of one firing alert each (generated tenants), each sent to both replicas at once,
   as a highly available Alertmanager pair notifies. Counted: each command's response_url uses
   (exactly one expected: zero is lost, two is a duplicate), incidents per tenant, parent and
   triage items per incident in the store's outbox, and the parents posted in Slack after a
   wait of ``--settle-s`` (the bot posts at most one message per second per replica to the
   channel, so not every triage is in Slack by then; none may be there twice).
   Ack latency, two ways: as the load process sees it (send → whole answer, through the front
   and this process's event loop), and as each replica measures it
   (``flk_bot_slack_request_seconds``, arrival → answer; a histogram, so its p99 is a bucket's
   upper bound; every request since the replica started, the warm-up included).
2. Paced: ``--paced-rate`` ``/flk status`` commands a second for ``--paced-s`` seconds through the
   front, while ``--triages`` triages started just before run in the replicas' workers (each
   ``flk serve`` a front with its worker processes): the ack p99 through the front (goal 10 ms)
   and as each replica measures it (goal 5 ms). The front is a Python proxy in this process,
   opening a connection per request: its own cost is in the client-side figure.
3. Failover, ``--failovers`` times: SIGKILL the leader (``flk_bot_scheduler_leader`` 1 in its
   /metrics), then poll the survivor's /metrics every 20 ms until it leads; the time from the
   kill to that answer. A fresh replica replaces the dead one before the next round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import statistics
import tempfile
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.ack_load import fire
from bench.common import code_version, figure, latency_ms, machine, print_summary, write_results
from integrations.store.schema import incidents, jobs
from sandbox.postgres import Postgres
from sandbox.slack import payloads
from sandbox.up import Sandbox
from tests.replicas.cluster import Cluster
from tests.replicas.slack_view import firing, send_webhook

ACK_GOAL_MS = 5.0
FRONT_GOAL_MS = 10.0  # issue 16: through the two-replica front, while triages run
FAILOVER_GOAL_S = 15.0
ANSWER_WAIT_S = 60.0
_BUCKET = re.compile(r'^flk_bot_slack_request_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.MULTILINE)


def _commands(sb: Sandbox, n: int, verb: str = "status") -> tuple[list[str], list[str]]:
    """``n`` slash command forms ``/flk <verb> <tenant>`` as Slack sends them, and their
    response_url tokens."""
    ws = sb.slack.workspace
    channel = sb.slack.channel_id(sb.incident_channel)
    user = next(iter(ws.users))
    tenants = sorted(sb.live.world.tenants)
    bodies, tokens = [], []
    for i in range(n):
        url = ws.issue_response_url("commands", channel, user)
        form = payloads.slash_command(
            ws,
            command="/flk",
            text=f"{verb} {tenants[i % len(tenants)]}",
            user=user,
            channel=channel,
            response_url=url,
            trigger_id=ws.issue_trigger(user, channel),
        )
        bodies.append(urllib.parse.urlencode(form))
        tokens.append(url.rsplit("/", 1)[-1])
    return bodies, tokens


async def _histograms(cluster: Cluster) -> dict[str, list[tuple[float, float]]]:
    """Each replica's ack histogram now: cumulative (bucket bound s, count) pairs."""
    found = {}
    for bot in cluster.replicas:
        _, text = await cluster.get(bot, "/metrics")
        found[bot.url] = [(float(le), float(count)) for le, count in _BUCKET.findall(text)]
    return found


def _server_side(
    before: dict[str, list[tuple[float, float]]], after: dict[str, list[tuple[float, float]]]
) -> dict[str, dict[str, Any]]:
    """Each replica's own acks between two snapshots: the p99's bucket upper bound (ms), and
    the share of acks within the goal."""
    found: dict[str, dict[str, Any]] = {}
    for url, buckets in after.items():
        earlier = dict(before.get(url, []))
        counts = [(le, count - earlier.get(le, 0.0)) for le, count in buckets]
        total = counts[-1][1] if counts else 0
        bound = next((le for le, count in counts if total and count >= 0.99 * total), None)
        within = next((count for le, count in counts if le == ACK_GOAL_MS / 1000), 0.0)
        found[url] = {
            "requests": int(total),
            "p99_bound_ms": None if bound is None or bound == float("inf") else round(bound * 1000, 1),
            "share_within_goal": round(within / total, 3) if total else None,
        }
    return found


async def _store_counts(cluster: Cluster, prefix: str) -> dict[str, Any]:
    assert cluster.store is not None
    async with cluster.store.engine.connect() as conn:
        per_tenant = Counter(
            dict(
                (
                    await conn.execute(
                        select(incidents.c.tenant, func.count())
                        .where(incidents.c.tenant.like(f"{prefix}%"))
                        .group_by(incidents.c.tenant)
                    )
                ).all()
            )
        )
        items = (
            await conn.execute(
                select(jobs.c.incident_id, jobs.c.op, func.count())
                .where(jobs.c.op.in_(("post_parent", "triage")))
                .group_by(jobs.c.incident_id, jobs.c.op)
            )
        ).all()
    doubled = Counter(op for _, op, n in items if n > 1)
    return {
        "tenants_with_an_incident": len(per_tenant),
        "tenants_with_two_or_more": sum(1 for n in per_tenant.values() if n > 1),
        "parent_items": sum(n for _, op, n in items if op == "post_parent"),
        "triage_items": sum(n for _, op, n in items if op == "triage"),
        "incidents_with_a_doubled_item": dict(doubled),
    }


def _parents_in_slack(sb: Sandbox, tenants: list[str]) -> Counter[str]:
    wanted = set(tenants)
    posted: Counter[str] = Counter()
    for message in sb.slack.channel_messages(sb.incident_channel):
        for tenant in re.findall(r"\bbench-r\d{3}\b", message.all_text()):
            if tenant in wanted:
                posted[tenant] += 1
                break
    return posted


async def bench_load(sb: Sandbox, cluster: Cluster, pool: ProcessPoolExecutor, args: argparse.Namespace) -> dict:
    bodies, tokens = _commands(sb, args.commands)
    warm_up, _ = _commands(sb, 20)
    tenants = [f"bench-r{i:03d}" for i in range(args.alerts)]
    secret = sb.slack_config.signing_secret
    loop = asyncio.get_running_loop()
    events_url = f"{cluster.front.url}/slack/events"
    began = time.monotonic()

    async def commands() -> tuple[list[Any], list[Any]]:
        first, _ = await loop.run_in_executor(
            pool, fire, events_url, secret, warm_up, bodies, len(bodies), None, False, []
        )
        retries, _ = await loop.run_in_executor(
            pool, fire, events_url, secret, [], bodies, len(bodies), None, False, []
        )
        return first, retries

    async def webhooks() -> list[int]:
        sends = [send_webhook(cluster, bot.url, firing(t)) for t in tenants for bot in cluster.replicas]
        return list(await asyncio.gather(*sends))

    before = await _histograms(cluster)
    (first, retries), statuses = await asyncio.gather(commands(), webhooks())
    load_s = time.monotonic() - began
    server_side = _server_side(before, await _histograms(cluster))
    await asyncio.sleep(args.settle_s)
    uses = Counter(sb.slack.workspace.response_urls[t].uses for t in tokens)
    parents = _parents_in_slack(sb, tenants)
    return {
        "commands": len(bodies),
        "command_statuses": dict(Counter(s for _, s, _ in first)),
        "retry_statuses": dict(Counter(s for _, s, _ in retries)),
        "ack": latency_ms(s for s, _, _ in first),
        "ack_retries": latency_ms(s for s, _, _ in retries),
        "ack_server_side": server_side,
        "responses_per_command": {str(k): v for k, v in sorted(uses.items())},
        "webhooks": len(statuses),
        "webhook_statuses": dict(Counter(statuses)),
        "load_s": round(load_s, 2),
        "settle_s": args.settle_s,
        "store": await _store_counts(cluster, "bench-r"),
        "parents_posted": len(parents),
        "tenants_with_two_parents_posted": sum(1 for n in parents.values() if n > 1),
        "requests_per_replica": dict(cluster.front.served),
    }


async def bench_paced(
    sb: Sandbox, cluster: Cluster, pool: ProcessPoolExecutor, rate: int, seconds: int, triages: int
) -> dict:
    """``rate`` slash commands a second for ``seconds`` (``rate`` senders, one a second each),
    through the front, while ``triages`` triages (started just before) run in the replicas'
    workers: the ack latency at the load bench_ack.py uses."""
    bodies, tokens = _commands(sb, rate * seconds)
    background, _ = _commands(sb, triages, "triage")
    secret, url = sb.slack_config.signing_secret, f"{cluster.front.url}/slack/events"
    before = await _histograms(cluster)
    samples, took = await asyncio.get_running_loop().run_in_executor(
        pool, fire, url, secret, [], bodies, rate, 1.0, False, background
    )
    server_side = _server_side(before, await _histograms(cluster))
    # The answers come from the workers, behind part 1's triages still queued: wait for them.
    urls, waited = sb.slack.workspace.response_urls, time.monotonic()
    with contextlib.suppress(TimeoutError):
        await sb.slack.wait_for(lambda: all(urls[t].uses for t in tokens), timeout=ANSWER_WAIT_S)
    answered_s = time.monotonic() - waited
    uses = Counter(urls[t].uses for t in tokens)
    return {
        "rate_per_s": rate,
        "background_triages": triages,
        "commands": len(bodies),
        "seconds": round(took, 2),
        "statuses": dict(Counter(s for _, s, _ in samples)),
        "ack": latency_ms(s for s, _, _ in samples),
        "ack_server_side": server_side,
        "responses_per_command": {str(k): v for k, v in sorted(uses.items())},
        "answered_within_s_after_the_last": round(answered_s, 1),
    }


async def bench_failover(cluster: Cluster, rounds: int) -> dict[str, Any]:
    times = []
    for _ in range(rounds):
        await cluster.ensure(2)
        leader = await cluster.wait_single_leader(30)
        survivor = next(b for b in cluster.replicas if b is not leader)
        killed_at = await cluster.kill(leader)
        while not await cluster.is_leader(survivor):
            if time.monotonic() - killed_at > 60:
                raise RuntimeError("no takeover within 60 s")
            await asyncio.sleep(0.02)
        times.append(round(time.monotonic() - killed_at, 3))
    return {"rounds": rounds, "failover_s": times, "median_s": round(statistics.median(times), 3), "max_s": max(times)}


def _server_figure(server: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    rows = list(server.values())
    text = "; ".join(
        f"≤ {r['p99_bound_ms']} ms ({r['share_within_goal']:.0%} of {r['requests']} within {ACK_GOAL_MS:g} ms)"
        if r["p99_bound_ms"] is not None
        else "over 3 s"
        for r in rows
    )
    return text, all(r["p99_bound_ms"] is not None and r["p99_bound_ms"] <= ACK_GOAL_MS for r in rows)


def summarise(load: dict[str, Any], paced: dict[str, Any], failover: dict[str, Any]) -> list[dict[str, Any]]:
    store = load["store"]
    uses = load["responses_per_command"]
    lost, doubled = uses.get("0", 0), sum(n for k, n in uses.items() if int(k) > 1)
    dup_store = store["tenants_with_two_or_more"] + sum(store["incidents_with_a_doubled_item"].values())
    ack, (server_text, server_met) = load["ack"], _server_figure(load["ack_server_side"])
    pace, (pace_text, pace_met) = paced["ack"], _server_figure(paced["ack_server_side"])
    paced_uses = paced["responses_per_command"]
    return [
        figure(
            f"{load['commands']} slash commands + their Slack retries, 2 replicas: responses per command",
            f"{load['commands'] - lost - doubled} once, {lost} never, {doubled} twice or more",
            "exactly once",
            lost == 0 and doubled == 0,
        ),
        figure(
            f"{load['webhooks'] // 2} alert webhooks, each to both replicas: incidents and queued posts",
            f"{store['tenants_with_an_incident']} tenants with an incident, {dup_store} duplicated; "
            f"{load['parents_posted']} parents in Slack after {load['settle_s']:g} s, "
            f"{load['tenants_with_two_parents_posted']} posted twice",
            "one incident, one parent per tenant",
            dup_store == 0
            and load["tenants_with_two_parents_posted"] == 0
            and store["tenants_with_an_incident"] == load["webhooks"] // 2,
        ),
        figure(
            "ack p99 under that load, through the front (load process)",
            f"{ack['p99_ms']} ms (p50 {ack['p50_ms']}, max {ack['max_ms']})",
            f"≤ {ACK_GOAL_MS:g} ms",
            ack["p99_ms"] <= ACK_GOAL_MS,
        ),
        figure(
            "ack p99 under that load, as each replica measures it (histogram bucket bound)",
            server_text,
            f"≤ {ACK_GOAL_MS:g} ms",
            server_met,
        ),
        figure(
            f"ack p99, {paced['rate_per_s']} commands/s while {paced['background_triages']} triages run, "
            f"{paced['commands']} commands, through the front (load process)",
            f"{pace['p99_ms']} ms (p50 {pace['p50_ms']}, max {pace['max_ms']}); each answered once: "
            f"{paced_uses == {'1': paced['commands']}} (answers {paced_uses}, the last "
            f"{paced['answered_within_s_after_the_last']} s after the last command)",
            f"≤ {FRONT_GOAL_MS:g} ms",
            pace["p99_ms"] <= FRONT_GOAL_MS,
        ),
        figure(
            f"ack p99, {paced['rate_per_s']} commands/s while {paced['background_triages']} triages run, "
            "as each replica measures it (histogram bucket bound)",
            pace_text,
            f"≤ {ACK_GOAL_MS:g} ms",
            pace_met,
        ),
        figure(
            f"scheduler leader failover after SIGKILL (median of {failover['rounds']})",
            f"{failover['median_s']} s (max {failover['max_s']}; {failover['failover_s']})",
            f"≤ {FAILOVER_GOAL_S:g} s",
            failover["max_s"] <= FAILOVER_GOAL_S,
        ),
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host, code = machine(), code_version()
    with tempfile.TemporaryDirectory(prefix="flk-bench-replicas-") as folder:
        runbook = Path(folder) / "runbook.yaml"
        runbook.write_text("incidents:\n  isolation_threshold: 100000\n")
        async with Sandbox() as sb, Postgres() as pg:
            cluster = Cluster(sb, pg.url, {"FLK_CONFIG": str(runbook)})
            try:
                await cluster.start(2)
                await cluster.wait_single_leader(30)
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    load = await bench_load(sb, cluster, pool, args)
                    paced = await bench_paced(sb, cluster, pool, args.paced_rate, args.paced_s, args.triages)
                failover = await bench_failover(cluster, args.failovers)
            finally:
                await cluster.close()
    return {
        "machine": {**host, "load_average_at_end": machine()["load_average"]},
        "code_at_start": code,
        "method": __doc__,
        "load": load,
        "paced": paced,
        "failover": failover,
        "summary": summarise(load, paced, failover),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--settle-s", type=float, default=20.0)
    parser.add_argument("--paced-rate", type=int, default=200, help="commands a second in the paced part")
    parser.add_argument("--paced-s", type=int, default=3)
    parser.add_argument("--triages", type=int, default=20, help="triages running during the paced part")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print_summary(report["summary"])
    print(f"wrote {write_results('replicas', report)}")


if __name__ == "__main__":
    main()
