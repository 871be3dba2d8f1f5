"""Scenario B's arithmetic on WORM records: distributions, shift, and the tolerances that would
have kept the escalation ratio under the SLO. Pure functions, no IO.

The policy's rule is taken as the runbook states it: a record escalates when ``D_hat >
tol_D`` or ``coh_star < tol_coh``. Relaxing a tolerance can only turn escalations into
accepts, so a proposal is computed from the escalated records and the window's total.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from integrations.worm import WormRecord

MIN_RECORDS = 10
# Values kept per window for medians; a seeded reservoir beyond that, so memory stays bounded.
RESERVOIR = 20_000
# Candidate tol_coh values tried at most (quantiles of the escalations' coh_star beyond that).
MAX_CANDIDATES = 200

Range = tuple[float, float]


def in_range(value: float, bounds: Range) -> bool:
    return bounds[0] <= value <= bounds[1]


@dataclass
class WindowStats:
    """Streaming summary of a window's records: counts, escalations, sampled in-range values."""

    d_range: Range
    coh_range: Range
    records: int = 0
    # (D_hat, coh_star) of every escalation whose values are present and in range.
    escalated: list[tuple[float, float]] = field(default_factory=list)
    # Escalations with a missing or out-of-range value: upstream corruption's mark.
    out_of_range: int = 0
    d_values: list[float] = field(default_factory=list)
    coh_values: list[float] = field(default_factory=list)
    _seen: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    @property
    def escalations(self) -> int:
        return len(self.escalated) + self.out_of_range

    def add(self, records: Iterable[WormRecord]) -> None:
        for r in records:
            self.records += 1
            d, coh, escalated = r.D_hat, r.coh_star, r.verify_outcome == "escalated"
            if d is None or coh is None or not (in_range(d, self.d_range) and in_range(coh, self.coh_range)):
                self.out_of_range += escalated
                continue
            if escalated:
                self.escalated.append((d, coh))
            self._keep(d, coh)

    def _keep(self, d: float, coh: float) -> None:
        self._seen += 1
        if len(self.d_values) < RESERVOIR:
            self.d_values.append(d)
            self.coh_values.append(coh)
            return
        slot = self._rng.randrange(self._seen)
        if slot < RESERVOIR:
            self.d_values[slot], self.coh_values[slot] = d, coh


def quantiles(values: Sequence[float]) -> dict[str, float] | None:
    """p10 / p50 / p90 of the values, or None when there are too few."""
    if len(values) < 2:
        return None
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return {"p10": cuts[0], "p50": statistics.median(values), "p90": cuts[8]}


def shift_sigmas(baseline: Sequence[float], recent: Sequence[float]) -> float | None:
    """How far the recent median lies from the baseline's, in baseline (robust) standard deviations."""
    if len(baseline) < MIN_RECORDS or len(recent) < MIN_RECORDS:
        return None
    centre = statistics.median(baseline)
    # 1.4826 × MAD estimates the standard deviation of normal data, unmoved by outliers.
    spread = 1.4826 * statistics.median(abs(v - centre) for v in baseline) or statistics.pstdev(baseline)
    moved = abs(statistics.median(recent) - centre)
    if spread == 0:
        return 0.0 if moved == 0 else math.inf
    return moved / spread


@dataclass(frozen=True)
class Proposal:
    tol_D: float
    tol_coh: float
    records: int
    current: int  # escalations in the window
    would_be: int  # escalations with the proposed tolerances
    stuck: int  # escalations no tolerance explains (out of range, or inside both tolerances)
    feasible: bool

    def ratio(self, escalations: int) -> float:
        return escalations / self.records if self.records else 0.0


def _escalates(d: float, coh: float, tol_d: float, tol_coh: float) -> bool:
    return d > tol_d or coh < tol_coh


def _candidates(values: Sequence[float], tol_coh: float) -> list[float]:
    below = sorted({v for v in values if v < tol_coh}, reverse=True)
    if len(below) > MAX_CANDIDATES:
        step = len(below) / MAX_CANDIDATES
        below = [below[min(len(below) - 1, round(i * step))] for i in range(MAX_CANDIDATES)] + [below[-1]]
    return [tol_coh, *below]


def propose(stats: WindowStats, tol_d: float, tol_coh: float, slo: float) -> Proposal | None:
    """The least relaxation of (tol_D, tol_coh) that keeps the window's escalation ratio ≤ ``slo``.

    Least = smallest sum of relative changes. Rounded outwards to two decimals, then the
    would-be escalations are recounted with the rounded values.
    """
    if stats.records == 0:
        return None
    budget = math.floor(slo * stats.records + 1e-9)
    fixable = [(d, coh) for d, coh in stats.escalated if _escalates(d, coh, tol_d, tol_coh)]
    stuck = stats.escalations - len(fixable)
    current = stats.escalations
    if current <= budget:
        return Proposal(tol_d, tol_coh, stats.records, current, current, stuck, True)
    if stuck > budget:
        return Proposal(tol_d, tol_coh, stats.records, current, current, stuck, False)
    best: tuple[float, float, float] | None = None
    for c in _candidates([coh for _, coh in fixable], tol_coh):
        kept_by_coh = sum(coh < c for _, coh in fixable)
        allowed = budget - stuck - kept_by_coh
        if allowed < 0:
            continue
        over = sorted((d for d, coh in fixable if coh >= c and d > tol_d), reverse=True)
        new_d = tol_d if allowed >= len(over) else over[allowed]
        cost = (new_d - tol_d) / tol_d + (tol_coh - c) / tol_coh
        if best is None or cost < best[0]:
            best = (cost, new_d, c)
    assert best is not None  # the lowest candidate lets every coh pass, so some tol_D fits
    new_d = max(tol_d, math.ceil(round(best[1] * 100, 6)) / 100)
    new_coh = min(tol_coh, math.floor(round(best[2] * 100, 6)) / 100)
    would_be = stuck + sum(_escalates(d, coh, new_d, new_coh) for d, coh in fixable)
    return Proposal(new_d, new_coh, stats.records, current, would_be, stuck, True)
