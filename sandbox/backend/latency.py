"""A latency distribution that a Prometheus histogram reports back exactly.

``histogram_quantile`` interpolates linearly inside the bucket where the quantile falls.
So the cumulative share at each bucket bound is chosen such that the interpolated curve
passes through ``(p95, 0.95)`` and ``(p99, 0.99)``: the buckets holding p95 and p99 get a
straight line through the target point, every other bound follows a plain reference curve
(linear up to p95, then p99, then all requests by the largest bound). The answer is exact
whenever the two targets are not squeezed into one wide bucket, and the spec's own values
are added as bucket bounds, which makes them exact always.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable

# Standard bounds (seconds); the world's own p95 / p99 values are added to these.
STANDARD_BOUNDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
_TINY = 1e-6


def bucket_bounds(extra_ms: Iterable[float]) -> tuple[float, ...]:
    """The standard bounds plus ``extra_ms`` (milliseconds), in seconds, ascending."""
    extra = {round(v / 1000.0, 6) for v in extra_ms if v > 0}
    return tuple(sorted(set(STANDARD_BOUNDS) | extra))


def _interp(x: float, knots: list[tuple[float, float]]) -> float:
    for (x0, y0), (x1, y1) in itertools.pairwise(knots):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return knots[-1][1]


def _bucket(edges: tuple[float, ...], x: float) -> int:
    """Index k of the bucket (edges[k-1], edges[k]] that holds x (edges[0] is 0)."""
    return next(k for k in range(1, len(edges)) if x <= edges[k])


def _through(q: float, x: float, lo: float, up: float, f_lo: float) -> float:
    """Share at ``up`` on the line through ``(lo, f_lo)`` and ``(x, q)``."""
    return q + (q - f_lo) * (up - x) / (x - lo)


def _lowest(q: float, x: float, lo: float, up: float, cap: float) -> float:
    """The least share at ``lo`` whose line through ``(x, q)`` stays at or below ``cap`` at ``up``."""
    return q - (cap - q) * (x - lo) / (up - x) if up > x else 0.0


@functools.lru_cache(maxsize=4096)
def cumulative_shares(bounds: tuple[float, ...], p95_s: float, p99_s: float) -> tuple[float, ...]:
    """Share of requests at or below each bound; the rest lands in the ``+Inf`` bucket."""
    edges = (0.0, *bounds)
    p95 = min(max(p95_s, _TINY), bounds[-1] - _TINY)
    p99 = min(max(p99_s, p95 + _TINY), bounds[-1])
    knots = [(0.0, 0.0), (p95, 0.95), (p99, 0.99), (bounds[-1], 1.0)]
    i, j = _bucket(edges, p95), _bucket(edges, p99)
    lo1, up1, lo2, up2 = edges[i - 1], edges[i], edges[j - 1], edges[j]
    # The share at 0 is 0: in the first bucket the line's lower end is not free.
    pins: dict[int, float] = {0: 0.0}
    if i == j:
        # One bucket holds both targets: one line through both (clamped if it cannot fit).
        slope = 0.04 / (p99 - p95)
        pins[i - 1] = 0.0 if i == 1 else max(0.95 - slope * (p95 - lo1), 0.0)
        pins[i] = min(0.99 + slope * (up1 - p99), 1.0)
    elif j == i + 1:
        # Neighbouring buckets share the bound between them: one share must suit both lines.
        if up1 == p95:
            fits = (0.95, 0.95)
        elif i == 1:
            fits = (_through(0.95, p95, 0.0, up1, 0.0),) * 2
        else:
            fits = (0.95, _through(0.95, p95, lo1, up1, 0.0))
        least, most = max(fits[0], _lowest(0.99, p99, lo2, up2, 1.0)), min(fits[1], 0.99)
        shared = min(max(_interp(up1, knots), least), most) if least <= most else most
        pins[i] = shared
        if i > 1:
            pins[i - 1] = max(
                0.95 - (shared - 0.95) * (p95 - lo1) / (up1 - p95) if up1 > p95 else _interp(lo1, knots), 0.0
            )
        pins[j] = min(_through(0.99, p99, lo2, up2, shared), 1.0) if up2 > p99 else 0.99
    else:
        # Apart: the p95 line ends at or below 0.97, the p99 line starts above that.
        if i > 1:
            pins[i - 1] = min(max(_interp(lo1, knots), _lowest(0.95, p95, lo1, up1, 0.97)), 0.95)
        pins[i] = min(_through(0.95, p95, lo1, up1, pins[i - 1]), 0.97) if up1 > p95 else 0.95
        least = max(pins[i], _lowest(0.99, p99, lo2, up2, 1.0))
        pins[j - 1] = min(max(_interp(lo2, knots), least), 0.99)
        pins[j] = min(_through(0.99, p99, lo2, up2, pins[j - 1]), 1.0) if up2 > p99 else 0.99
    return _fill(edges, pins, knots)


def _fill(edges: tuple[float, ...], pins: dict[int, float], knots: list[tuple[float, float]]) -> tuple[float, ...]:
    """Unpinned bounds follow the reference curve, held between their pinned neighbours."""
    last = len(edges) - 1
    pins.setdefault(last, 1.0)
    pinned = sorted(pins)
    shares = []
    for k in range(1, last + 1):
        if k in pins:
            shares.append(pins[k])
            continue
        below = max(p for p in pinned if p < k)
        above = min(p for p in pinned if p > k)
        shares.append(min(max(_interp(edges[k], knots), pins[below]), pins[above]))
    return tuple(shares)


def mean_seconds(bounds: tuple[float, ...], shares: tuple[float, ...]) -> float:
    """Mean latency, requests spread evenly inside each bucket (what the histogram assumes)."""
    total, below, lower = 0.0, 0.0, 0.0
    for bound, share in zip(bounds, shares, strict=True):
        total += (share - below) * (lower + bound) / 2
        below, lower = share, bound
    return total + (1.0 - below) * bounds[-1]
