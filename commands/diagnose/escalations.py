"""Runbook §4 scenario B · escalation spike: shifted data, a too strict policy, or corruption.

Reads the WORM audit log for the incident window (from the breach's start, else the last
hour) and the hours before it, and the tenant's tolerances from ``policy-<t>``.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from commands.config import RunbookConfig
from commands.diagnose.common import Inputs, Outcome, clock, fired, quiet, ratio_finding, unknown
from commands.diagnose.tolerances import Proposal, WindowStats, propose, quantiles, shift_sigmas
from commands.models import Finding, Scenario, Status
from commands.promql import pct
from integrations.errors import BackendError
from integrations.worm import ScanStats, WormScanner

SCENARIO: Scenario = "escalations"
FALLBACK_WINDOW = timedelta(hours=1)
# The breach's start, computed from a 5 m rate on a 2 m step, lags the change that caused it:
# the incident window opens this much earlier so that a young breach's first records count.
START_SLACK = timedelta(minutes=5)
# Fewer escalations than this in the window: whatever they show is said with low confidence.
FEW_ESCALATIONS = 5


def _scanner(inp: Inputs) -> WormScanner:
    if inp.ctx.worm is None:
        raise BackendError("WORM audit log", "no WORM root configured (FLK_WORM_ROOT)")
    return inp.ctx.worm


def _num(value: float | None) -> str:
    return "missing" if value is None else f"{value:.3g}"


async def ratio(inp: Inputs) -> Finding:
    return ratio_finding("escalations.ratio", "Escalation ratio over time", await inp.trend("escalations"))


async def sample(inp: Inputs) -> Finding:
    cfg = inp.config.diagnosis
    result = await _scanner(inp).newest(
        inp.tenant,
        start=inp.now - timedelta(hours=cfg.sample_lookback_h),
        end=inp.now,
        outcome="escalated",
        n=cfg.sample_size,
    )
    rows = [
        f"{r.ts:%H:%M:%S} {r.pcs_id} D_hat={_num(r.D_hat)} coh_star={_num(r.coh_star)} {r.reason or '-'}"
        for r in result.records
    ]
    summary = f"newest {len(rows)} escalation(s) in the last {cfg.sample_lookback_h:g} h; {result.stats.summary()}"
    status = Status.UNKNOWN if result.stats.missing_root else Status.WARN if result.stats.malformed else Status.OK
    return Finding(
        "escalations.sample",
        "Recent escalations (WORM)",
        status,
        summary,
        evidence=rows,
        data={"pcs_ids": [r.pcs_id for r in result.records], "malformed_lines": result.stats.malformed},
    )


Tolerances = tuple[float, float, dict[str, str]]


def tolerances(inp: Inputs) -> Awaitable[Tolerances]:
    return inp.once("tolerances", lambda: _tolerances(inp))


async def _tolerances(inp: Inputs) -> Tolerances:
    name = inp.name(inp.config.resources.policy_configmap)
    data = (await inp.config_map(inp.config.resources.policy_configmap)).data
    try:
        return float(data["tol_D"]), float(data["tol_coh"]), data
    except (KeyError, ValueError):
        raise BackendError("kubernetes", f"configmap {name} lacks a numeric tol_D / tol_coh") from None


async def policy(inp: Inputs) -> Finding:
    tol_d, tol_coh, data = await tolerances(inp)
    name = inp.name(inp.config.resources.policy_configmap)
    return Finding(
        "escalations.policy",
        "Policy tolerances",
        Status.OK,
        f"`{name}`: tol_D {tol_d:g}, tol_coh {tol_coh:g}",
        facts=dict(sorted(data.items())),
        data={"tol_D": tol_d, "tol_coh": tol_coh},
    )


async def _window(inp: Inputs) -> tuple[datetime, str]:
    """Where the incident window starts, and how to say it."""
    try:
        started = (await inp.trend("escalations")).breach_start
    except BackendError:
        started = None
    if started is None:
        return inp.now - FALLBACK_WINDOW, "in the last hour"
    return datetime.fromtimestamp(started, UTC) - START_SLACK, f"since the breach began ({clock(started)})"


async def _scan(inp: Inputs, start: datetime, end: datetime) -> tuple[WindowStats, ScanStats]:
    cfg = inp.config.diagnosis
    stats, scan = WindowStats(cfg.d_hat_range, cfg.coh_star_range), ScanStats()
    async for batch in _scanner(inp).iter_window(inp.tenant, start=start, end=end, stats=scan):
        stats.add(batch)
    return stats, scan


async def incident(inp: Inputs) -> tuple[WindowStats, ScanStats, str]:
    async def load() -> tuple[WindowStats, ScanStats, str]:
        start, label = await _window(inp)
        stats, scan = await _scan(inp, start, inp.now)
        return stats, scan, label

    return await inp.once("worm:incident", load)


async def baseline(inp: Inputs) -> WindowStats:
    async def load() -> WindowStats:
        start, _ = await _window(inp)
        hours = timedelta(hours=inp.config.diagnosis.baseline_h)
        return (await _scan(inp, start - hours, start - timedelta(milliseconds=1)))[0]

    return await inp.once("worm:baseline", load)


async def distribution(inp: Inputs) -> Finding:
    cfg = inp.config.diagnosis
    stats, scan, label = await incident(inp)
    base = await baseline(inp)
    try:
        tol_d, tol_coh, _ = await tolerances(inp)
    except BackendError:
        tol_d, tol_coh = None, None
    d_esc = [d for d, _ in stats.escalated]
    coh_esc = [c for _, c in stats.escalated]
    shift = {
        "D_hat": shift_sigmas(base.d_values, stats.d_values),
        "coh_star": shift_sigmas(base.coh_values, stats.coh_values),
    }
    facts = {"window": label, "records": f"{stats.records:,}", "escalations": f"{stats.escalations:,}"}
    for name, values, tol_name, tol in (("D_hat", d_esc, "tol_D", tol_d), ("coh_star", coh_esc, "tol_coh", tol_coh)):
        q = quantiles(values)
        if q:
            facts[f"{name} of escalations"] = " · ".join(f"{k} {v:.3g}" for k, v in q.items())
        if tol is not None:
            facts[tol_name] = f"{tol:g}"
        if shift[name] is not None:
            facts[f"{name} shift vs {cfg.baseline_h:g} h before"] = f"{shift[name]:.1f} σ"
    beyond_d = sum(d > tol_d for d in d_esc) if tol_d is not None else None
    below_coh = sum(c < tol_coh for c in coh_esc) if tol_coh is not None else None
    if beyond_d is not None and below_coh is not None:
        facts["escalations beyond tol_D / tol_coh"] = f"{beyond_d} / {below_coh}"
    corrupt = stats.out_of_range / stats.escalations if stats.escalations else 0.0
    facts["missing or out-of-range values"] = f"{stats.out_of_range} ({corrupt:.0%} of escalations)"
    moved = max((s for s in shift.values() if s is not None), default=0.0)
    if not stats.records:
        status = Status.UNKNOWN
    else:
        status = Status.WARN if corrupt >= cfg.corruption_share or moved >= cfg.shift_sigmas else Status.OK
    summary = f"{stats.escalations} of {stats.records} records escalated {label}"
    median_d = statistics.median(d_esc) if d_esc else None
    median_coh = statistics.median(coh_esc) if coh_esc else None
    if median_d is not None:
        summary += f"; escalations' median D_hat {median_d:.3g}, coh_star {_num(median_coh)}"
    summary += f"; {scan.summary()}"
    return Finding(
        "escalations.distribution",
        "D_hat / coh_star vs tolerances",
        status,
        summary,
        facts=facts,
        data={
            "window": label,
            "records": stats.records,
            "escalations": stats.escalations,
            "out_of_range": stats.out_of_range,
            "shift": shift,
            "baseline_records": base.records,
            "median_D_hat": median_d,
            "median_coh_star": median_coh,
            "tol_D": tol_d,
            "tol_coh": tol_coh,
            "malformed_lines": scan.malformed,
        },
    )


def _proposal_text(p: Proposal, tol_d: float, tol_coh: float, slo: float) -> str:
    if not p.feasible:
        return (
            f"no tolerance keeps escalations ≤ {pct(slo)}: {p.stuck} of {p.current} escalations lie inside both "
            "tolerances or carry bad values"
        )
    if p.would_be == p.current:
        return f"the current tolerances already kept escalations at {pct(p.ratio(p.current))} (SLO {pct(slo)})"
    changes = [
        f"{name} {old:g} → {new:g}" if new != old else f"{name} {old:g} (unchanged)"
        for name, old, new in (("tol_D", tol_d, p.tol_D), ("tol_coh", tol_coh, p.tol_coh))
    ]
    return (
        f"{', '.join(changes)}: {p.would_be} of {p.records:,} records ({pct(p.ratio(p.would_be))}) "
        f"would have escalated, against {p.current} ({pct(p.ratio(p.current))})"
    )


async def proposal(inp: Inputs) -> Finding:
    stats, _, label = await incident(inp)
    tol_d, tol_coh, _ = await tolerances(inp)
    slo = inp.config.slo.escalation_ratio
    p = propose(stats, tol_d, tol_coh, slo)
    if p is None:
        return Finding("escalations.proposal", "Tolerance proposal (§7)", Status.UNKNOWN, f"no WORM records {label}")
    text = _proposal_text(p, tol_d, tol_coh, slo)
    return Finding(
        "escalations.proposal",
        "Tolerance proposal (§7)",
        Status.OK,
        f"{text} {label}; a proposal for review (approval + canary), never applied",
        facts={"tol_D": f"{tol_d:g} → {p.tol_D:g}", "tol_coh": f"{tol_coh:g} → {p.tol_coh:g}"},
        data={"text": text, "tol_D": p.tol_D, "tol_coh": p.tol_coh, "feasible": p.feasible, "would_be": p.would_be},
    )


PROBES = (
    ("escalations.ratio", "Escalation ratio over time", ratio),
    ("escalations.sample", "Recent escalations (WORM)", sample),
    ("escalations.policy", "Policy tolerances", policy),
    ("escalations.distribution", "D_hat / coh_star vs tolerances", distribution),
    ("escalations.proposal", "Tolerance proposal (§7)", proposal),
)


def decide(data: dict[str, dict], config: RunbookConfig, tenant: str, now: float) -> Outcome:
    sli = data.get("escalations.ratio", {})
    value, slo = sli.get("ratio"), config.slo.escalation_ratio
    if value is None:
        return unknown(SCENARIO, "the escalation ratio could not be read")
    if value <= slo:
        return quiet(SCENARIO, "escalations within SLO", [f"escalation ratio {pct(value)} ≤ SLO {pct(slo)}"])
    started = sli.get("breach_start")
    evidence = [f"escalation ratio {pct(value)} > SLO {pct(slo)}" + (f" since {clock(started)}" if started else "")]
    dist = data.get("escalations.distribution")
    if not dist or not dist["records"]:
        evidence.append("no WORM audit records of the incident window could be read: the cause is not determined")
        return fired(
            SCENARIO,
            "cause not determined",
            evidence,
            [f"export {tenant} escalations"],
            cause=None,
            confidence="low",
            rule="no WORM records of the incident window",
            cites=("escalations.ratio",),
        )
    proposal_text = data.get("escalations.proposal", {}).get("text")
    review = [f"for the §7 policy review: {proposal_text}"] if proposal_text else []
    cfg = config.diagnosis
    escalations, bad = dist["escalations"], dist["out_of_range"]
    few = escalations < FEW_ESCALATIONS
    cites = ("escalations.ratio", "escalations.distribution")
    if few:
        evidence.append(f"only {escalations} escalation(s) in the WORM window {dist['window']}: a thin sample")
    if escalations and bad / escalations >= cfg.corruption_share:
        evidence.append(f"{bad} of {escalations} escalations carry missing or out-of-range D_hat / coh_star")
        if dist.get("malformed_lines"):
            evidence.append(f"{dist['malformed_lines']} malformed WORM lines skipped")
        evidence.append("resolution: investigate the tenant's agent logs and upstream systems")
        return fired(
            SCENARIO,
            "upstream corruption",
            evidence,
            [f"export {tenant} escalations", f"notify {tenant}"],
            cause="upstream_corruption",
            confidence="low" if few else "high",
            rule=f"{bad / escalations:.0%} of escalations malformed (≥ {cfg.corruption_share:.0%})",
            cites=cites,
        )
    shifts = {k: v for k, v in dist["shift"].items() if v is not None and v >= cfg.shift_sigmas}
    if shifts:
        moved = ", ".join(f"{k} median moved {v:.1f} σ" for k, v in shifts.items())
        evidence.append(f"the tenant's data moved {dist['window']} against the {cfg.baseline_h:g} h before: {moved}")
        evidence += review
        evidence.append("resolution: discuss with the tenant; the policy may need adjusting")
        steps = [f"mitigate {tenant} degraded-mode", f"export {tenant} escalations", f"notify {tenant}"]
        return fired(
            SCENARIO,
            "data distribution shifted",
            evidence,
            steps,
            cause="distribution_shift",
            confidence="high",
            rule=f"a median moved ≥ {cfg.shift_sigmas:g} σ against the baseline",
            cites=cites,
        )
    evidence.append(
        f"the data did not move (baseline vs {dist['window']}); escalations' median D_hat "
        f"{_num(dist.get('median_D_hat'))} vs tol_D {_num(dist.get('tol_D'))}, coh_star "
        f"{_num(dist.get('median_coh_star'))} vs tol_coh {_num(dist.get('tol_coh'))}"
    )
    evidence += review
    evidence.append("resolution: propose a tolerance relaxation (needs approval and a canary)")
    return fired(
        SCENARIO,
        "policy too strict",
        evidence,
        [f"export {tenant} escalations", f"mitigate {tenant} degraded-mode"],
        cause="policy_too_strict",
        # By elimination: nothing else in the data explains the escalations.
        confidence="low" if few else "medium",
        rule="no shift and no corruption in the WORM records: the tolerances, by elimination",
        cites=(*cites, "escalations.proposal"),
    )
