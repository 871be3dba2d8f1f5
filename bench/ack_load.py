"""The load generator of `bench.bench_ack` (run in a spawned process of its own) and the core
pinning that keeps it off the core of the app under test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from slack_sdk.signature import SignatureVerifier

ACK_MARK = "started"
Sample = tuple[float, int, bool]  # seconds, HTTP status, whether the body is the expected ack
APP_CORE = 0


def other_cores() -> set[int]:
    return (os.sched_getaffinity(0) - {APP_CORE}) or {APP_CORE}


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of ``pid`` onto ``cores`` (a process's affinity is per thread)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cores)


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def fire(
    url: str,
    secret: str,
    warm_up: list[str],
    bodies: list[str],
    concurrency: int,
    interval: float | None,
    pinned: bool,
    background: list[str],
) -> tuple[list[Sample], float]:
    """Send ``warm_up`` back to back (not measured), then ``background`` all at once (not
    measured, not awaited before the rest), then ``bodies``: paced every ``interval``
    seconds per sender, or back to back when ``interval`` is None. Returns the samples and the
    seconds the measured part took."""
    if pinned:
        pin(os.getpid(), other_cores())
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
