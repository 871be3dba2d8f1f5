"""Pure arithmetic on series and counts that triage and diagnose both weigh as evidence: when a
rate rose to its current level, how a rate compares before and after a moment, how unevenly
some sources share a total."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

Points = Sequence[tuple[float, float]]
# A rate "rose" at the latest point from which it stayed at least this share of where it is now.
LEVEL_SHARE = 0.5
# Two moments this close (seconds) count as one: 5 m rate windows and 2 m steps blur both.
SAME_TIME_S = 600


def level_onset(points: Points, share: float = LEVEL_SHARE) -> float | None:
    """When the series rose to (``share`` of) its current level and stayed there; the first
    point's time when it never was lower; None when it is zero now."""
    if not points or points[-1][1] <= 0:
        return None
    floor = share * points[-1][1]
    start = points[-1][0]
    for t, v in reversed(points):
        if v < floor:
            break
        start = t
    return start


def mean_between(points: Points, start: float, end: float) -> float | None:
    values = [v for t, v in points if start <= t <= end]
    return statistics.fmean(values) if values else None


def rise(points: Points, at: float, now: float) -> float | None:
    """The series after ``at`` over before it (a few minutes either side are skipped: the rate
    window smears the change); None when either side has no points."""
    before = mean_between(points, at - 20 * 60, at - 3 * 60)
    after = mean_between(points, at + 5 * 60, now) if now - at >= 7 * 60 else None
    if after is None and points:
        after = points[-1][1]
    if not before or after is None:
        return None
    return after / before


def gini(counts: Sequence[float]) -> float:
    """0 when every source carries the same, towards 1 when a few carry nearly all."""
    values = sorted(c for c in counts if c >= 0)
    n, total = len(values), sum(values)
    if n < 2 or total == 0:
        return 0.0
    weighted = sum((i + 1) * v for i, v in enumerate(values))
    return (2 * weighted) / (n * total) - (n + 1) / n
