"""Runbook §3.2: the tenant health dashboard as findings: trends, latency, quota, signatures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from commands.context import Context
from commands.models import Finding, Status
from commands.promql import escalation_ratio, pct, selector, signature_error_ratio
from commands.signals import level_onset, rise

AGES: tuple[tuple[str, timedelta], ...] = (
    ("now", timedelta(0)),
    ("1h ago", timedelta(hours=1)),
    ("6h ago", timedelta(hours=6)),
    ("24h ago", timedelta(hours=24)),
)


QUOTA_RANGE = timedelta(hours=6)
QUOTA_STEP_S = 60
# Rejections at this share of ingest or more are worth a look, whatever the SLO.
QUOTA_NOTICE_SHARE = 0.01


def breach_start(points: list[tuple[float, float]], slo: float) -> float | None:
    """Start of the breach still running at the end of the series, or None if the SLI is fine now."""
    if not points or points[-1][1] <= slo:
        return None
    start = points[-1][0]
    for t, v in reversed(points):
        if v <= slo:
            break
        start = t
    return start


async def trend(ctx: Context, tenant: str) -> Finding:
    cfg = ctx.config
    now = datetime.now(UTC)
    queries = {"escalations": escalation_ratio(cfg, tenant), "signature errors": signature_error_ratio(cfg, tenant)}
    slos = {"escalations": cfg.slo.escalation_ratio, "signature errors": cfg.slo.signature_error_ratio}
    # Points and ranges in one gather: one round trip of latency, not two.
    answers = await asyncio.gather(
        *(ctx.prometheus.scalar(q, now - age) for q in queries.values() for _, age in AGES),
        *(ctx.prometheus.query_range(q, now - timedelta(hours=24), now, 120) for q in queries.values()),
    )
    points, ranges = answers[: len(queries) * len(AGES)], answers[len(queries) * len(AGES) :]
    facts: dict[str, str] = {}
    data: dict[str, object] = {}
    series: dict[str, list[tuple[float, float]]] = {}
    status = Status.OK
    for i, (name, slo) in enumerate(slos.items()):
        values = points[i * len(AGES) : (i + 1) * len(AGES)]
        facts[name] = " · ".join(f"{label} {pct(v)}" for (label, _), v in zip(AGES, values, strict=True))
        data[name] = dict(zip((label for label, _ in AGES), values, strict=True))
        line = ranges[i][0].points if ranges[i] else []
        series[name] = line
        started = breach_start(line, slo)
        data[f"{name} breach_start"] = started
        if started is not None:
            status = Status.BREACH
            facts[f"{name} breach since"] = datetime.fromtimestamp(started, UTC).strftime("%H:%M UTC")
    summary = "; ".join(f"{k}: {v.split(' · ')[0].removeprefix('now ')} now" for k, v in facts.items() if "·" in v)
    return Finding("health.trend", "Error trend (1h, 6h, 24h)", status, summary, facts=facts, series=series, data=data)


async def latency(ctx: Context, tenant: str) -> Finding:
    cfg = ctx.config
    sel, w = selector(ctx.config, tenant), cfg.slo.window
    bucket = cfg.metrics.latency_bucket
    p95, p99 = await asyncio.gather(
        *(
            ctx.prometheus.scalar(f"histogram_quantile({q}, sum by (le) (rate({bucket}{sel}[{w}])))")
            for q in (0.95, 0.99)
        )
    )
    if p95 is None or p99 is None:
        return Finding("health.latency", "Latency", Status.UNKNOWN, "no latency histogram samples")
    return Finding(
        "health.latency",
        "Latency",
        Status.OK,
        f"p95 {p95 * 1000:.0f} ms · p99 {p99 * 1000:.0f} ms",
        facts={"p95": f"{p95 * 1000:.0f} ms", "p99": f"{p99 * 1000:.0f} ms"},
        data={"p95_s": p95, "p99_s": p99},
    )


async def quota_hits(ctx: Context, tenant: str) -> Finding:
    """Rejections now, their share of ingest, and when they rose to this level: a rise that starts
    with the breach is a quota lead whatever its share."""
    cfg = ctx.config
    sel, w = selector(cfg, tenant), cfg.slo.window
    now = datetime.now(UTC)
    rejected, ingested = (f"sum(rate({m}{sel}[{w}]))" for m in (cfg.metrics.quota_exceeded, cfg.metrics.ingest))
    hits_1h, rate_now, ingest, ranges = await asyncio.gather(
        ctx.prometheus.scalar(f"sum(increase({cfg.metrics.quota_exceeded}{sel}[1h]))"),
        ctx.prometheus.scalar(rejected),
        ctx.prometheus.scalar(ingested),
        asyncio.gather(
            *(ctx.prometheus.query_range(q, now - QUOTA_RANGE, now, QUOTA_STEP_S) for q in (rejected, ingested))
        ),
    )
    hits_1h, rate_now = hits_1h or 0.0, rate_now or 0.0
    share = rate_now / ingest if ingest else 0.0
    rej_points, ingest_points = (r[0].points if r else [] for r in ranges)
    onset = level_onset(rej_points)
    grew = rise(ingest_points, onset, now.timestamp()) if onset is not None else None
    # Over its share is breaching; a share worth noticing is suspicious; a trickle is the limit working.
    status = (
        Status.BREACH
        if share > cfg.slo.quota_exceeded_share
        else Status.WARN
        if share >= QUOTA_NOTICE_SHARE
        else Status.OK
    )
    summary = f"{hits_1h:.0f} quota rejections in the last hour; now {rate_now:.1f}/s ({share:.0%} of ingest)"
    facts = {"last 1h": f"{hits_1h:.0f}", "now": f"{rate_now:.1f}/s", "share of ingest": f"{share:.0%}"}
    if onset is not None:
        facts["at this level since"] = datetime.fromtimestamp(onset, UTC).strftime("%H:%M UTC")
        summary += f", at this level since {facts['at this level since']}"
    return Finding(
        "health.quota",
        "Rate-limit hits",
        status,
        summary,
        facts=facts,
        series={"quota rejections/s": list(rej_points)},
        data={
            "hits_1h": hits_1h,
            "rate": rate_now,
            "share": share,
            "ingest_rps": ingest,
            "onset": onset,
            "ingest_rise": grew,
        },
    )


async def quota_config(ctx: Context, tenant: str) -> Finding:
    body = await ctx.admin.tenant(tenant)
    keys = ("token_rate", "burst_rate", "daily_quota", "daily_used")
    facts = {k: str(body[k]) for k in keys if k in body}
    missing = [k for k in ("token_rate", "burst_rate", "daily_quota") if k not in body]
    if missing:
        return Finding.error(
            "health.quota_config", "Quota config", f"admin API answer lacks {', '.join(missing)}", "admin API"
        )
    status = Status.OK
    summary = f"token_rate {body['token_rate']}/s · burst_rate {body['burst_rate']} · daily_quota {body['daily_quota']}"
    used, quota = body.get("daily_used"), body.get("daily_quota")
    if isinstance(used, int | float) and isinstance(quota, int | float) and quota:
        summary += f" ({used / quota:.0%} used today)"
        status = Status.WARN if used / quota > 0.9 else Status.OK
    return Finding("health.quota_config", "Quota config", status, summary, facts=facts, data=dict(body))


async def signature_failures(ctx: Context, tenant: str) -> Finding:
    """The failures of the last hour, and whether they are a breach: the ratio now against its SLO."""
    cfg = ctx.config
    sel, slo = selector(cfg, tenant), cfg.slo.signature_error_ratio
    last_hour, ratio_now = await asyncio.gather(
        ctx.prometheus.scalar(f"sum(increase({cfg.metrics.signature_errors}{sel}[1h]))"),
        ctx.prometheus.scalar(signature_error_ratio(cfg, tenant)),
    )
    count = last_hour or 0.0
    ratio = ratio_now or 0.0
    status = Status.BREACH if ratio > slo else Status.WARN if ratio > 0.75 * slo else Status.OK
    summary = f"{count:.0f} signature failures in the last hour; {pct(ratio)} of requests now (SLO {pct(slo)})"
    return Finding(
        "health.signatures",
        "Signature failures",
        status,
        summary,
        data={"count_1h": count, "ratio": ratio, "slo": slo},
    )
