"""The FLK backend stand-in: log lines per pod, the metrics model and exporter, the admin API."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import random
import re
import statistics
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sandbox.backend import BackendLogs, BackendServer, backend_pod_names, samples
from sandbox.backend.latency import bucket_bounds, cumulative_shares
from sandbox.backend.metrics_model import HISTOGRAM
from sandbox.world.live import COUNTERS, LiveWorld
from sandbox.world.load import load_world
from sandbox.world.spec import World

T0 = datetime.fromisoformat("2026-03-14T09:30:00+00:00").timestamp()
WORLD = """
namespace: quarry
seed: 4242
backend: {pods: 2, deployment: ingest, baseline_log_per_min: 3}
policy_registry:
  - {version: v2, created_at: -10d, thresholds: {tol_D: "1.5", tol_coh: "0.7"}}
  - {version: v3, created_at: -20m, thresholds: {tol_D: "1.3", tol_coh: "0.75"}}
feature_flags:
  global: {beta: true}
  lumen: {fast_path_v2: false}
tenants:
  kestrel:
    scenario: quota
    config: {strict_mode: "false", token_rate: "12.5", burst_rate: "30", daily_quota: "900000", policy_version: v2}
    policy: {tol_D: "1.5", tol_coh: "0.7"}
    signing_keys: {k1: "kestrel-key"}
    traffic:
      ingest_rps: {"-24h": 5, "-2h": 8}
      escalation_ratio: 0.01
      signature_error_ratio: 0.002
      quota_exceeded_rps: {"-24h": 0, "-15m": 4}
      latency_p95_ms: {"-24h": 90, "-10m": 700}
      latency_p99_ms: {"-24h": 180, "-10m": 1500}
    logs:
      - {message: quota exceeded, level: warn, per_min: 240, since: -15m, timing: fixed,
         sources: ["192.0.2.1", "192.0.2.2", "192.0.2.3"], fields: {limit: token_rate}}
      - {message: clock drift suspected, level: debug, per_min: 30, since: -3h, until: -1h, skew_s: 95,
         fields: {note: "sig older than window"}}
    worm: &worm
      accepted: {D_hat: {mean: 1.2, sd: 0.1}, coh_star: {mean: 0.85, sd: 0.03}}
      escalated: {D_hat: {mean: 1.6, sd: 0.05}, coh_star: {mean: 0.7, sd: 0.02}}
  lumen:
    scenario: policy
    config: {strict_mode: "true", token_rate: "40", burst_rate: "80", daily_quota: "5000000", policy_version: v3}
    policy: {tol_D: "1.3", tol_coh: "0.75"}
    signing_keys: {k1: "lumen-key"}
    traffic:
      ingest_rps: 3
      escalation_ratio: {"-24h": 0.002, "-20m": 0.06}
      signature_error_ratio: 0.001
    logs:
      - {message: pcs escalated, per_min: 90, since: -20m, sources: ["198.18.0.9", "198.18.0.10"],
         fields: {reason: coh_star_below_tol}}
    worm: *worm
"""
Lines = list[tuple[float, dict[str, str]]]
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _world() -> World:
    return World.model_validate(yaml.safe_load(WORLD))


def _fields(line: str) -> list[tuple[str, str]]:
    pairs = PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line, line
    return [(k, v[1:-1].replace('\\"', '"') if v.startswith('"') else v) for k, v in pairs]


def _all_lines(logs: BackendLogs, **kwargs: float) -> Lines:
    out = [(t, dict(_fields(line))) for pod in logs.pod_names() for t, line in logs.for_pod(pod, **kwargs)]
    return sorted(out, key=lambda item: item[0])


def _of(lines: Lines, tenant: str, msg: str) -> Lines:
    return [(t, f) for t, f in lines if f["tenant_id"] == tenant and f["msg"] == msg]


@pytest.fixture(scope="module")
def live() -> LiveWorld:
    return LiveWorld(_world(), t0=T0)


@pytest.fixture(scope="module")
def lines(live: LiveWorld) -> Lines:
    return _all_lines(BackendLogs(live), now=T0)


# ---- log lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_world, load_world], ids=["test-world", "default-world"])
def test_log_lines_have_the_backend_format_for_every_tenant(make: Callable[[], World]) -> None:
    world = make()
    live = LiveWorld(world, t0=T0)
    started = time.perf_counter()
    logs = BackendLogs(live)
    per_pod = {pod: logs.for_pod(pod, now=T0) for pod in logs.pod_names()}
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"generating a day of logs took {elapsed:.1f} s"
    names = backend_pod_names(world)
    assert logs.pod_names() == names and len(names) == world.backend.pods
    assert all(re.fullmatch(rf"{world.backend.deployment}-[a-z0-9]{{10}}-[a-z0-9]{{5}}", n) for n in names)
    seen: set[tuple[str, str]] = set()
    for pod_lines in per_pod.values():
        times = [t for t, _ in pod_lines]
        assert times and times == sorted(times) and times[0] >= T0 - 86400 and times[-1] <= T0
        for t, line in pod_lines:
            fields = _fields(line)
            assert [k for k, _ in fields[:6]] == ["ts", "level", "msg", "tenant_id", "policy_version", "pcs_id"]
            assert fields[-1][0] == "src" and re.fullmatch(r"[0-9.]+", fields[-1][1])
            values = dict(fields)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", values["ts"])
            assert abs(_when(values["ts"]) - t) < 6e-4 and re.fullmatch(r"pcs-[0-9a-f]{16}", values["pcs_id"])
            seen.add((values["tenant_id"], values["msg"]))
    for tid, tenant in world.tenants.items():
        assert {(tid, "pcs verified")} | {(tid, p.message) for p in tenant.logs} <= seen


def test_baseline_rate_and_pattern_fields(live: LiveWorld, lines: Lines) -> None:
    per_day = live.world.backend.baseline_log_per_min * 1440
    for tid in live.world.tenants:
        count = len(_of(lines, tid, "pcs verified"))
        assert abs(count - per_day) < 5 * math.sqrt(per_day), (tid, count)
    quota = _of(lines, "kestrel", "quota exceeded")
    assert all(f["level"] == "warn" and f["limit"] == "token_rate" for _, f in quota)
    assert len({f["pcs_id"] for _, f in lines}) == len(lines)


def test_fixed_timing_is_evenly_spaced_and_cycles_sources(lines: Lines) -> None:
    quota = _of(lines, "kestrel", "quota exceeded")
    assert len(quota) == pytest.approx(15 * 240, abs=1)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(quota)]
    assert max(gaps) - min(gaps) < 1e-6 and gaps[0] == pytest.approx(0.25)
    sources = [f["src"] for _, f in quota]
    assert set(sources[:3]) == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert all(sources[i] == sources[i + 3] for i in range(len(sources) - 3))


def test_poisson_timing_is_random_at_the_pattern_rate(lines: Lines) -> None:
    escalated = _of(lines, "lumen", "pcs escalated")
    expected = 20 * 90
    assert abs(len(escalated) - expected) < 5 * math.sqrt(expected)
    assert min(t for t, _ in escalated) >= T0 - 1200
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(escalated)]
    assert 0.85 < statistics.pstdev(gaps) / statistics.mean(gaps) < 1.15  # exponential gaps: CV ~ 1
    assert {f["src"] for _, f in escalated} == {"198.18.0.9", "198.18.0.10"}


def test_skew_adds_the_signature_time_and_the_pattern_ends(lines: Lines) -> None:
    drift = _of(lines, "kestrel", "clock drift suspected")
    assert drift and all(T0 - 3 * 3600 <= t < T0 - 3600 for t, _ in drift)
    for _, f in drift:
        assert _when(f["ts"]) - _when(f["sig_ts"]) == pytest.approx(95, abs=2e-3)
        assert f["note"] == "sig older than window"
    assert all("sig_ts" not in f for _, f in _of(lines, "kestrel", "quota exceeded"))


def test_policy_version_switches_at_the_rollout(lines: Lines) -> None:
    rollout = T0 - 20 * 60
    lumen = [(t, f["policy_version"]) for t, f in lines if f["tenant_id"] == "lumen"]
    assert {v for t, v in lumen if t < rollout} == {"v2"}
    assert {v for t, v in lumen if t >= rollout} == {"v3"}
    assert {f["policy_version"] for _, f in lines if f["tenant_id"] == "kestrel"} == {"v2"}


def test_lines_keep_coming_and_pieces_match_the_whole(live: LiveWorld) -> None:
    whole = _all_lines(BackendLogs(live), now=T0 + 900)
    pieces = BackendLogs(live)
    for now in (T0, T0 + 300.5, T0 + 301, T0 + 900):
        pieces.for_pod(pieces.pod_names()[0], now=now)
    assert _all_lines(pieces, now=T0 + 900) == whole
    last_minute = [f for t, f in whole if t >= T0 + 840]
    assert sum(f["msg"] == "quota exceeded" for f in last_minute) == pytest.approx(240, abs=1)
    assert sum(f["msg"] == "pcs escalated" for f in last_minute) > 40
    assert not any(f["msg"] == "clock drift suspected" for f in last_minute)
    since = _all_lines(BackendLogs(live), since=T0 + 840, now=T0 + 900)
    assert [f for _, f in since] == last_minute


def test_patterns_follow_a_mitigation_and_a_rollback(live: LiveWorld) -> None:
    mitigated = LiveWorld(live.world, t0=T0)
    mitigated.set("kestrel", "quota_exceeded_rps", 0, when=T0 + 60)
    mitigated.set("lumen", "escalation_ratio", 0.006, when=T0 + 60)
    configs = {tid: dict(t.config) for tid, t in live.world.tenants.items()}
    logs = BackendLogs(mitigated)
    logs.use_config(configs.get)
    logs.for_pod(logs.pod_names()[0], now=T0 + 60)
    configs["lumen"]["policy_version"] = "v2"
    every = _all_lines(logs, now=T0 + 1260)
    versions: dict[tuple[bool, bool], set[str]] = {}
    for t, f in every:
        if f["tenant_id"] == "lumen":  # (before the rollout, before the rollback): versions seen
            versions.setdefault((t < T0 - 1200, t < T0 + 60), set()).add(f["policy_version"])
    assert versions == {(True, True): {"v2"}, (False, True): {"v3"}, (False, False): {"v2"}}
    after = [(t, f) for t, f in every if t >= T0 + 60]
    assert not _of(after, "kestrel", "quota exceeded")
    kept = len(_of(after, "lumen", "pcs escalated"))
    assert 0.03 * 1800 < kept < 0.2 * 1800  # 10 % of the pattern is left
    assert {f["policy_version"] for _, f in after if f["tenant_id"] == "lumen"} == {"v2"}
    assert logs("no-such-pod") == []
    with pytest.raises(KeyError):
        logs.for_pod("no-such-pod")


# ---- metrics model ----------------------------------------------------------------------------


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile over (upper bound, cumulative count), +Inf last."""
    rank = q * buckets[-1][1]
    b = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    start, below = (0.0, 0.0) if b == 0 else buckets[b - 1]
    return start + (buckets[b][0] - start) * (rank - below) / (buckets[b][1] - below)


def _rate_quantile(live: LiveWorld, tenant: str, q: float, t: float) -> float:
    def buckets_at(at: float) -> dict[float, float]:
        return {
            float(labels["le"]): value
            for name, labels, value in samples(live, at)
            if name == f"{HISTOGRAM}_bucket" and labels["tenant_id"] == tenant
        }

    now, before = buckets_at(t), buckets_at(t - 300)
    return _quantile(q, sorted((le, (now[le] - before[le]) / 300) for le in now))


@pytest.mark.parametrize(("t", "p95", "p99"), [(T0 - 3600, 0.09, 0.18), (T0, 0.7, 1.5)])
def test_histogram_quantiles_give_back_p95_and_p99(live: LiveWorld, t: float, p95: float, p99: float) -> None:
    assert _rate_quantile(live, "kestrel", 0.95, t) == pytest.approx(p95, rel=1e-9)
    assert _rate_quantile(live, "kestrel", 0.99, t) == pytest.approx(p99, rel=1e-9)


def test_default_world_histograms_match_each_tenant() -> None:
    live = LiveWorld(load_world(), t0=T0)
    for tid in live.world.tenants:
        for q, field in ((0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
            expected = live.value(tid, field, T0) / 1000  # type: ignore[arg-type]
            assert _rate_quantile(live, tid, q, T0) == pytest.approx(expected, rel=1e-9)


def test_histogram_counts_agree_with_the_counters(live: LiveWorld) -> None:
    for t in (T0 - 86400, T0 - 7000, T0 + 123.4):
        by_name = {(n, tuple(sorted(labels.items()))): v for n, labels, v in samples(live, t)}
        for tid in live.world.tenants:
            count = by_name[(f"{HISTOGRAM}_count", (("tenant_id", tid),))]
            assert count == pytest.approx(live.counter(tid, "flk_ingest_total_by_tenant", t), rel=1e-12)
            assert by_name[(f"{HISTOGRAM}_bucket", (("le", "+Inf"), ("tenant_id", tid)))] == count
            mean = by_name[(f"{HISTOGRAM}_sum", (("tenant_id", tid),))] / count
            assert 0.01 < mean < 1.5
            for name in COUNTERS:
                assert by_name[(name, (("tenant_id", tid),))] == live.counter(tid, name, t)


def test_bucket_shares_are_exact_whenever_the_targets_sit_apart() -> None:
    rng = random.Random(5)
    bounds = bucket_bounds([])
    for _ in range(3000):
        p95 = math.exp(rng.uniform(math.log(0.003), math.log(8)))
        p99 = min(p95 * math.exp(rng.uniform(0.01, 2.0)), 10.0)
        shares = cumulative_shares(bounds, p95, p99)
        assert all(0 <= a <= b <= 1 for a, b in itertools.pairwise(shares))
        i, j = bisect.bisect_left(bounds, p95), bisect.bisect_left(bounds, p99)
        if j - i >= 2:
            buckets = [*zip(bounds, shares, strict=True), (math.inf, 1.0)]
            assert _quantile(0.95, buckets) == pytest.approx(p95, rel=1e-9)
            assert _quantile(0.99, buckets) == pytest.approx(p99, rel=1e-9)


# ---- exporter and admin API --------------------------------------------------------------------


@pytest.fixture(scope="module")
def configs(live: LiveWorld) -> dict[str, dict[str, str]]:
    return {tid: dict(t.config) for tid, t in live.world.tenants.items()}


@pytest.fixture(scope="module")
async def server(live: LiveWorld, configs: dict[str, dict[str, str]]) -> AsyncIterator[BackendServer]:
    running = BackendServer(live, BackendLogs(live), configs.get, clock=lambda: T0 + 30)
    await running.start()
    yield running
    await running.stop()


async def _get(server: BackendServer, path: str, limit_s: float = 5) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit_s)) as session,
        session.get(server.url + path) as response,
    ):
        return response.status, await response.text()


async def test_metrics_keep_the_runbook_names(server: BackendServer, live: LiveWorld) -> None:
    status, text = await _get(server, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {*COUNTERS, HISTOGRAM}
    assert not re.search(r"^\w+_total[{ ]", text, re.MULTILINE)  # no `_total` suffix added
    for name in COUNTERS:
        assert families[name].type == "counter"
        assert f"\n{name}{{" in text
        for sample in families[name].samples:
            assert sample.value == live.counter(sample.labels["tenant_id"], name, T0 + 30)
    assert families[HISTOGRAM].type == "histogram"


async def test_admin_tenant_answers_with_numbers(
    server: BackendServer, live: LiveWorld, configs: dict[str, dict[str, str]]
) -> None:
    status, text = await _get(server, "/admin/tenants/kestrel")
    body = yaml.safe_load(text)
    now = T0 + 30
    midnight = now - now % 86400
    ingest, quota = "flk_ingest_total_by_tenant", "flk_quota_exceeded_by_tenant"
    assert status == 200 and body == {
        "tenant_id": "kestrel",
        "token_rate": 12.5,
        "burst_rate": 30,
        "daily_quota": 900000,
        "strict_mode": False,
        "policy_version": "v2",
        "region": live.world.tenants["kestrel"].region,
        "daily_used": round(live.counter("kestrel", ingest, now) - live.counter("kestrel", ingest, midnight)),
        "rate_limit_hits_1h": round(live.counter("kestrel", quota, now) - live.counter("kestrel", quota, now - 3600)),
    }
    assert body["rate_limit_hits_1h"] > 0
    configs["kestrel"]["token_rate"] = "25"  # a mitigation patched the configmap
    try:
        assert yaml.safe_load((await _get(server, "/admin/tenants/kestrel"))[1])["token_rate"] == 25
    finally:
        configs["kestrel"]["token_rate"] = "12.5"
    status, text = await _get(server, "/admin/tenants/kestrel9")
    assert status == 404 and yaml.safe_load(text) == {"error": "tenant not found", "tenant_id": "kestrel9"}


async def test_admin_flags_and_an_async_config_source(live: LiveWorld) -> None:
    async def config(tenant: str) -> dict[str, str] | None:
        return dict(live.world.tenants[tenant].config) if tenant in live.world.tenants else None

    running = BackendServer(live, None, config)
    await running.start()
    try:
        status, text = await _get(running, "/admin/flags")
        assert status == 200 and yaml.safe_load(text) == {
            "global": {"beta": True},
            "tenants": {"lumen": {"fast_path_v2": False}},
        }
        assert yaml.safe_load((await _get(running, "/admin/tenants/lumen"))[1])["strict_mode"] is True
        assert (await _get(running, "/admin/tenants/nobody"))[0] == 404
    finally:
        await running.stop()


async def test_fault_switch(server: BackendServer) -> None:
    try:
        server.faults["admin"] = "500"
        assert (await _get(server, "/admin/flags"))[0] == 500
        server.faults["admin"] = "garbage"
        status, text = await _get(server, "/admin/tenants/lumen")
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        server.faults["admin"] = "hang"
        with pytest.raises(asyncio.TimeoutError):
            await _get(server, "/admin/tenants/lumen", limit_s=0.3)
        server.faults["metrics"] = "500"
        assert (await _get(server, "/metrics"))[0] == 500
        with pytest.raises(ValueError):
            server.faults["admin"] = "slow"
    finally:
        server.faults["admin"] = server.faults["metrics"] = None
    assert (await _get(server, "/admin/tenants/lumen"))[0] == 200


async def test_stop_does_not_wait_for_a_hanging_request(live: LiveWorld) -> None:
    running = BackendServer(live, None, lambda tenant: None)
    await running.start()
    running.faults["admin"] = "hang"
    request = asyncio.create_task(_get(running, "/admin/flags", limit_s=10))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await asyncio.wait_for(running.stop(), 5)
    assert time.perf_counter() - started < 2
    status, _ = await request  # released, not left hanging
    assert status == 503
