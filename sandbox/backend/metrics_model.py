"""Every metric sample the backend exports, as a pure function of the live world and a time.

The live exporter (``/metrics``) and the Prometheus history backfill both read
``samples(live, t)``: counters are ``live.counter`` (exact integrals of the world's rates)
and the latency histogram's buckets are exact integrals too (request rate × share at or
below each bound, summed over the spans where rate, p95 and p99 hold still), so the
history and the live series meet without a step, and
``histogram_quantile(0.95, rate(..._bucket[5m]))`` gives back ``latency_p95_ms`` / 1000.
"""

from __future__ import annotations

import functools
import itertools

from sandbox.backend.latency import bucket_bounds, cumulative_shares, mean_seconds
from sandbox.world.live import COUNTERS, HISTORY, LiveWorld
from sandbox.world.spec import World

HISTOGRAM = "flk_request_duration_seconds_by_tenant"
# (family, type, help) in exposition order; counters keep the runbook's names (no `_total`).
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("flk_ingest_total_by_tenant", "counter", "PCS submissions received, by tenant."),
    ("flk_escalated_by_tenant", "counter", "PCS verifications escalated, by tenant."),
    ("flk_signature_errors_by_tenant", "counter", "PCS signature verification failures, by tenant."),
    ("flk_quota_exceeded_by_tenant", "counter", "Requests rejected by the tenant's rate limit."),
    (HISTOGRAM, "histogram", "Request latency in seconds, by tenant."),
)
_LATENCY_FIELDS = ("ingest_rps", "latency_p95_ms", "latency_p99_ms")

Sample = tuple[str, dict[str, str], float]


_bounds_of = functools.lru_cache(maxsize=32)(bucket_bounds)


def histogram_bounds(world: World) -> tuple[float, ...]:
    """Bucket bounds (seconds): the standard ones plus every p95 / p99 the spec names.

    Fixed for a world's lifetime: values set live do not add buckets (series must not appear
    mid-run), and are reproduced as closely as the bounds allow.
    """
    values = tuple(
        sorted(
            {
                v
                for tenant in world.tenants.values()
                for series in (tenant.traffic.latency_p95_ms, tenant.traffic.latency_p99_ms)
                for _, v in series.points
            }
        )
    )
    return _bounds_of(values)


@functools.lru_cache(maxsize=4096)
def _mean(bounds: tuple[float, ...], p95_s: float, p99_s: float) -> float:
    return mean_seconds(bounds, cumulative_shares(bounds, p95_s, p99_s))


def histogram(live: LiveWorld, tenant: str, t: float) -> tuple[list[float], float, float]:
    """Cumulative bucket counts (one per bound), the sum of latencies and the count at ``t``."""
    bounds = histogram_bounds(live.world)
    buckets, total, seconds = [0.0] * len(bounds), 0.0, 0.0
    start = live.t0 - HISTORY.total_seconds()
    if t <= start:
        return buckets, total, seconds
    points = live.breakpoints(tenant, _LATENCY_FIELDS, start, t)
    for a, b in itertools.pairwise(points):
        requests = live.value(tenant, "ingest_rps", a) * (b - a)
        if not requests:
            continue
        p95 = live.value(tenant, "latency_p95_ms", a) / 1000.0
        p99 = live.value(tenant, "latency_p99_ms", a) / 1000.0
        for k, share in enumerate(cumulative_shares(bounds, p95, p99)):
            buckets[k] += requests * share
        total += requests
        seconds += requests * _mean(bounds, p95, p99)
    return buckets, total, seconds


def samples(live: LiveWorld, t: float) -> list[Sample]:
    """Every ``(metric name, labels, value)`` the backend exports at unix time ``t``."""
    tenants = list(live.world.tenants)
    out: list[Sample] = [
        (name, {"tenant_id": tenant}, live.counter(tenant, name, t))
        for name, _, _ in FAMILIES
        if name in COUNTERS
        for tenant in tenants
    ]
    les = [repr(bound) for bound in histogram_bounds(live.world)]
    for tenant in tenants:
        buckets, total, seconds = histogram(live, tenant, t)
        out.extend(
            (f"{HISTOGRAM}_bucket", {"tenant_id": tenant, "le": le}, value)
            for le, value in zip(les, buckets, strict=True)
        )
        out.append((f"{HISTOGRAM}_bucket", {"tenant_id": tenant, "le": "+Inf"}, total))
        out.append((f"{HISTOGRAM}_sum", {"tenant_id": tenant}, seconds))
        out.append((f"{HISTOGRAM}_count", {"tenant_id": tenant}, total))
    return out
