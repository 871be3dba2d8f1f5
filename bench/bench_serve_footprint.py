"""`flk serve` start-up time and idle memory, against a running sandbox of the default world.

Run: ``python -m bench.bench_serve_footprint [--runs N] [--idle S]``. Each run spawns
``flk serve`` (the installed console script) with the sandbox's environment and times, from
the spawn, the "flk ready" line on stdout and the first 200 from ``/healthz``; after ``--idle``
seconds without traffic it reads VmRSS (and VmHWM, the peak) from /proc/<pid>/status, then
stops the bot with SIGTERM. Writes ``bench/results/serve_footprint.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import figure, machine, print_summary, rss_mb, serve_bot, write_results
from sandbox.up import Sandbox

READY_GOAL_S = 2.0
RSS_GOAL_MB = 120.0


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _one_run(env: dict[str, str], idle_s: float) -> dict[str, float]:
    async with serve_bot(env) as bot:
        await asyncio.sleep(idle_s)
        rss, peak = rss_mb(bot.pid), _vm_hwm_mb(bot.pid)
        return {
            "ready_line_s": round(bot.ready_line_s, 3),
            "healthz_s": round(bot.healthz_s, 3),
            "idle_rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1),
        }


async def _bench(runs: int, idle_s: float) -> dict[str, Any]:
    host = machine()
    async with Sandbox() as sandbox:
        results = []
        for _ in range(runs):
            results.append(await _one_run(sandbox.env, idle_s))
            await asyncio.sleep(0.5)
    medians = {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}
    worst_rss = max(r["idle_rss_mb"] for r in results)
    return {
        "machine": host,
        "world": "sandbox/worlds/default.yaml",
        "method": (
            "flk serve spawned with the sandbox env; times from the spawn (interpreter start and imports "
            f"included); RSS from /proc/<pid>/status after {idle_s:g} s idle"
        ),
        "runs": results,
        "median": medians,
        "summary": [
            figure(
                "serve: start-up to /healthz (median)",
                f"{medians['healthz_s']:.2f} s",
                f"≤ {READY_GOAL_S:g} s",
                medians["healthz_s"] <= READY_GOAL_S,
            ),
            figure(
                "serve: start-up to 'flk ready' line (median)",
                f"{medians['ready_line_s']:.2f} s",
                f"≤ {READY_GOAL_S:g} s",
                medians["ready_line_s"] <= READY_GOAL_S,
            ),
            figure(
                f"serve: idle RSS after {idle_s:g} s (worst of {runs})",
                f"{worst_rss:.1f} MB",
                f"≤ {RSS_GOAL_MB:g} MB",
                worst_rss <= RSS_GOAL_MB,
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
