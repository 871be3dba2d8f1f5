"""Triage wall time with latency injected into every backend call.

Run: ``python -m bench.bench_triage_latency [--delay-ms 200] [--runs 3]``. A small aiohttp
reverse proxy, which waits ``--delay-ms`` before forwarding each request, stands in front of
each sandbox service the triage calls over HTTP (Prometheus, the Kubernetes API, the backend
admin API); the bot's settings point at the proxies. ``commands.triage.run_triage`` then runs
for every tenant of the world, ``--runs`` times each, after one warm-up. The tenant config
repo is read with a local ``git log`` and gets no injected latency.

Reported per run: the wall time, the backend calls made (each proxy counts them), their
sequential sum (calls x delay, and the measured sum of per-call latencies), wall / one call,
and the most calls each service had in flight at once. The same triages without injected
latency give the processing time. Per-probe durations (from the findings) show which probe
chains calls. Writes ``bench/results/triage_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

import commands.triage
from bench.common import figure, machine, print_summary, write_results
from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.context import Context
from commands.triage import run_triage
from sandbox.up import Sandbox

GOAL_RATIO = 2.5
# What asyncio.to_thread gets when nobody sets a default executor (ThreadPoolExecutor's default).
DEFAULT_EXECUTOR_WORKERS = min(32, (os.cpu_count() or 1) + 4)
WIDE_EXECUTOR_WORKERS = 64
# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the length aiohttp sets.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass(frozen=True)
class Call:
    service: str
    method: str
    path: str
    started: float  # time.perf_counter()
    seconds: float


@dataclass
class DelayProxy:
    """Forwards every request to ``upstream`` after ``delay_s``; records each call."""

    service: str
    upstream: str
    delay_s: float
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # Bodies pass through as they are (compressed or not); no timeout beyond the caller's.
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        started = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.upstream + request.rel_url.raw_path_qs, headers=headers, data=await request.read()
        ) as upstream:
            body = await upstream.read()
            reply_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            response = web.Response(status=upstream.status, body=body, headers=reply_headers)
        self.calls.append(Call(self.service, request.method, request.path, started, time.perf_counter() - started))
        return response


def max_in_flight(calls: list[Call]) -> int:
    edges = sorted([(c.started, 1) for c in calls] + [(c.started + c.seconds, -1) for c in calls])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


async def _triage_once(ctx: Context, tenant: str, proxies: list[DelayProxy]) -> dict[str, Any]:
    for proxy in proxies:
        proxy.calls.clear()
    began = time.perf_counter()
    report = await run_triage(ctx, tenant)
    wall = time.perf_counter() - began
    calls = [c for p in proxies for c in p.calls]
    return {
        "tenant": tenant,
        "wall_s": wall,
        "calls": len(calls),
        "calls_by_service": dict(Counter(c.service for c in calls)),
        "measured_sum_s": sum(c.seconds for c in calls),
        "max_in_flight": {p.service: max_in_flight(p.calls) for p in proxies},
        # When each service saw its first call: a late first call means the probe waited before calling.
        "first_call_ms": {p.service: (min(c.started for c in p.calls) - began) * 1000 for p in proxies if p.calls},
        "probe_ms": {f.key: f.duration_ms for f in report.findings},
        "errors": {f.key: f.summary for f in report.findings if f.status.value == "error"},
        "verdict": report.verdict.headline if report.verdict else None,
    }


async def _series(
    sandbox: Sandbox, proxies: list[DelayProxy], delay_s: float, tenants: list[str], runs: int
) -> list[dict[str, Any]]:
    for proxy in proxies:
        proxy.delay_s = delay_s
    env = {
        **sandbox.env,
        "FLK_PROMETHEUS_URL": proxies[0].url,
        "FLK_KUBE_API_URL": proxies[1].url,
        "FLK_ADMIN_URL": proxies[2].url,
    }
    settings, config = load_settings(env)
    ctx = await build_context(settings, config)
    try:
        await _triage_once(ctx, tenants[0], proxies)  # warm-up: connections, lazy imports
        return [await _triage_once(ctx, tenant, proxies) for _ in range(runs) for tenant in tenants]
    finally:
        await ctx.close()


def _condense(results: list[dict[str, Any]], delay_s: float) -> dict[str, Any]:
    walls = [r["wall_s"] for r in results]
    probes = {key: round(statistics.median(r["probe_ms"][key] for r in results)) for key in results[0]["probe_ms"]}
    return {
        "delay_ms": round(delay_s * 1000),
        "triages": len(results),
        "median_wall_ms": round(statistics.median(walls) * 1000, 1),
        "max_wall_ms": round(max(walls) * 1000, 1),
        "median_calls": statistics.median(r["calls"] for r in results),
        "median_calls_by_service": {
            s: statistics.median(r["calls_by_service"].get(s, 0) for r in results)
            for s in results[0]["calls_by_service"]
        },
        "median_measured_sum_ms": round(statistics.median(r["measured_sum_s"] for r in results) * 1000, 1),
        "max_in_flight": {s: max(r["max_in_flight"][s] for r in results) for s in results[0]["max_in_flight"]},
        "median_first_call_ms": {
            s: round(statistics.median(r["first_call_ms"][s] for r in results)) for s in results[0]["first_call_ms"]
        },
        "median_probe_ms": dict(sorted(probes.items(), key=lambda kv: kv[1], reverse=True)),
        "runs": [
            {
                "tenant": r["tenant"],
                "wall_ms": round(r["wall_s"] * 1000, 1),
                "calls": r["calls"],
                "measured_sum_ms": round(r["measured_sum_s"] * 1000, 1),
                "wall_per_call": round(r["wall_s"] / delay_s, 2) if delay_s else None,
                "verdict": r["verdict"],
                "errors": r["errors"],
            }
            for r in results
        ],
    }


async def _bench(delay_s: float, runs: int) -> dict[str, Any]:
    host = machine()
    async with Sandbox() as sandbox:
        tenants = sorted(sandbox.live.world.tenants)
        proxies = [
            DelayProxy("prometheus", sandbox.prometheus_url, delay_s),
            DelayProxy("kubernetes", sandbox.kube.url, delay_s),
            DelayProxy("admin", sandbox.backend.url, delay_s),
        ]
        for proxy in proxies:
            await proxy.start()
        try:
            baseline = _condense(await _series(sandbox, proxies, 0.0, tenants, runs), 0.0)
            delayed = _condense(await _series(sandbox, proxies, delay_s, tenants, runs), delay_s)
            # A diagnosis, not how the bot runs: the same triages once the default executor is wide.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(WIDE_EXECUTOR_WORKERS))
            wide = _condense(await _series(sandbox, proxies, delay_s, tenants, runs), delay_s)
        finally:
            for proxy in proxies:
                await proxy.stop()
    wall_ms, base_ms, one_ms = delayed["median_wall_ms"], baseline["median_wall_ms"], delay_s * 1000
    ratio, net_ratio = wall_ms / one_ms, (wall_ms - base_ms) / one_ms
    sequential_ms = delayed["median_calls"] * one_ms
    return {
        "machine": host,
        "world": "sandbox/worlds/default.yaml",
        "method": (
            f"{one_ms:g} ms added before every HTTP call to Prometheus, the Kubernetes API and the admin API "
            "(delaying reverse proxies in the same process); git log (tenant repo) not delayed; "
            f"run_triage via build_context, each world tenant {runs}x after a warm-up; medians"
        ),
        "tenants": tenants,
        "with_latency": delayed,
        "without_latency": baseline,
        "sequential_sum_ms": {"calls_x_delay": sequential_ms, "measured": delayed["median_measured_sum_ms"]},
        "wall_per_call": round(ratio, 2),
        "wall_minus_processing_per_call": round(net_ratio, 2),
        "diagnosis": _diagnosis(delayed, wide, one_ms),
        "summary": [
            figure(
                f"triage wall, {one_ms:g} ms per backend call (median)",
                f"{wall_ms:.0f} ms = {ratio:.2f}× one call (sequential sum {sequential_ms:.0f} ms, "
                f"{delayed['median_calls']:g} calls)",
                f"≤ {GOAL_RATIO:g}×",
                ratio <= GOAL_RATIO,
            ),
            figure(
                "triage wall minus its no-latency time",
                f"{wall_ms - base_ms:.0f} ms = {net_ratio:.2f}× one call (no-latency wall {base_ms:.0f} ms)",
                f"≤ {GOAL_RATIO:g}×",
                net_ratio <= GOAL_RATIO,
            ),
        ],
    }


def _probe_functions() -> dict[str, str]:
    """Probe key -> module.function that runs it (lambdas name the module only)."""
    named = {}
    for key, _, fn in commands.triage.PROBES:
        module, name = getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", "?")
        named[key] = module if "<lambda>" in name else f"{module}.{name}"
    return named


def _diagnosis(delayed: dict[str, Any], wide: dict[str, Any], one_ms: float) -> dict[str, Any]:
    """Where the wall time goes: calls that queued, probes that chain calls, and what a wide
    default executor changes."""
    notes = []
    in_flight, first = delayed["max_in_flight"], delayed["median_first_call_ms"]
    for service, calls in delayed["median_calls_by_service"].items():
        if 1 < in_flight.get(service, 0) < calls:
            notes.append(
                f"{service}: at most {in_flight[service]} of {calls:g} calls in flight at once; the others went "
                "out later (a call that needs an earlier answer, or a cap on workers or connections)"
            )
    for service, ms in first.items():
        if ms > one_ms / 2:
            notes.append(
                f"{service}: the first call arrives {ms} ms after the triage starts (queued before it was sent; "
                "e.g. kubernetes_asyncio's trust_env=True session runs netrc and proxy lookups in the default "
                "executor)"
            )
    functions = _probe_functions()
    for key, ms in delayed["median_probe_ms"].items():
        if ms >= 1.75 * one_ms:
            notes.append(
                f"probe {key} ({functions.get(key, '?')}) takes {ms} ms, about {ms / one_ms:.1f} calls' latency: "
                "its calls are chained or queued"
            )
    return {
        "default_executor_workers": DEFAULT_EXECUTOR_WORKERS,
        "notes": notes,
        f"with_{WIDE_EXECUTOR_WORKERS}_thread_default_executor": {
            k: v for k, v in wide.items() if k not in {"runs", "delay_ms", "triages"}
        }
        | {"median_wall_per_call": round(wide["median_wall_ms"] / one_ms, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--runs", type=int, default=3, help="triages per tenant")
    args = parser.parse_args()
    report = asyncio.run(_bench(args.delay_ms / 1000, args.runs))
    path = write_results("triage_latency", report)
    print(f"triage latency -> {path}")
    print(f"  median probe durations (ms): {report['with_latency']['median_probe_ms']}")
    print(f"  most calls in flight at once: {report['with_latency']['max_in_flight']}")
    for note in report["diagnosis"]["notes"]:
        print(f"  - {note}")
    wide = report["diagnosis"][f"with_{WIDE_EXECUTOR_WORKERS}_thread_default_executor"]
    print(f"  with a {WIDE_EXECUTOR_WORKERS}-thread default executor: median wall {wide['median_wall_ms']} ms")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
