"""Scenario B's arithmetic: the proposed tolerances against a brute-force search, the shift
measure, and the streaming window summary."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from commands.diagnose.tolerances import RESERVOIR, WindowStats, propose, shift_sigmas
from integrations.worm import WormRecord

RANGES = ((0.0, 3.0), (0.0, 1.0))
T = datetime(2031, 5, 4, tzinfo=UTC)


def record(d: float | None, coh: float | None, escalated: bool) -> WormRecord:
    return WormRecord(T, "t1", "pcs-1", d, coh, "escalated" if escalated else "accepted", "", "v1")


def window(tol_d: float, tol_coh: float, rng: random.Random, n: int = 400) -> WindowStats:
    """Records whose outcome follows the rule at the given tolerances, plus a few oddities."""
    stats = WindowStats(*RANGES)
    rows = []
    for _ in range(n):
        d, coh = round(rng.gauss(tol_d - 0.1, 0.12), 3), round(rng.gauss(tol_coh + 0.05, 0.05), 3)
        rows.append(record(d, coh, d > tol_d or coh < tol_coh))
    rows.append(record(tol_d - 0.2, tol_coh + 0.1, True))  # escalated for another reason
    rows.append(record(None, 0.8, True))  # corrupt
    stats.add(rows)
    return stats


def escalations_with(stats: WindowStats, tol_d: float, tol_coh: float, old_d: float, old_coh: float) -> int:
    """Escalations with relaxed tolerances: the ones the old rule does not explain stay."""
    stuck = stats.out_of_range + sum(not (d > old_d or c < old_coh) for d, c in stats.escalated)
    return stuck + sum((d > tol_d or c < tol_coh) and (d > old_d or c < old_coh) for d, c in stats.escalated)


def brute_force(stats: WindowStats, tol_d: float, tol_coh: float, slo: float) -> float:
    """The least relative relaxation on a 0.01 grid that meets the SLO."""
    budget = math.floor(slo * stats.records + 1e-9)
    best = math.inf
    for i in range(0, 200):
        for j in range(0, 100):
            d, c = round(tol_d + i / 100, 2), round(tol_coh - j / 100, 2)
            if escalations_with(stats, d, c, tol_d, tol_coh) <= budget:
                best = min(best, (d - tol_d) / tol_d + (tol_coh - c) / tol_coh)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_proposal_meets_the_slo_with_the_least_relaxation(seed: int) -> None:
    rng = random.Random(seed)
    tol_d, tol_coh, slo = 1.2, 0.75, 0.02
    stats = window(tol_d, tol_coh, rng)
    proposal = propose(stats, tol_d, tol_coh, slo)
    assert proposal is not None and proposal.feasible
    assert proposal.tol_D >= tol_d and proposal.tol_coh <= tol_coh
    assert proposal.current == stats.escalations
    assert proposal.stuck == 2
    assert proposal.would_be == escalations_with(stats, proposal.tol_D, proposal.tol_coh, tol_d, tol_coh)
    assert proposal.would_be <= slo * stats.records
    cost = (proposal.tol_D - tol_d) / tol_d + (tol_coh - proposal.tol_coh) / tol_coh
    # Rounding outwards to two decimals may cost at most one step on each side.
    assert cost <= brute_force(stats, tol_d, tol_coh, slo) + 0.01 / tol_d + 0.01 / tol_coh + 1e-9


def test_already_under_the_slo_changes_nothing() -> None:
    stats = WindowStats(*RANGES)
    stats.add([record(1.0, 0.9, False)] * 99 + [record(1.9, 0.9, True)])
    proposal = propose(stats, 1.5, 0.7, 0.02)
    assert proposal is not None
    assert (proposal.tol_D, proposal.tol_coh, proposal.would_be) == (1.5, 0.7, 1)


def test_escalations_no_tolerance_explains_make_it_infeasible() -> None:
    stats = WindowStats(*RANGES)
    stats.add([record(1.0, 0.9, False)] * 90 + [record(-1.0, 0.9, True)] * 5 + [record(1.9, 1.4, True)] * 5)
    proposal = propose(stats, 1.5, 0.7, 0.02)
    assert proposal is not None and not proposal.feasible
    assert (stats.out_of_range, proposal.stuck) == (10, 10)
    assert propose(WindowStats(*RANGES), 1.5, 0.7, 0.02) is None


def test_shift_in_baseline_standard_deviations() -> None:
    rng = random.Random(1)
    base = [rng.gauss(1.25, 0.1) for _ in range(2000)]
    assert shift_sigmas(base, [rng.gauss(1.25, 0.1) for _ in range(300)]) == pytest.approx(0, abs=0.3)
    assert shift_sigmas(base, [rng.gauss(1.75, 0.1) for _ in range(300)]) == pytest.approx(5, abs=0.5)
    assert shift_sigmas(base, [1.7] * 3) is None  # too few to tell


def test_window_values_stay_bounded() -> None:
    stats = WindowStats(*RANGES)
    stats.add(record(1.0 + i / 1e6, 0.8, False) for i in range(RESERVOIR * 2))
    assert stats.records == RESERVOIR * 2
    assert len(stats.d_values) == len(stats.coh_values) == RESERVOIR
    # A fair sample of the whole stream, not its first half.
    assert max(stats.d_values) > 1.0 + RESERVOIR / 1e6
