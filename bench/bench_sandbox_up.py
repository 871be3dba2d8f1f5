"""Start-to-ready time of the whole sandbox for the default world.

Run: ``python -m bench.bench_sandbox_up [--runs N]``. Each run starts a ``Sandbox`` (every
part on loopback, Prometheus answering a scraped sample), records when each part answered,
and stops it. Writes ``bench/results/sandbox_up.json`` with the median and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench.common import figure, machine, write_results
from sandbox.up import Sandbox

GOAL_S = 10.0


async def _one_run() -> tuple[float, dict[str, float]]:
    began = time.perf_counter()
    async with Sandbox() as sandbox:
        ready = time.perf_counter() - began
        timings = dict(sandbox.timings)
    return ready, timings


async def _bench(runs: int) -> dict[str, Any]:
    host = machine()
    results = [await _one_run() for _ in range(runs)]
    totals = [ready for ready, _ in results]
    parts = sorted({part for _, timings in results for part in timings})
    median = statistics.median(totals)
    median_parts = {part: round(statistics.median(t[part] for _, t in results if part in t), 3) for part in parts}
    slowest = max(median_parts, key=median_parts.__getitem__) if median_parts else "?"
    value = f"{median:.2f} s (worst {max(totals):.2f}; slowest part {slowest} {median_parts.get(slowest, 0):.2f} s)"
    return {
        "machine": host,
        "world": "sandbox/worlds/default.yaml",
        "runs": runs,
        "ready_s": [round(x, 3) for x in totals],
        "median_ready_s": round(median, 3),
        "goal_s": GOAL_S,
        "meets_goal": median < GOAL_S,
        # Seconds from the start until each part answered, median over the runs.
        "median_part_ready_s": median_parts,
        "summary": [
            figure(
                f"sandbox start to ready, default world (median of {runs})", value, f"≤ {GOAL_S:g} s", median < GOAL_S
            )
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(_bench(args.runs))
    path = write_results("sandbox_up", report)
    print(f"sandbox up: median {report['median_ready_s']} s over {args.runs} runs -> {path}")


if __name__ == "__main__":
    main()
