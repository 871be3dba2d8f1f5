"""The world as it runs: the spec's step functions anchored at a start time, plus changes
made while the sandbox runs (a breach on demand, a mitigation that takes effect).

Counters are exact integrals of the rate functions, so the backfilled history, the live
exporter and any test that computes an expected ``rate()`` agree to the sample.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sandbox.world.spec import Series, World

Field = Literal[
    "ingest_rps",
    "escalation_ratio",
    "signature_error_ratio",
    "quota_exceeded_rps",
    "latency_p95_ms",
    "latency_p99_ms",
]

# The runbook's metric names (counters exposed without a `_total` suffix) and what drives them.
COUNTERS: dict[str, tuple[Field, ...]] = {
    "flk_ingest_total_by_tenant": ("ingest_rps",),
    "flk_escalated_by_tenant": ("ingest_rps", "escalation_ratio"),
    "flk_signature_errors_by_tenant": ("ingest_rps", "signature_error_ratio"),
    "flk_quota_exceeded_by_tenant": ("quota_exceeded_rps",),
}

# Counters start this long before the sandbox's start; history never reaches further back.
HISTORY = timedelta(hours=25)


@dataclass
class LiveWorld:
    world: World
    t0: float = field(default_factory=time.time)
    # (tenant, field) -> [(absolute unix time, value)], appended in time order.
    _changes: dict[tuple[str, Field], list[tuple[float, float]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.t0, UTC)

    def at(self, offset: timedelta) -> float:
        """Absolute unix time of a world offset."""
        return self.t0 + offset.total_seconds()

    def set(self, tenant: str, name: Field, value: float, when: float | None = None) -> None:
        """From ``when`` (default: now) on, ``name`` of ``tenant`` takes ``value``."""
        if tenant not in self.world.tenants:
            raise KeyError(tenant)
        when = time.time() if when is None else when
        with self._lock:
            self._changes.setdefault((tenant, name), []).append((when, float(value)))

    def value(self, tenant: str, name: Field, t: float) -> float:
        series: Series = getattr(self.world.tenants[tenant].traffic, name)
        value = series.at(timedelta(seconds=t - self.t0))
        for when, v in self._changes.get((tenant, name), ()):
            if when <= t:
                value = v
        return value

    def breakpoints(self, tenant: str, names: tuple[Field, ...], lo: float, hi: float) -> list[float]:
        points = {lo, hi}
        traffic = self.world.tenants[tenant].traffic
        for name in names:
            for offset, _ in getattr(traffic, name).points:
                points.add(self.at(offset))
            points.update(when for when, _ in self._changes.get((tenant, name), ()))
        return sorted(p for p in points if lo <= p <= hi)

    def rate(self, tenant: str, metric: str, t: float) -> float:
        """Per-second increase of a counter at time t."""
        product = 1.0
        for name in COUNTERS[metric]:
            product *= self.value(tenant, name, t)
        return product

    def counter(self, tenant: str, metric: str, t: float) -> float:
        """The counter's value at t: the integral of its rate since the start of history."""
        lo = self.t0 - HISTORY.total_seconds()
        if t <= lo:
            return 0.0
        points = self.breakpoints(tenant, COUNTERS[metric], lo, t)
        return sum(self.rate(tenant, metric, a) * (b - a) for a, b in itertools.pairwise(points))

    def mean_rate(self, tenant: str, metric: str, end: float, window: float = 300.0) -> float:
        """What ``rate(metric[window])`` should answer at ``end`` (ignoring scrape alignment)."""
        return (self.counter(tenant, metric, end) - self.counter(tenant, metric, end - window)) / window

    def ratio(self, tenant: str, numerator: str, end: float, window: float = 300.0) -> float:
        """The SLI as the runbook computes it: a counter's rate over the ingest rate."""
        ingest = self.mean_rate(tenant, "flk_ingest_total_by_tenant", end, window)
        return self.mean_rate(tenant, numerator, end, window) / ingest if ingest else 0.0
