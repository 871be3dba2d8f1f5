"""Accuracy of triage and diagnose on generated worlds nobody tuned for.

Run: ``python -m bench.bench_accuracy [--worlds 200] [--first-seed 1] [--workers 2] [--results accuracy]``. Each seed's
world (``sandbox.world.generate``: 3–8 tenants, healthy or in one of the runbook's eleven causes,
with noise and some isolation breaches) runs in its own sandbox, so that no world's tenants
change another's evidence (other tenants breaching, log shares, the policy registry). Worker
processes take the seeds round robin; each starts its next sandbox while it scores the current
one (``bench/accuracy_run.py``). Every tenant: triage, diagnose steered by that triage (the bot's
default: the scenarios triage left plausible), diagnose ``all``; the verdicts' typed scenario,
inconclusive pair and cause (``bench/accuracy_labels.py``) are compared with the truth
(``bench/accuracy_table.py``; an inconclusive triage is right when its pair holds the truth).

Goals (reported, not tuned for): triage's scenario right for ≥ 98% of breaching tenants,
diagnose's cause for ≥ 95%, no healthy tenant called breaching, no breaching one called healthy.
Writes ``bench/results/accuracy.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.accuracy_run import PROBE_TIMEOUT_S, WorldResult, run_worker
from bench.accuracy_table import misses_text, summary, tabulate
from bench.common import code_version, machine, print_summary, write_results

GOAL_RUN_S = 30 * 60


def _shares(seeds: list[int], workers: int) -> list[list[int]]:
    return [seeds[i::workers] for i in range(workers) if seeds[i::workers]]


def run(worlds: int, first_seed: int, workers: int) -> dict[str, Any]:
    host, code = machine(), code_version()
    seeds = list(range(first_seed, first_seed + worlds))
    began = time.monotonic()
    results: list[WorldResult] = []
    cpu_s = 0.0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for share in pool.map(run_worker, _shares(seeds, workers)):
            results.extend(share.worlds)
            cpu_s += share.cpu_s
    run_s = time.monotonic() - began
    results.sort(key=lambda w: w.seed)
    tables = tabulate(r for w in results for r in w.tenants)
    return {
        "machine": host,
        "code": code,
        "method": (
            f"seeds {seeds[0]}..{seeds[-1]} of sandbox.world.generate, one sandbox per world, {workers} worker "
            "process(es), the next sandbox starting while the current world is scored; per tenant run_triage, "
            "run_diagnose steered by that triage (Lead.plausible), run_diagnose 'all'; verdicts read from their "
            f"typed scenario / inconclusive / cause (bench/accuracy_labels.py); probe timeout {PROBE_TIMEOUT_S:g} s"
        ),
        "worlds": len(results),
        "isolation_worlds": sum(any(r.truth.group for r in w.tenants) for w in results),
        "run_s": round(run_s, 1),
        # Load-independent: what the run cost; on 2 otherwise idle cores it takes about half this.
        "cpu_s": round(cpu_s, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "median_start_s": round(statistics.median(w.start_s for w in results), 2),
        "median_score_s": round(statistics.median(w.score_s for w in results), 2),
        **tables,
        "summary": summary(tables, run_s, cpu_s, len(results), GOAL_RUN_S),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=200, help="generated worlds to score (seeds from --first-seed)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="processes, each with one sandbox at a time")
    parser.add_argument(
        "--results", default="accuracy", help="bench/results/<name>.json (e.g. accuracy_dev for development seeds)"
    )
    args = parser.parse_args()
    if args.worlds < 1 or args.workers < 1:
        parser.error("--worlds and --workers must be at least 1")
    report = run(args.worlds, args.first_seed, args.workers)
    path = write_results(args.results, report)
    print(f"accuracy -> {path}")
    print(misses_text(report))
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
