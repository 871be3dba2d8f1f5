"""WORM scanner vs the runbook's ``grep "tenant_id.*X" | jq …`` on a generated 1 GiB day.

Run: ``python -m bench.bench_worm`` (writes ``bench/results/worm.json``). The day is
generated once and cached (see ``bench.worm_gen``). Both contenders run in the same
run on the same files with a warm page cache; each of our scans runs in its own child
process, whose wall time (interpreter start included) and peak RSS are reported.

Tenants: ``t12`` is the incident tenant (escalating in the day's last hours, and a
prefix of ``t120``..``t129``), ``t150`` a small tenant no other id extends (the worst
case for us: grep has no false positive to hand jq, and fewer than 1,000 escalations
means the newest-1000 export reads the whole day), ``t1`` a prefix of 110 other ids.

The runbook's pipeline is run with ``grep -h``: as written, grep prefixes each line with
its file name when given several files and jq stops at the first line ("parse error").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integrations.worm import WormScanner

if TYPE_CHECKING:
    from bench.worm_gen import DayInfo

RESULTS = Path(__file__).parent / "results" / "worm.json"
JQ_FILTER = 'select(.verify_outcome == "escalated") | {pcs_id, D_hat, coh_star, reason}'
CSV_FIELDS = ("ts", "tenant_id", "pcs_id", "D_hat", "coh_star", "verify_outcome", "reason", "policy_version")
RSS_GOAL_MB = 150
EXPORT_GOAL_S = 0.5
SPEED_GOAL = 1.5


def _day_window(day: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(milliseconds=1)


# -- child side: one measured operation per process ---------------------------------


async def _child_op(root: Path, day: str, op: str, tenant: str) -> dict[str, Any]:
    scanner = WormScanner(root)
    start, end = _day_window(day)
    began = time.perf_counter()
    if op == "scan":
        result = await scanner.window(tenant, start=start, end=end, outcome="escalated")
        out: dict[str, Any] = {
            "records": len(result.records),
            "pcs_ids": [r.pcs_id for r in result.records],
            "all_match": all(r.tenant_id == tenant and r.verify_outcome == "escalated" for r in result.records),
        }
        stats = result.stats
    elif op == "export":
        result = await scanner.newest(tenant, start=start, end=end, n=1000)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_FIELDS)
        writer.writerows([getattr(r, f) for f in CSV_FIELDS] for r in result.records)
        out = {"records": len(result.records), "csv_bytes": len(buf.getvalue())}
        stats = result.stats
    else:
        counts = await scanner.outcome_counts(tenant, start=start, end=end)
        out = {"counts": counts.counts}
        stats = counts.stats
    out |= {
        "op_s": time.perf_counter() - began,
        "files_read": stats.files,
        "files_skipped": stats.files_skipped,
        "bytes_read": stats.bytes,
        "lines_read": stats.lines,
        "lines_decoded": stats.parsed,
        "malformed": stats.malformed,
        "maxrss_mb": _peak_rss_mb(),
    }
    return out


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss
    # across fork and exec, so a child would report the bench driver's own peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(root: Path, day: str, op: str, tenant: str) -> dict[str, Any]:
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_worm", "--child", op, tenant, "--root", str(root), "--day", day],
        capture_output=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    out = json.loads(proc.stdout)
    out["wall_s"] = time.perf_counter() - began
    return out


# -- the runbook's pipeline --------------------------------------------------------


def _grep_jq(files: list[Path], tenant: str) -> tuple[float, int]:
    """Wall time and number of objects jq printed."""
    began = time.perf_counter()
    grep = subprocess.Popen(["grep", "-h", f"tenant_id.*{tenant}", *map(str, files)], stdout=subprocess.PIPE)
    jq = subprocess.Popen(["jq", JQ_FILTER], stdin=grep.stdout, stdout=subprocess.PIPE)
    assert grep.stdout is not None
    grep.stdout.close()  # jq owns the pipe now; grep gets SIGPIPE if jq exits
    output, _ = jq.communicate()
    grep.wait()
    wall = time.perf_counter() - began
    if jq.returncode != 0:
        raise RuntimeError(f"jq exited with {jq.returncode}")
    decoder, text, pos, found = json.JSONDecoder(), output.decode(), 0, 0
    while (pos := _skip_ws(text, pos)) < len(text):
        _, pos = decoder.raw_decode(text, pos)
        found += 1
    return wall, found


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


# -- the run -----------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )

    def version(cmd: str) -> str:
        return subprocess.run([cmd, "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "grep": version("grep"),
        "jq": version("jq"),
        "locale": os.environ.get("LC_ALL") or os.environ.get("LANG") or "",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "json_decoder": "stdlib json",
    }


def _warm(files: list[Path]) -> None:
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _tenant_run(info: DayInfo, files: list[Path], tenant: str, repeats: int) -> dict[str, Any]:
    root, day = info.folder.parents[2], info.spec.day
    truth = info.per_tenant[tenant][1]
    ours: list[dict[str, Any]] = []
    exports: list[dict[str, Any]] = []
    runbook: list[tuple[float, int]] = []
    for _ in range(repeats):  # interleaved, so that a change in machine load hits both sides
        ours.append(_run_child(root, day, "scan", tenant))
        exports.append(_run_child(root, day, "export", tenant))
        runbook.append(_grep_jq(files, tenant))
    grep_found = runbook[0][1]
    prefix_fp = sum(esc for t, (_, esc) in info.per_tenant.items() if t != tenant and t.startswith(tenant))
    ours_wall = _median([r["wall_s"] for r in ours])
    grep_wall = _median([w for w, _ in runbook])
    return {
        "tenant": tenant,
        "true_escalations": truth,
        "runbook_pipeline": {
            "wall_s": grep_wall,
            "all_wall_s": [round(w, 3) for w, _ in runbook],
            "objects_out": grep_found,
            "false_positives": grep_found - truth,
            "false_positives_prefix_ids": prefix_fp,
            "false_positives_id_after_field": grep_found - truth - prefix_fp,
        },
        "scanner_full_day": {
            "wall_s": ours_wall,
            "scan_s": _median([r["op_s"] for r in ours]),
            "all_wall_s": [round(r["wall_s"], 3) for r in ours],
            "records": ours[0]["records"],
            "exact": ours[0]["all_match"] and len(set(ours[0]["pcs_ids"])) == ours[0]["records"] == truth,
            "lines_read": ours[0]["lines_read"],
            "lines_decoded": ours[0]["lines_decoded"],
            "peak_rss_mb": round(max(r["maxrss_mb"] for r in ours), 1),
        },
        "speedup_vs_runbook": round(grep_wall / ours_wall, 2),
        "newest_1000_export": {
            "op_s": _median([r["op_s"] for r in exports]),
            "wall_s": _median([r["wall_s"] for r in exports]),
            "records": exports[0]["records"],
            "files_read": exports[0]["files_read"],
            "files_skipped": exports[0]["files_skipped"],
            "lines_read": exports[0]["lines_read"],
            "peak_rss_mb": round(max(r["maxrss_mb"] for r in exports), 1),
        },
    }


def run(root: Path | None = None, tenants: tuple[str, ...] = ("t12", "t150", "t1"), repeats: int = 3) -> dict[str, Any]:
    # Imported here: the measured child processes must not pay for numpy's import.
    from bench.worm_gen import DEFAULT_ROOT, DaySpec, generate_day

    root = root or DEFAULT_ROOT
    for tool in ("grep", "jq"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install {tool}")
    began = time.perf_counter()
    info = generate_day(root, DaySpec())
    generated_s = time.perf_counter() - began
    files = sorted(info.folder.glob("*.jsonl"))
    _warm(files)
    counts = _run_child(root, info.spec.day, "counts", info.spec.incident_tenant)
    report = {
        "machine": _machine(),
        "day": {
            "folder": str(info.folder),
            "spec": asdict(info.spec),
            "files": info.files,
            "gib": round(info.bytes / 2**30, 3),
            "records": info.records,
            "tenants": info.spec.tenants,
            "escalation_share": round(info.escalation_share, 4),
            "generate_or_load_s": round(generated_s, 1),
            "page_cache": "warm (every file read once before timing)",
        },
        "goals": {"speedup": SPEED_GOAL, "peak_rss_mb": RSS_GOAL_MB, "newest_1000_export_s": EXPORT_GOAL_S},
        "tenants": [_tenant_run(info, files, t, repeats) for t in tenants],
        "outcome_counts_full_day": {
            "tenant": info.spec.incident_tenant,
            "counts": counts["counts"],
            "wall_s": round(counts["wall_s"], 3),
            "peak_rss_mb": round(counts["maxrss_mb"], 1),
        },
        "repeats": repeats,
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _print(report: dict[str, Any]) -> None:
    day = report["day"]
    print(
        f"day: {day['files']} files, {day['gib']} GiB, {day['records']:,} records, {day['escalation_share']:.2%} esc."
    )
    for t in report["tenants"]:
        rb, ours, ex = t["runbook_pipeline"], t["scanner_full_day"], t["newest_1000_export"]
        print(
            f"{t['tenant']:>5}: grep|jq {rb['wall_s']:.2f} s ({rb['objects_out']} out, {rb['false_positives']} false)"
            f" | scanner {ours['wall_s']:.2f} s ({ours['records']} exact={ours['exact']}, {ours['peak_rss_mb']} MB)"
            f" | x{t['speedup_vs_runbook']} | newest-1000 export {ex['op_s']:.3f} s ({ex['records']} records,"
            f" {ex['files_read']} files read)"
        )
    print(f"results: {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description="WORM scanner benchmark")
    parser.add_argument("--root", type=Path, help="where the generated day is cached")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tenants", default="t12,t150,t1")
    parser.add_argument("--child", nargs=2, metavar=("OP", "TENANT"), help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        op, tenant = args.child
        print(json.dumps(asyncio.run(_child_op(args.root, args.day, op, tenant))))
        return
    _print(run(args.root, tuple(args.tenants.split(",")), args.repeats))


if __name__ == "__main__":
    main()
