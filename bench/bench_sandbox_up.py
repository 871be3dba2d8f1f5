"""Start-to-ready time of the whole sandbox for the default world.

Run: ``python -m bench.bench_sandbox_up [--runs N]``. Each run starts a ``Sandbox`` (every
part on loopback, Prometheus answering a scraped sample), records when each part answered,
and stops it. Writes ``bench/results/sandbox_up.json`` with the median and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from sandbox.up import Sandbox

RESULTS = Path(__file__).parent / "results" / "sandbox_up.json"
GOAL_S = 10.0


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def _one_run() -> tuple[float, dict[str, float]]:
    began = time.perf_counter()
    async with Sandbox() as sandbox:
        ready = time.perf_counter() - began
        timings = dict(sandbox.timings)
    return ready, timings


async def _bench(runs: int) -> dict[str, Any]:
    machine = _machine()
    results = [await _one_run() for _ in range(runs)]
    totals = [ready for ready, _ in results]
    parts = sorted({part for _, timings in results for part in timings})
    median = statistics.median(totals)
    return {
        "machine": machine,
        "world": "sandbox/worlds/default.yaml",
        "runs": runs,
        "ready_s": [round(x, 3) for x in totals],
        "median_ready_s": round(median, 3),
        "goal_s": GOAL_S,
        "meets_goal": median < GOAL_S,
        # Seconds from the start until each part answered, median over the runs.
        "median_part_ready_s": {
            part: round(statistics.median(t[part] for _, t in results if part in t), 3) for part in parts
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(_bench(args.runs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"sandbox up: median {report['median_ready_s']} s over {args.runs} runs -> {RESULTS}")


if __name__ == "__main__":
    main()
