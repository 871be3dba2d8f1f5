"""Trend-chart render time: one PNG with the escalation and signature-error ratios over 1 h / 6 h
/ 24 h (2 rows x 3 panels), the SLO lines and two markers.

Run: ``python -m bench.bench_charts [--runs 30]``. The input is what a diagnosis carries: two
24 h series at triage's 2 min step (721 points each) and a rollout and a key-rotation marker.
Measured: the first chart in a fresh process (matplotlib's import and the first render apart,
in a child process), then ``--runs`` charts in this process after it, wall and CPU time each.
Writes ``bench/results/charts.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from typing import Any

from bench.common import figure, latency_ms, machine, print_summary, write_results
from commands.charts import Marker, render_trends

GOAL_MS = 300.0
SLOS = {"escalations": 0.02, "signature errors": 0.01}


def chart_input(now: float, seed: int = 7) -> tuple[dict[str, list[tuple[float, float]]], list[Marker]]:
    rng = random.Random(seed)
    times = [now - 86400 + 120 * i for i in range(721)]
    breach = now - 2400
    series = {
        "escalations": [(t, (0.041 if t >= breach else 0.004) * rng.uniform(0.9, 1.1)) for t in times],
        "signature errors": [(t, 0.001 * rng.uniform(0.9, 1.1)) for t in times],
    }
    return series, [Marker("policy v42", now - 1800), Marker("KeyRotated", now - 2700)]


def render_once() -> tuple[float, float, int]:
    """(wall s, CPU s, PNG bytes) of one chart."""
    now = time.time()
    series, markers = chart_input(now)
    wall, cpu = time.perf_counter(), time.process_time()
    png = render_trends(series, SLOS, markers, title="tenant", now=now)
    return time.perf_counter() - wall, time.process_time() - cpu, len(png)


def _first_chart_child() -> None:
    began = time.perf_counter()
    import matplotlib.figure  # noqa: F401  (what the first chart pays for)

    imported = time.perf_counter() - began
    wall, cpu, size = render_once()
    print(json.dumps({"import_s": imported, "render_s": wall, "render_cpu_s": cpu, "png_bytes": size}))


def first_chart() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_charts", "--first-chart-child"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(runs: int) -> dict[str, Any]:
    started_machine = machine()
    cold = first_chart()
    render_once()  # this process's first chart: imports and font cache
    walls, cpus, sizes = [], [], []
    for _ in range(runs):
        wall, cpu, size = render_once()
        walls.append(wall)
        cpus.append(cpu)
        sizes.append(size)
    warm = latency_ms(walls)
    warm_cpu = latency_ms(cpus)
    cold_render_ms = round(cold["render_s"] * 1000, 1)
    return {
        "machine": started_machine,
        "method": (
            "render_trends on two 721-point 24 h series with two markers, 2x3 panels at 1080x495 px; "
            f"{runs} charts after one warm-up in this process, plus the first chart of a fresh child process"
        ),
        "runs": runs,
        "warm_wall": warm,
        "warm_cpu": warm_cpu,
        "first_chart": {
            "import_ms": round(cold["import_s"] * 1000, 1),
            "render_ms": cold_render_ms,
            "render_cpu_ms": round(cold["render_cpu_s"] * 1000, 1),
        },
        "png_bytes": max(sizes),
        "summary": [
            figure(
                "chart render, warm (p50)",
                f"{warm['p50_ms']:.0f} ms (p90 {warm['p90_ms']:.0f}, max {warm['max_ms']:.0f}; "
                f"CPU p50 {warm_cpu['p50_ms']:.0f})",
                f"≤ {GOAL_MS:.0f} ms per chart",
                warm["p50_ms"] <= GOAL_MS,
            ),
            figure(
                "chart render, first in a fresh process",
                f"{cold_render_ms:.0f} ms render + {cold['import_s'] * 1000:.0f} ms matplotlib import (once)",
                f"≤ {GOAL_MS:.0f} ms per chart",
                cold_render_ms <= GOAL_MS,
            ),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--first-chart-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_chart_child:
        _first_chart_child()
        return
    report = run(args.runs)
    path = write_results("charts", report)
    print(f"wrote {path}")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
