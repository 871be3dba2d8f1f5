"""The audit log on the confirm-click path: one append per plan, confirmation, application.

Run: ``python -m bench.bench_audit`` (writes ``bench/results/audit.json``). Measures, in a temp
dir on the disk the results folder lives on: sequential appends with fsync (the default: the
log, then the head, each fsynced) unkeyed and keyed, and without fsync; ``append_async`` from an
event loop; a burst of appends started at once from the event loop, with group commit (appends
waiting for a write share the next write and fsync) and, for comparison, serialised so that each
pays its own fsyncs; four processes appending at once (flock); ``recover()`` of a torn tail
after 100,000 records; ``verify`` over 100,000 records unkeyed and keyed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# The commit measured, as the alert benchmarks record it.
from bench.common import RESULTS_DIR, code_version, figure, latency_ms, machine, print_summary, write_results
from integrations.audit import AuditLog, verify

DETAILS = {
    "plan": "3f2a9c1d7b0e",
    "objects": [{"name": "tenant-acme", "changes": [{"key": "token_rate", "before": "100", "after": "200"}]}],
    "restart": None,
}
KEY = b"bench-audit-key-5c1e0f7a9b3d2e4f"
APPENDS = 1000
BURST, BURST_ROUNDS = 64, 10
PROCESSES, PER_PROCESS = 4, 500
VERIFY_RECORDS = 100_000
_WORKER = (
    "import sys\nfrom integrations.audit import AuditLog\n"
    "log = AuditLog(sys.argv[1])\n"
    "for i in range(int(sys.argv[2])): log.append('U' + sys.argv[3], 'mitigation.applied', details={'i': i})\n"
)


def _append(log: AuditLog, i: int) -> None:
    log.append("U024BE7LH", "mitigation.applied", incident_id="inc-42", tenant="acme", details={**DETAILS, "i": i})


def _appends(path: Path, fsync: bool, count: int, key: bytes | None = None) -> list[float]:
    log = AuditLog(path, fsync=fsync, key=key)
    took = []
    for i in range(count):
        began = time.perf_counter()
        _append(log, i)
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


async def _bursts(path: Path, grouped: bool) -> dict[str, Any]:
    """``BURST`` appends started at once, ``BURST_ROUNDS`` times; ``grouped=False`` holds a lock
    around each append, so none can join another's write: one write and its fsyncs each."""
    log = AuditLog(path)
    one_at_a_time = threading.Lock()

    def append(i: int) -> float:
        began = time.perf_counter()
        if grouped:
            _append(log, i)
        else:
            with one_at_a_time:
                _append(log, i)
        return time.perf_counter() - began

    took: list[float] = []
    walls: list[float] = []
    for _ in range(BURST_ROUNDS):
        began = time.perf_counter()
        took += await asyncio.gather(*(asyncio.to_thread(append, i) for i in range(BURST)))
        walls.append(time.perf_counter() - began)
    total = sum(walls)
    return {
        "latency": latency_ms(took),
        "burst_wall_ms_median": round(sorted(walls)[len(walls) // 2] * 1000, 1),
        "appends_per_s": round(BURST * BURST_ROUNDS / total),
    }


def _processes(path: Path) -> float:
    began = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(PER_PROCESS), str(n)], cwd=Path.cwd())
        for n in range(PROCESSES)
    ]
    if any(w.wait() != 0 for w in workers):
        raise RuntimeError("an appender process failed")
    return time.perf_counter() - began


def _verify(path: Path, key: bytes | None) -> tuple[float, float]:
    """(seconds to verify, MiB) for a fresh log of ``VERIFY_RECORDS`` records."""
    _appends(path, False, VERIFY_RECORDS, key)
    began = time.perf_counter()
    checked = verify(path, key=key)
    took = time.perf_counter() - began
    if not (checked.ok and checked.records == VERIFY_RECORDS):
        raise RuntimeError(f"chain broken: {checked.reason}")
    return took, path.stat().st_size / 2**20


def _recover(path: Path) -> float:
    """Seconds for ``recover()`` to drop a torn tail (half a record and 4 KiB of NULs) after the
    records of ``path``, record it and fsync, from a fresh AuditLog as at start. The log is put on
    disk first, as it would be after a crash: its fsync must not pay for the unsynced writes."""
    with open(path, "ab") as handle:
        handle.write(b'{"action":"mitigation.applied","actor":"U024' + b"\0" * 4096)
        handle.flush()
        os.fsync(handle.fileno())
    began = time.perf_counter()
    recovered = AuditLog(path).recover()
    took = time.perf_counter() - began
    if recovered is None or not verify(path).ok:
        raise RuntimeError("the torn tail was not recovered")
    return took


def main() -> None:
    host = machine()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS_DIR.parent, prefix="audit-bench-") as folder:
        base = Path(folder)
        synced = latency_ms(_appends(base / "synced.jsonl", True, APPENDS))
        keyed = latency_ms(_appends(base / "keyed.jsonl", True, APPENDS, KEY))
        unsynced = latency_ms(_appends(base / "unsynced.jsonl", False, APPENDS))
        from_loop = latency_ms(asyncio.run(_async_appends(base / "async.jsonl", APPENDS)))
        grouped = asyncio.run(_bursts(base / "grouped.jsonl", True))
        serial = asyncio.run(_bursts(base / "serial.jsonl", False))
        shared = base / "shared.jsonl"
        processes_s = _processes(shared)
        shared_ok = verify(shared)
        verify_s, size_mib = _verify(base / "big.jsonl", None)
        verify_keyed_s, _ = _verify(base / "big-keyed.jsonl", KEY)
        recover_s = _recover(base / "big.jsonl")
        filesystem = subprocess.run(["stat", "-f", "-c", "%T", folder], capture_output=True, text=True).stdout.strip()
    if not (shared_ok.ok and shared_ok.records == PROCESSES * PER_PROCESS):
        raise RuntimeError(f"chain broken: {shared_ok.reason}")
    speedup = grouped["appends_per_s"] / serial["appends_per_s"]
    summary = [
        figure("audit append with fsync of log and head (p99)", f"{synced['p99_ms']} ms (p50 {synced['p50_ms']})",
               "≤ 10 ms", synced["p99_ms"] <= 10),
        figure("keyed (HMAC-SHA256) append with fsync (p99)", f"{keyed['p99_ms']} ms (p50 {keyed['p50_ms']})",
               "≤ 10 ms", keyed["p99_ms"] <= 10),
        figure("append_async from the event loop (p99)", f"{from_loop['p99_ms']} ms (p50 {from_loop['p50_ms']})",
               "≤ 10 ms", from_loop["p99_ms"] <= 10),
        figure(f"burst of {BURST} append_async at once, group commit (p99 per append)",
               f"{grouped['latency']['p99_ms']} ms, {grouped['appends_per_s']}/s; one fsync each: "
               f"{serial['latency']['p99_ms']} ms, {serial['appends_per_s']}/s ({speedup:.1f}×)",
               "faster than one fsync each", speedup > 1),
        figure(f"{PROCESSES} processes × {PER_PROCESS} appends, one chain",
               f"{processes_s:.2f} s ({PROCESSES * PER_PROCESS / processes_s:.0f}/s, interpreter starts included)",
               "chain intact", True),
        figure(f"recover() a torn tail after {VERIFY_RECORDS:,} records", f"{recover_s * 1000:.1f} ms",
               "≤ 100 ms", recover_s <= 0.1),
        figure(f"verify {VERIFY_RECORDS:,} records",
               f"{verify_s:.2f} s ({size_mib:.0f} MiB); keyed {verify_keyed_s:.2f} s",
               "≤ 5 s", max(verify_s, verify_keyed_s) <= 5),
    ]  # fmt: skip
    report: dict[str, Any] = {
        "machine": host,
        "code": code_version(),
        "filesystem": filesystem,
        "method": (
            f"{APPENDS} sequential appends of a ~300-byte record per mode; bursts of {BURST} appends started at once "
            f"from asyncio ({BURST_ROUNDS} rounds, default thread pool); temp dir beside bench/results"
        ),
        "append_fsync": synced,
        "append_fsync_keyed": keyed,
        "append_no_fsync": unsynced,
        "append_async_fsync": from_loop,
        "burst_group_commit": grouped,
        "burst_one_fsync_each": serial,
        "processes": {"count": PROCESSES, "appends_each": PER_PROCESS, "wall_s": round(processes_s, 3)},
        "recover_ms": round(recover_s * 1000, 2),
        "verify": {
            "records": VERIFY_RECORDS,
            "wall_s": round(verify_s, 3),
            "keyed_wall_s": round(verify_keyed_s, 3),
            "mib": round(size_mib, 1),
        },
        "summary": summary,
    }
    path = write_results("audit", report)
    print(f"audit benchmark → {path}")
    print_summary(summary)


if __name__ == "__main__":
    main()
