"""Ack latency of `/flk triage` under 50 concurrent senders: our bot beside a minimal Bolt app
that acks through a lazy listener, in the same run.

Run: ``python -m bench.bench_ack [--requests 1000] [--concurrency 50] [--interval 0.25] [--rounds 2]``.

Three kinds of process, so that no event loop serves both sides of a measurement:
- this one runs the sandbox (default world: Slack emulator, Prometheus, Kubernetes fake...)
  and prepares the slash commands (trigger ids and response URLs issued by the emulator);
- the app under test, a fresh process per measurement, with the sandbox's env: ``flk serve``
  (ours), the lazy-listener app, and, as a diagnosis, ours with Bolt's
  ``process_before_response=True`` (``python -m bench.bench_ack --serve lazy|inline``);
- the load generator, a spawned process: the senders share one aiohttp session and sign each
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

The lazy-listener app is Bolt with its defaults (``process_before_response=False``): its
``ack=`` function acks with the same text; its ``lazy=`` function hands the request to the
bot's own Bolt app (a ``Bot`` started in the same process, not listening), so both apps start
the same background work and only the ack path differs. Writes ``bench/results/ack.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import figure, latency_ms, machine, print_summary, serve_bot, write_results
from bot import cli
from bot.service import app as bot_app
from bot.service.app import Bot
from bot.service.settings import load_settings
from sandbox.slack import payloads
from sandbox.up import Sandbox

P99_GOAL_MS = 5.0
RATIO_GOAL = 0.1
LAZY_READY = "lazy ready"
READY_MARKERS = {"ours": "flk ready", "lazy": LAZY_READY, "inline": "flk ready"}
APP_DESCRIPTIONS = {
    "ours": "`flk serve` as it is",
    "lazy": "minimal Bolt AsyncApp (defaults) with app.command('/flk')(ack=..., lazy=[...]), served by aiohttp",
    "inline": "diagnosis: `flk serve` with Bolt's process_before_response=True (bot/service/app.py create_bolt_app)",
}
MODES = ("paced", "back-to-back")
WORKLOADS = ("isolated", "busy")
# The lazy app acks with the text ours acks with (bot/slack/listeners_commands.py).
ACK_TEXT = ":hourglass_flowing_sand: `/flk triage` started…"
ACK_MARK = "started"

Sample = tuple[float, int, bool]  # seconds, HTTP status, whether the body is the expected ack
APP_CORE = 0


def _other_cores() -> set[int]:
    return (os.sched_getaffinity(0) - {APP_CORE}) or {APP_CORE}


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of ``pid`` onto ``cores`` (a process's affinity is per thread)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cores)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(p) for p in (task / "children").read_text().split()}
    return found


# -- the lazy-listener app (its own process) ------------------------------------------------


async def _run_lazy_app() -> None:
    settings, config = load_settings()
    # The bot itself, not listening for Slack: its own /flk listener does the background work, so
    # that both apps start the same work and only the ack path differs.
    inner = Bot(settings, config)
    await inner.start(http=False)
    assert inner.app is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret.get_secret_value())

    async def ack_at_once(ack: Any) -> None:
        await ack(text=ACK_TEXT)

    async def work_later(request: AsyncBoltRequest) -> None:
        assert inner.app is not None
        await inner.app.async_dispatch(AsyncBoltRequest(body=request.raw_body, headers=request.headers))

    app.command("/flk")(ack=ack_at_once, lazy=[work_later])

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"{LAZY_READY}: http://{settings.host}:{settings.port}/slack/events", flush=True)
    await stop.wait()
    await runner.cleanup()
    await inner.stop()


def _serve_inline() -> int:
    """`flk serve` with one change, Bolt's process_before_response=True: the listener (which acks
    and hands the work to a task) runs before the response instead of being polled for its ack."""
    original = bot_app.AsyncApp

    def inline_app(**kwargs: Any) -> AsyncApp:
        return original(**{**kwargs, "process_before_response": True})

    bot_app.AsyncApp = inline_app  # type: ignore[misc, assignment]
    return cli.main(["serve"])


# -- the load generator (its own process) ---------------------------------------------------


def fire(
    url: str,
    secret: str,
    warm_up: list[str],
    bodies: list[str],
    concurrency: int,
    interval: float | None,
    pin: bool,
    background: list[str],
) -> tuple[list[Sample], float]:
    """Send ``warm_up`` back to back (not measured), then ``background`` all at once (not
    measured, not awaited before the rest), then ``bodies``: paced every ``interval``
    seconds per sender, or back to back when ``interval`` is None. Returns the samples and the
    seconds the measured part took."""
    if pin:
        _pin(os.getpid(), _other_cores())
    return asyncio.run(_fire(url, secret, warm_up, bodies, concurrency, interval, background))


async def _fire(
    url: str,
    secret: str,
    warm_up: list[str],
    bodies: list[str],
    concurrency: int,
    interval: float | None,
    background: list[str],
) -> tuple[list[Sample], float]:
    verifier = SignatureVerifier(secret)
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=0 if interval else concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(body: str) -> Sample:
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": verifier.generate_signature(timestamp=timestamp, body=body),
            }
            data = body.encode()
            started = time.perf_counter()
            try:
                async with session.post(url, data=data, headers=headers) as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError):
                return time.perf_counter() - started, 0, False
            return time.perf_counter() - started, response.status, ACK_MARK in text

        async def back_to_back(todo: Iterator[str], out: list[Sample]) -> None:
            for body in todo:
                out.append(await send(body))

        warm = iter(warm_up)
        await asyncio.gather(*(back_to_back(warm, []) for _ in range(concurrency)))
        started = [asyncio.create_task(send(body)) for body in background]
        began = time.perf_counter()
        if interval is None:
            samples: list[Sample] = []
            todo = iter(bodies)
            await asyncio.gather(*(back_to_back(todo, samples) for _ in range(concurrency)))
            seconds = time.perf_counter() - began
            await asyncio.gather(*started)
            return samples, seconds
        # Request i is sender i % concurrency's (i // concurrency)-th, at its phase plus that many intervals.
        phases = [random.uniform(0, interval) for _ in range(concurrency)]
        at = sorted((phases[i % concurrency] + (i // concurrency) * interval, i) for i in range(len(bodies)))
        tasks = []
        for offset, i in at:
            delay = began + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(bodies[i])))
        paced = list(await asyncio.gather(*tasks))
        seconds = time.perf_counter() - began
        await asyncio.gather(*started)
        return paced, seconds


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
    command = None if app == "ours" else [sys.executable, "-m", "bench.bench_ack", "--serve", app]
    secret = sandbox.slack_config.signing_secret
    warm_up = _slash_bodies(sandbox, ["help"] * setup.concurrency * 2)
    bodies = _slash_bodies(sandbox, setup.measured)
    background = _slash_bodies(sandbox, setup.background[workload])
    interval = setup.interval if mode == "paced" else None
    async with serve_bot(sandbox.env, command, ready_marker=READY_MARKERS[app]) as bot:
        if setup.pin:
            _pin(bot.process.pid, {APP_CORE})
            for worker in _children(bot.process.pid):
                _pin(worker, _other_cores())
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
    requests: int, concurrency: int, interval: float, rounds: int, apps: tuple[str, ...], triages: int, pin: bool
) -> dict:
    host = machine()
    results: dict[str, Any] = {}
    if pin:
        _pin(os.getpid(), _other_cores())  # the sandbox (and what it starts) off the app's core
    async with Sandbox() as sandbox:
        tenants = sorted(sandbox.live.world.tenants)
        unknown = _unknown_tenant(set(tenants))
        background = {"isolated": [], "busy": [f"triage {tenants[i % len(tenants)]}" for i in range(triages)]}
        setup = Setup(concurrency, interval, [f"triage {unknown}"] * requests, background, pin)
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
            f"on cores {sorted(_other_cores())}"
            if pin
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
    parser.add_argument("--serve", choices=("lazy", "inline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "lazy":
        asyncio.run(_run_lazy_app())
        return
    if args.serve == "inline":
        raise SystemExit(_serve_inline())
    apps = ("ours", "lazy") if args.no_diagnosis else ("ours", "lazy", "inline")
    report = asyncio.run(
        _bench(args.requests, args.concurrency, args.interval, args.rounds, apps, args.triages, args.pin)
    )
    path = write_results("ack", report)
    print(f"ack latency -> {path}")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
