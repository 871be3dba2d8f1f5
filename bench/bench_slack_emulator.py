"""chat.postMessage throughput of the Slack emulator, driven by one real AsyncWebClient.

Run: ``python -m bench.bench_slack_emulator [--calls N] [--concurrency C]``. Rate limits are
off, posts are spread over several channels, everything stays on loopback. Two setups:
the emulator in its own process (as Slack would be), and in the client's process (as in
the tests). Writes ``bench/results/slack_emulator.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import slack_sdk
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import figure
from sandbox.slack import SlackConfig, SlackEmulator

RESULTS = Path(__file__).parent / "results" / "slack_emulator.json"
CHANNELS = 8
GOAL = 2000.0


def bench_config() -> SlackConfig:
    return SlackConfig(channels={f"C_BENCH{i}": f"bench-{i}" for i in range(CHANNELS)}, rate_limits_enabled=False)


def _serve(conn: Connection) -> None:
    """Child process: run an emulator until the parent says stop."""

    async def main() -> None:
        async with SlackEmulator(bench_config()) as emulator:
            conn.send(emulator.api_url)
            await asyncio.to_thread(conn.recv)

    asyncio.run(main())


async def post_many(api_url: str, token: str, calls: int, concurrency: int) -> float:
    """Calls per second for ``calls`` posts, ``concurrency`` in flight, one shared session."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        client = AsyncWebClient(token=token, base_url=api_url, session=session)

        async def worker(todo: Iterator[int]) -> None:
            for i in todo:
                await client.chat_postMessage(channel=f"C_BENCH{i % CHANNELS}", text=f"message {i}")

        warm_up = iter(range(concurrency * 4))  # opens the connections before the clock starts
        await asyncio.gather(*(worker(warm_up) for _ in range(concurrency)))
        todo = iter(range(calls))
        started = time.perf_counter()
        await asyncio.gather(*(worker(todo) for _ in range(concurrency)))
        return calls / (time.perf_counter() - started)


def separate_process(calls: int, concurrency: int, rounds: int) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the emulator process did not start within 30 s")
        api_url = parent.recv()
        token = bench_config().bot_token
        return [asyncio.run(post_many(api_url, token, calls, concurrency)) for _ in range(rounds)]
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


async def same_process(calls: int, concurrency: int) -> float:
    async with SlackEmulator(bench_config()) as emulator:
        rate = await post_many(emulator.api_url, emulator.config.bot_token, calls, concurrency)
        posted = sum(len(emulator.channel_messages(f"C_BENCH{i}")) for i in range(CHANNELS))
        if posted != calls + concurrency * 4:
            raise RuntimeError(f"{posted} messages stored for {calls} calls and the warm-up")
        return rate


def summary(rates: list[float]) -> dict[str, float]:
    return {"best": round(max(rates), 1), "median": round(statistics.median(rates), 1)}


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "slack_sdk": slack_sdk.version.__version__,
    }


def results_of(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f}/s (best {max(rates):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="the machine may be shared: best and median")
    opts = parser.parse_args()
    load = os.getloadavg()[0]
    separate = separate_process(opts.calls, opts.concurrency, opts.rounds)
    same = [asyncio.run(same_process(opts.calls, opts.concurrency)) for _ in range(opts.rounds)]
    results = {
        "benchmark": "chat.postMessage calls/s, one AsyncWebClient, shared aiohttp session, loopback",
        "calls": opts.calls,
        "concurrency": opts.concurrency,
        "channels": CHANNELS,
        "goal_calls_per_s": GOAL,
        "rounds": opts.rounds,
        "separate_process_calls_per_s": summary(separate),
        "same_process_calls_per_s": summary(same),
        "machine": {**machine(), "load_average_1m_at_start": round(load, 2)},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": [
            figure(
                f"chat.postMessage calls/s, emulator in its own process ({opts.rounds} rounds)",
                f"median {results_of(separate)}",
                f"≥ {GOAL:g}/s",
                statistics.median(separate) >= GOAL,
            ),
            figure(
                "chat.postMessage calls/s, emulator in the client's process (as in the tests)",
                f"median {results_of(same)}",
                f"≥ {GOAL:g}/s",
                statistics.median(same) >= GOAL,
            ),
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
