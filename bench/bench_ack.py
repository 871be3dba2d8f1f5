"""Ack latency of `/flk triage` under 50 concurrent senders: our bot beside a minimal Bolt app
that acks through a lazy listener, in the same run.

Run: ``python -m bench.bench_ack [--requests 1000] [--concurrency 50] [--interval 0.25] [--rounds 2]``.

Three kinds of process, so that no event loop serves both sides of a measurement:
- this one runs the sandbox (default world: Slack emulator, Prometheus, Kubernetes fake...)
  and prepares the slash commands (trigger ids and response URLs issued by the emulator);
- the app under test, a fresh process per measurement, with the sandbox's env: ``flk serve``
  (ours: the front, which acks and queues, and its worker processes), the lazy-listener app,
  and, as a diagnosis, ours with Bolt's ``process_before_response=True`` (both in
  ``bench/ack_apps.py``);
- the load generator (``bench/ack_load.py``), a spawned process: the senders share one aiohttp session and sign each
  request just before sending it, as Slack does; a latency is the time from sending the
  request to having read the whole response.

Two ways to send, each ``--requests`` requests from ``--concurrency`` senders:
- ``paced``: each sender sends one request every ``--interval`` seconds (random phase), whether
  or not its last one was answered: the ack latency at a fixed load (concurrency / interval
  requests per second);
- ``back-to-back``: each sender sends its next request as soon as its last is answered: the app
  is saturated, so the latency is mostly queueing (about concurrency / throughput).

Two workloads, the measured requests being ``/flk triage <a tenant the world lacks>`` (the
ack path of a triage; the background work is only the refusal, a cached tenant check and one
response_url post):
- ``isolated``: nothing else runs;
- ``busy``: ``--triages`` real triages (the world's tenants in turn) are started just before the
  measured requests, so that the acks compete with the triages' work (Prometheus and log
  answers decoded, findings rendered, posts): the situation of a busy incident. How many of
  them finished within the measured window is reported.

Cores (``--pin``, the default on 2 cores or more): the app under test's process (all its
threads) runs on core 0; the load generator, the sandbox and our worker processes share the
other core(s). So the lazy app's triages compete with its acks on core 0, as they must in one
process, while ours run in the workers: that separation is what is measured.
Writes ``bench/results/ack.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.ack_apps import LAZY_READY
from bench.ack_load import APP_CORE, children, fire, other_cores, pin
from bench.common import figure, latency_ms, machine, print_summary, serve_bot, write_results
from sandbox.slack import payloads
from sandbox.up import Sandbox

P99_GOAL_MS = 5.0
RATIO_GOAL = 0.1
READY_MARKERS = {"ours": "flk ready", "lazy": LAZY_READY, "inline": "flk ready"}
APP_DESCRIPTIONS = {
    "ours": "`flk serve` as it is",
    "lazy": "minimal Bolt AsyncApp (defaults) with app.command('/flk')(ack=..., lazy=[...]), served by aiohttp",
    "inline": "diagnosis: `flk serve` with Bolt's process_before_response=True (bot/service/app.py create_bolt_app)",
}
MODES = ("paced", "back-to-back")
WORKLOADS = ("isolated", "busy")
# -- the orchestration (this process) -------------------------------------------------------


def _slash_bodies(sandbox: Sandbox, texts: list[str]) -> list[str]:
    """Slash command forms as Slack sends them, each with its own trigger id and response URL."""
    ws = sandbox.slack.workspace
    channel = sandbox.slack.channel_id(sandbox.incident_channel)
    user = next(iter(ws.users))
    bodies = []
    for text in texts:
        form = payloads.slash_command(
            ws,
            command="/flk",
            text=text,
            user=user,
            channel=channel,
            response_url=ws.issue_response_url("commands", channel, user),
            trigger_id=ws.issue_trigger(user, channel),
        )
        bodies.append(urllib.parse.urlencode(form))
    return bodies


def _unknown_tenant(known: set[str]) -> str:
    name, n = "bench-unknown", 0
    while name in known:
        n += 1
        name = f"bench-unknown-{n}"
    return name


def _slack_activity(sandbox: Sandbox) -> int:
    """Messages (thread replies included) and ephemerals in the workspace: background work done."""
    emulator = sandbox.slack
    posts = sum(len(emulator.channel_messages(c, replies=True)) for c in emulator.workspace.channels)
    return posts + len(emulator.ephemerals())


def _triage_reports(sandbox: Sandbox) -> int:
    """Triage reports posted so far (each finished triage posts one, header "Triage · <tenant> · ")."""
    emulator = sandbox.slack
    return sum(
        1
        for c in emulator.workspace.channels
        for m in emulator.channel_messages(c, replies=True)
        if any(b.get("type") == "header" and b["text"]["text"].startswith("Triage · ") for b in m.blocks)
    )


@dataclass(frozen=True)
class Setup:
    concurrency: int
    interval: float
    measured: list[str]
    background: dict[str, list[str]]
    pin: bool


async def _measure(
    sandbox: Sandbox, pool: ProcessPoolExecutor, setup: Setup, app: str, mode: str, workload: str
) -> dict[str, Any]:
    command = None if app == "ours" else [sys.executable, "-m", "bench.ack_apps", app]
    secret = sandbox.slack_config.signing_secret
    warm_up = _slash_bodies(sandbox, ["help"] * setup.concurrency * 2)
    bodies = _slash_bodies(sandbox, setup.measured)
    background = _slash_bodies(sandbox, setup.background[workload])
    interval = setup.interval if mode == "paced" else None
    async with serve_bot(sandbox.env, command, ready_marker=READY_MARKERS[app]) as bot:
        if setup.pin:
            pin(bot.process.pid, {APP_CORE})
            for worker in children(bot.process.pid):
                pin(worker, other_cores())
        before, reports = _slack_activity(sandbox), _triage_reports(sandbox)
        samples, seconds = await asyncio.get_running_loop().run_in_executor(
            pool, fire, bot.events_url, secret, warm_up, bodies, setup.concurrency, interval, setup.pin, background
        )
        activity = _slack_activity(sandbox) - before
        finished = _triage_reports(sandbox) - reports
    failed = sum(1 for _, status, ok in samples if status != 200 or not ok)
    return {
        "requests": len(samples),
        "failed": failed,
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(samples) / seconds, 1),
        "slack_messages_meanwhile": activity,
        "background_triages": len(background),
        "background_triages_finished_in_window": finished,
        "latency": latency_ms(s for s, _, _ in samples),
        "all_seconds": [s for s, _, _ in samples],
    }


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": sum(r["requests"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "latency": latency_ms(s for r in runs for s in r.pop("all_seconds")),
        "p99_ms_by_round": [r["latency"]["p99_ms"] for r in runs],
        "runs": runs,
    }


def _summary(results: dict[str, Any], setup: Setup) -> list[dict[str, Any]]:
    rate = setup.concurrency / setup.interval
    triages = len(setup.background["busy"])
    goal = f"≤ {P99_GOAL_MS:g} ms and ≤ {RATIO_GOAL:g}× lazy"
    rows = []
    for mode, workload, label in (
        ("paced", "isolated", f"{rate:g} req/s, ack path isolated"),
        ("paced", "busy", f"{rate:g} req/s, while {triages} triages run"),
        ("back-to-back", "isolated", "back to back, ack path isolated"),
        ("back-to-back", "busy", f"back to back, while {triages} triages run"),
    ):
        by_app = {app: pooled["latency"] for app, pooled in results[mode][workload].items()}
        lazy = by_app["lazy"]
        for app, name in (("ours", "ours"), ("inline", "diagnosis, process_before_response=True")):
            if app not in by_app or (app == "inline" and mode != "paced"):
                continue
            mine = by_app[app]
            value = (
                f"{mine['p99_ms']:.1f} ms (p50 {mine['p50_ms']:.1f}, max {mine['max_ms']:.1f}); lazy "
                f"{lazy['p99_ms']:.1f} (p50 {lazy['p50_ms']:.1f}): {mine['p99_ms'] / lazy['p99_ms']:.2f}×"
            )
            met = mine["p99_ms"] <= P99_GOAL_MS and mine["p99_ms"] <= RATIO_GOAL * lazy["p99_ms"]
            rows.append(figure(f"ack p99 {name}, {label}", value, goal, met))
    return rows


async def _bench(
    requests: int, concurrency: int, interval: float, rounds: int, apps: tuple[str, ...], triages: int, pinned: bool
) -> dict:
    host = machine()
    results: dict[str, Any] = {}
    if pinned:
        pin(os.getpid(), other_cores())  # the sandbox (and what it starts) off the app's core
    async with Sandbox() as sandbox:
        tenants = sorted(sandbox.live.world.tenants)
        unknown = _unknown_tenant(set(tenants))
        background = {"isolated": [], "busy": [f"triage {tenants[i % len(tenants)]}" for i in range(triages)]}
        setup = Setup(concurrency, interval, [f"triage {unknown}"] * requests, background, pinned)
        runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, int)  # the load process starts now
            for round_no in range(rounds):
                order = apps if round_no % 2 == 0 else apps[::-1]
                for mode in MODES:
                    for workload in WORKLOADS:
                        for app in order:
                            run = await _measure(sandbox, pool, setup, app, mode, workload)
                            runs.setdefault((mode, workload, app), []).append(run)
                            lat = run["latency"]
                            print(
                                f"  round {round_no + 1} {mode:12} {workload:8} {app:6}: p50 {lat['p50_ms']} ms, "
                                f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms, {run['requests_per_s']} req/s, "
                                f"failed {run['failed']}",
                                flush=True,
                            )
    for (mode, workload, app), app_runs in runs.items():
        results.setdefault(mode, {}).setdefault(workload, {})[app] = _pooled(app_runs)
    return {
        "machine": host,
        "world": "sandbox/worlds/default.yaml",
        "requests_per_measurement": requests,
        "concurrency": concurrency,
        "paced_interval_s": interval,
        "paced_rate_per_s": concurrency / interval,
        "rounds": rounds,
        "background_triages": triages,
        "pinned": (
            f"app under test (every thread) on core {APP_CORE}; load generator, sandbox and worker processes "
            f"on cores {sorted(other_cores())}"
            if pinned
            else "not pinned"
        ),
        "tenants": tenants,
        "unknown_tenant": unknown,
        "apps": {name: APP_DESCRIPTIONS[name] for name in apps},
        "method": (
            "client-side latency (send of a signed request to the response read) from a separate load "
            "process; each app a fresh process per measurement, with the sandbox env and its own SQLite file; "
            "warm-up of 2x concurrency `/flk help` first; figures pooled over the rounds, which alternate "
            "which app goes first"
        ),
        "results": results,
        "summary": _summary(results, setup),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between a paced sender's requests")
    parser.add_argument("--rounds", type=int, default=2, help="rounds alternate which app goes first")
    parser.add_argument("--triages", type=int, default=20, help="triages running while the busy workload is measured")
    parser.add_argument(
        "--pin", action=argparse.BooleanOptionalAction, default=len(os.sched_getaffinity(0)) >= 2, help="pin cores"
    )
    parser.add_argument("--no-diagnosis", action="store_true", help="skip ours with process_before_response=True")
    args = parser.parse_args()
    apps = ("ours", "lazy") if args.no_diagnosis else ("ours", "lazy", "inline")
    report = asyncio.run(
        _bench(args.requests, args.concurrency, args.interval, args.rounds, apps, args.triages, args.pin)
    )
    path = write_results("ack", report)
    print(f"ack latency -> {path}")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
