"""`flk serve` (the front) and `flk worker` start-up time and idle memory, against a running
sandbox of the default world.

Run: ``python -m bench.bench_serve_footprint [--runs N] [--idle S]``. Each run spawns
``flk serve --workers 1`` (the installed console script) with the sandbox's environment and
times, from the spawn, the "flk ready" line on stdout and the first 200 from ``/healthz``; after
``--idle`` seconds without traffic it reads VmRSS (and VmHWM, the peak) of the front and of its
worker process from /proc/<pid>/status. Then the same for ``flk worker`` alone (its own
``/healthz``): its start-up and idle RSS. Each is stopped with SIGTERM. A worker's RSS grows
once it has run a triage (the Kubernetes client's models, Prometheus' client, charts); the
figure here is the idle one, as the issue asks. Writes ``bench/results/serve_footprint.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import figure, flk_command, machine, print_summary, rss_mb, serve_bot, write_results
from sandbox.up import Sandbox

READY_GOAL_S = 1.5
FRONT_RSS_GOAL_MB = 100.0
WORKER_RSS_GOAL_MB = 120.0


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


async def _front_run(env: dict[str, str], idle_s: float) -> dict[str, float]:
    async with serve_bot(env, flk_command("serve", "--workers", "1")) as bot:
        await asyncio.sleep(idle_s)
        [worker] = _children(bot.pid)
        return {
            "ready_line_s": round(bot.ready_line_s, 3),
            "healthz_s": round(bot.healthz_s, 3),
            "front_idle_rss_mb": round(rss_mb(bot.pid), 1),
            "front_peak_rss_mb": round(_vm_hwm_mb(bot.pid), 1),
            "worker_idle_rss_mb": round(rss_mb(worker), 1),
        }


async def _worker_run(env: dict[str, str], idle_s: float) -> dict[str, float]:
    async with serve_bot(env, flk_command("worker"), ready_marker="flk worker ready") as bot:
        await asyncio.sleep(idle_s)
        return {
            "ready_line_s": round(bot.ready_line_s, 3),
            "healthz_s": round(bot.healthz_s, 3),
            "idle_rss_mb": round(rss_mb(bot.pid), 1),
            "peak_rss_mb": round(_vm_hwm_mb(bot.pid), 1),
        }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


async def _bench(runs: int, idle_s: float) -> dict[str, Any]:
    host = machine()
    async with Sandbox() as sandbox:
        fronts, workers = [], []
        for _ in range(runs):
            fronts.append(await _front_run(sandbox.env, idle_s))
            await asyncio.sleep(0.5)
            workers.append(await _worker_run(sandbox.env, idle_s))
            await asyncio.sleep(0.5)
    front, worker = _median(fronts), _median(workers)
    worst_front = max(r["front_idle_rss_mb"] for r in fronts)
    worst_worker = max(max(r["idle_rss_mb"] for r in workers), max(r["worker_idle_rss_mb"] for r in fronts))
    return {
        "machine": {**host, "load_average_at_end": machine()["load_average"]},
        "world": "sandbox/worlds/default.yaml",
        "method": __doc__,
        "front_runs": fronts,
        "worker_runs": workers,
        "median": {"front": front, "worker": worker},
        "summary": [
            figure(
                "serve (front): start-up to /healthz (median)",
                f"{front['healthz_s']:.2f} s",
                f"≤ {READY_GOAL_S:g} s",
                front["healthz_s"] <= READY_GOAL_S,
            ),
            figure(
                "worker: start-up to /healthz (median)",
                f"{worker['healthz_s']:.2f} s",
                f"≤ {READY_GOAL_S:g} s",
                worker["healthz_s"] <= READY_GOAL_S,
            ),
            figure(
                f"front: idle RSS after {idle_s:g} s (worst of {runs})",
                f"{worst_front:.1f} MB",
                f"≤ {FRONT_RSS_GOAL_MB:g} MB",
                worst_front <= FRONT_RSS_GOAL_MB,
            ),
            figure(
                f"worker: idle RSS after {idle_s:g} s (worst of {2 * runs})",
                f"{worst_worker:.1f} MB",
                f"≤ {WORKER_RSS_GOAL_MB:g} MB",
                worst_worker <= WORKER_RSS_GOAL_MB,
            ),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    args = parser.parse_args()
    began = time.monotonic()
    report = asyncio.run(_bench(args.runs, args.idle))
    path = write_results("serve_footprint", report)
    print(f"serve footprint ({time.monotonic() - began:.0f} s) -> {path}")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
