"""What each process imports, and each package's share of the time and memory (issue 16.3).

Run: ``python -m bench.bench_imports``. For the front (``bot.service.app``, as `flk serve
--front-only` imports it before it listens) and for a worker once it has done its first
triage (the front's modules plus the Kubernetes client, Prometheus' client and the chart
renderer, which are imported at first use), a fresh interpreter is run twice:
``python -X importtime`` (self time of every module, summed per top-level package) and one with
``tracemalloc`` on from the start (the Python memory allocated by each package's modules at
import, by the innermost file frame that allocated it, so a module's code objects count to the
module that imported it; memory of C extensions' own allocators is not seen: the processes' RSS
is in ``serve_footprint.json``). Writes ``bench/results/imports.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from typing import Any

from bench.common import figure, machine, print_summary, write_results

FRONT = ["bot.service.app"]
# What a worker imports at its first triage, beyond the front's modules.
WORKER = [*FRONT, "kubernetes_asyncio.client", "prometheus_api_client", "matplotlib.figure", "matplotlib.ticker"]
TOP = 12

_MEMORY = """
import importlib, json, sys, sysconfig, tracemalloc
tracemalloc.start(30)
for name in sys.argv[1:]:
    importlib.import_module(name)
snapshot = tracemalloc.take_snapshot()
stdlib = sysconfig.get_paths()["stdlib"]
sizes = {}
for stat in snapshot.statistics("traceback"):
    # The innermost frame in a file (frames run oldest first): importlib's frozen frames
    # allocate a module's code objects on behalf of the line that imported it.
    path = "<interpreter>"
    for f in reversed(stat.traceback):
        if not f.filename.startswith("<"):
            path = f.filename
            break
    root = "stdlib" if path.startswith(stdlib) and "site-packages" not in path else path
    sizes[root] = sizes.get(root, 0) + stat.size
print(json.dumps(sizes))
"""


def _package(path: str) -> str:
    if path == "stdlib" or path.startswith("<"):
        return "stdlib" if path == "stdlib" else "(interpreter)"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in ("bot", "commands", "integrations"):
        if f"/{ours}/" in path:
            return ours
    return "(other)"


def _import_times(modules: list[str]) -> dict[str, float]:
    code = "import importlib, sys\nfor n in sys.argv[1:]: importlib.import_module(n)"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *modules], capture_output=True, text=True, check=True
    )
    by_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if found:
            by_package[found.group(2).split(".")[0]] += int(found.group(1)) / 1000
    return dict(by_package)


def _import_memory(modules: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _MEMORY, *modules], capture_output=True, text=True, check=True)
    by_package: dict[str, float] = defaultdict(float)
    for path, size in json.loads(done.stdout).items():
        by_package[_package(path)] += size / 2**20
    return dict(by_package)


def _profile(modules: list[str]) -> dict[str, Any]:
    times, memory = _import_times(modules), _import_memory(modules)
    total_ms, total_mb = sum(times.values()), sum(memory.values())
    return {
        "modules": modules,
        "import_ms": round(total_ms, 1),
        "python_memory_mb": round(total_mb, 1),
        "time_by_package": [
            {"package": p, "ms": round(ms, 1), "share": round(ms / total_ms, 3)}
            for p, ms in sorted(times.items(), key=lambda kv: -kv[1])[:TOP]
        ],
        "memory_by_package": [
            {"package": p, "mb": round(mb, 2), "share": round(mb / total_mb, 3)}
            for p, mb in sorted(memory.items(), key=lambda kv: -kv[1])[:TOP]
        ],
    }


def main() -> None:
    host = machine()
    front, worker = _profile(FRONT), _profile(WORKER)
    lazy = ("kubernetes_asyncio", "prometheus_api_client", "requests", "dateparser", "matplotlib", "alembic")
    front_packages = {r["package"] for r in front["time_by_package"]} | {
        r["package"] for r in front["memory_by_package"]
    }
    kept_out = [p for p in lazy if p not in front_packages and p not in _import_times(FRONT)]
    summary = [
        figure(
            "front: Python memory allocated at import",
            f"{front['python_memory_mb']} MB ({front['import_ms']:.0f} ms of imports)",
            "the front imports neither the Kubernetes nor Prometheus' client, charts nor Alembic",
            len(kept_out) == len(lazy),
        ),
        figure(
            "worker at its first triage: Python memory allocated at import",
            f"{worker['python_memory_mb']} MB ({worker['import_ms']:.0f} ms of imports)",
            "(measured)",
            True,
        ),
    ]
    report = {
        "machine": {**host, "load_average_at_end": machine()["load_average"]},
        "method": __doc__,
        "front": front,
        "worker": worker,
        "not_imported_by_the_front": kept_out,
        "summary": summary,
    }
    path = write_results("imports", report)
    print(f"imports -> {path}")
    for name, profile in (("front", front), ("worker", worker)):
        print(f"{name}: {profile['import_ms']:.0f} ms, {profile['python_memory_mb']} MB")
        for row in profile["memory_by_package"][:8]:
            print(f"  {row['package']:<24} {row['mb']:6.2f} MB  {row['share']:.0%}")
    print_summary(summary)


if __name__ == "__main__":
    main()
