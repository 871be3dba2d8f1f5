"""One measured WORM operation in a process of its own, for ``bench.bench_worm``.

Run: ``python -m bench.worm_child OP TENANT --root ROOT --day DAY [--index MODE] [--jobs N]``;
prints the result as JSON. Imports only the scanner, so that the wall time the parent
measures (interpreter start included) is what a one-off query costs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import resource
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from integrations.worm import ScanStats, WormScanner, build_index

CSV_FIELDS = ("ts", "tenant_id", "pcs_id", "D_hat", "coh_star", "verify_outcome", "reason", "policy_version")
WEEK = timedelta(days=7)


def day_window(day: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(milliseconds=1)


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss
    # across fork and exec, so a child would report the bench driver's own peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats(stats: ScanStats) -> dict[str, Any]:
    return {
        "files_read": stats.files,
        "files_skipped": stats.files_skipped,
        "files_through_index": stats.indexed,
        "indexes_built": stats.indexes_built,
        "bytes_read": stats.bytes,
        "lines_read": stats.lines,
        "lines_decoded": stats.parsed,
        "malformed": stats.malformed,
    }


def _csv(records: list[Any]) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    writer.writerows([getattr(r, f) for f in CSV_FIELDS] for r in records)
    return len(buf.getvalue())


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (build_index's workers): on a
    machine shared with other work, the figure that load changes least."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def run(op: str, tenant: str, root: Path, day: str, index: str, jobs: int) -> dict[str, Any]:
    scanner = WormScanner(root, index=index)  # type: ignore[arg-type]
    start, end = day_window(day)
    began, cpu = time.perf_counter(), cpu_s()
    if op == "scan":  # the day's escalations of one tenant, exactly
        result = await scanner.window(tenant, start=start, end=end, outcome="escalated")
        out: dict[str, Any] = {
            "records": len(result.records),
            "pcs_ids": [r.pcs_id for r in result.records],
            "all_match": all(r.tenant_id == tenant and r.verify_outcome == "escalated" for r in result.records),
            **_stats(result.stats),
        }
    elif op in ("export", "export7"):  # the newest 1,000 escalations as CSV, over the day or the week
        since = end - WEEK if op == "export7" else start
        result = await scanner.newest(tenant, start=since, end=end, n=1000)
        out = {
            "records": len(result.records),
            "days_spanned": len({r.ts.date() for r in result.records}),
            "csv_bytes": _csv(result.records),
            **_stats(result.stats),
        }
    elif op == "counts":
        counts = await scanner.outcome_counts(tenant, start=start, end=end)
        out = {"counts": counts.counts, **_stats(counts.stats)}
    elif op == "index":
        first = date.fromisoformat(day)
        report = build_index(root, jobs=jobs, first=first, last=first)
        out = {"built": report.built, "bytes": report.bytes, "build_s": report.seconds, "summary": report.summary()}
    else:
        raise SystemExit(f"unknown op {op}")
    return out | {"op_s": time.perf_counter() - began, "cpu_s": cpu_s() - cpu, "maxrss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op", choices=("scan", "export", "export7", "counts", "index"))
    parser.add_argument("tenant")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--day", required=True)
    parser.add_argument("--index", choices=("build", "use", "off"), default="use")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.op, args.tenant, args.root, args.day, args.index, args.jobs))))


if __name__ == "__main__":
    main()
