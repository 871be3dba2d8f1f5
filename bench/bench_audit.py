"""The audit log on the confirm-click path: one append per plan, confirmation, application.

Run: ``python -m bench.bench_audit`` (writes ``bench/results/audit.json``). Measures, in a temp
dir on the disk the results folder lives on: single appends with fsync (the default) and
without, ``append_async`` from an event loop, four processes appending at once (flock), and
``verify`` over 100,000 records.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, figure, latency_ms, machine, print_summary, write_results
from integrations.audit import AuditLog, verify

DETAILS = {
    "plan": "3f2a9c1d7b0e",
    "objects": [{"name": "tenant-acme", "changes": [{"key": "token_rate", "before": "100", "after": "200"}]}],
    "restart": None,
}
APPENDS = 1000
PROCESSES, PER_PROCESS = 4, 500
VERIFY_RECORDS = 100_000
_WORKER = (
    "import sys\nfrom integrations.audit import AuditLog\n"
    "log = AuditLog(sys.argv[1])\n"
    "for i in range(int(sys.argv[2])): log.append('U' + sys.argv[3], 'mitigation.applied', details={'i': i})\n"
)


def _appends(path: Path, fsync: bool, count: int) -> list[float]:
    log = AuditLog(path, fsync=fsync)
    took = []
    for i in range(count):
        began = time.perf_counter()
        log.append("U024BE7LH", "mitigation.applied", incident_id="inc-42", tenant="acme", details={**DETAILS, "i": i})
        took.append(time.perf_counter() - began)
    return took


async def _async_appends(path: Path, count: int) -> list[float]:
    log = AuditLog(path)
    took = []
    for i in range(count):
        began = time.perf_counter()
        await log.append_async("U024BE7LH", "mitigation.planned", tenant="acme", details={**DETAILS, "i": i})
        took.append(time.perf_counter() - began)
    return took


def _processes(path: Path) -> float:
    began = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(PER_PROCESS), str(n)], cwd=Path.cwd())
        for n in range(PROCESSES)
    ]
    if any(w.wait() != 0 for w in workers):
        raise RuntimeError("an appender process failed")
    return time.perf_counter() - began


def main() -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS_DIR.parent, prefix="audit-bench-") as folder:
        base = Path(folder)
        synced = latency_ms(_appends(base / "synced.jsonl", True, APPENDS))
        unsynced = latency_ms(_appends(base / "unsynced.jsonl", False, APPENDS))
        from_loop = latency_ms(asyncio.run(_async_appends(base / "async.jsonl", APPENDS)))
        shared = base / "shared.jsonl"
        processes_s = _processes(shared)
        shared_ok = verify(shared)
        big = base / "big.jsonl"
        _appends(big, False, VERIFY_RECORDS)
        began = time.perf_counter()
        checked = verify(big)
        verify_s = time.perf_counter() - began
        size_mib = big.stat().st_size / 2**20
        filesystem = subprocess.run(["stat", "-f", "-c", "%T", folder], capture_output=True, text=True).stdout.strip()
    if not (shared_ok.ok and shared_ok.records == PROCESSES * PER_PROCESS and checked.ok):
        raise RuntimeError(f"chain broken: {shared_ok.reason} / {checked.reason}")
    summary = [
        figure(
            "audit append with fsync (p99)",
            f"{synced['p99_ms']} ms (p50 {synced['p50_ms']})",
            "≤ 10 ms",
            synced["p99_ms"] <= 10,
        ),
        figure(
            "append_async from the event loop (p99)",
            f"{from_loop['p99_ms']} ms (p50 {from_loop['p50_ms']})",
            "≤ 10 ms",
            from_loop["p99_ms"] <= 10,
        ),
        figure(
            f"{PROCESSES} processes × {PER_PROCESS} appends, one chain",
            f"{processes_s:.2f} s ({PROCESSES * PER_PROCESS / processes_s:.0f}/s, interpreter starts included)",
            "chain intact",
            True,
        ),
        figure(f"verify {VERIFY_RECORDS:,} records", f"{verify_s:.2f} s ({size_mib:.0f} MiB)", "≤ 5 s", verify_s <= 5),
    ]
    report: dict[str, Any] = {
        "machine": machine(),
        "filesystem": filesystem,
        "method": f"{APPENDS} sequential appends of a ~300-byte record per mode; temp dir beside bench/results",
        "append_fsync": synced,
        "append_no_fsync": unsynced,
        "append_async_fsync": from_loop,
        "processes": {"count": PROCESSES, "appends_each": PER_PROCESS, "wall_s": round(processes_s, 3)},
        "verify": {"records": VERIFY_RECORDS, "wall_s": round(verify_s, 3), "mib": round(size_mib, 1)},
        "summary": summary,
    }
    path = write_results("audit", report)
    print(f"audit benchmark → {path}")
    print_summary(summary)


if __name__ == "__main__":
    main()
