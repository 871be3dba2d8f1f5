"""Runbook §4 scenario C · quota exceeded: a legitimate burst, a client retry storm, or an attack.

Quota explains a breach only when an SLI is over its SLO and the rejections either exceed their
share of ingest or began when the breach did. The request pattern comes from the tenant's
``quota exceeded`` log lines of the last hour: per source, the intervals between its requests,
and how unevenly the sources share them. A retry loop hits at fixed short intervals from few
sources; a legitimate burst is the tenant's own traffic growing (ingest rose with the
rejections) spread over its clients; rejections that a few sources carry, or that came
without any growth in the tenant's traffic, are an attack.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import timedelta

from commands.config import Diagnosis, RunbookConfig
from commands.diagnose.common import Inputs, LogLine, Outcome, breaching, clock, earliest, fired, quiet, unknown
from commands.diagnose.offers import ATTACK_SOURCES
from commands.models import Finding, Scenario, Status
from commands.promql import selector
from commands.signals import SAME_TIME_S, gini, level_onset, rise
from integrations.errors import BackendError

SCENARIO: Scenario = "quota"
MIN_LINES_PER_SOURCE = 3
RANGE = timedelta(hours=6)
RANGE_STEP_S = 60
# Rejections under this share of ingest are the rate limit doing its job, whenever they began.
MIN_LEAD_SHARE = 0.01
# How unevenly the sources share the rejections (Gini) above which a few of them carry most.
CONCENTRATED = 0.35
# Ingest after the rejections began over before it, from which the tenant's own traffic grew.
INGEST_ROSE = 1.2
# A source carrying at least this share of the rejections is one an IP block would relieve: an
# attack's block is offered for those only (blocking a long tail of one-off clients relieves nothing).
HEAVY_SOURCE_SHARE = 0.1


async def limits(inp: Inputs) -> Finding:
    body = await inp.ctx.admin.tenant(inp.tenant)
    wanted = ("token_rate", "burst_rate", "daily_quota")
    missing = [k for k in wanted if not isinstance(body.get(k), int | float) or isinstance(body.get(k), bool)]
    if missing:
        return Finding.error(
            "quota.config", "Quota config (admin API)", f"admin API answer lacks {', '.join(missing)}", "admin API"
        )
    facts = {
        k: f"{body[k]:,}" for k in (*wanted, "daily_used", "rate_limit_hits_1h") if isinstance(body.get(k), int | float)
    }
    summary = (
        f"token_rate {body['token_rate']}/s · burst_rate {body['burst_rate']} · daily_quota {body['daily_quota']:,}"
    )
    status = Status.OK
    used = body.get("daily_used")
    if isinstance(used, int | float) and body["daily_quota"]:
        summary += f" ({used / body['daily_quota']:.0%} used today)"
        status = Status.WARN if used / body["daily_quota"] > 0.9 else Status.OK
    return Finding(
        "quota.config", "Quota config (admin API)", status, summary, facts=facts, data={k: body[k] for k in wanted}
    )


def hits(inp: Inputs) -> Awaitable[Finding]:
    """Read once: the log and pattern probes take their status from whether it is a lead."""
    return inp.once("quota:hits", lambda: _hits(inp))


async def _lead_status(inp: Inputs) -> Status:
    """WARN when the rejections explain (part of) a breach, else OK: a trickle is the limit working."""
    try:
        found = await hits(inp)
    except BackendError:
        return Status.WARN  # cannot tell: the hits finding says why
    return Status.WARN if found.status is Status.BREACH else Status.OK


async def _hits(inp: Inputs) -> Finding:
    cfg = inp.config
    sel, w = selector(cfg, inp.tenant), cfg.slo.window
    prom = inp.ctx.prometheus
    rejected, ingested = (f"sum(rate({m}{sel}[{w}]))" for m in (cfg.metrics.quota_exceeded, cfg.metrics.ingest))
    last_hour, rate, ingest, ranges, slis = await asyncio.gather(
        prom.scalar(f"sum(increase({cfg.metrics.quota_exceeded}{sel}[1h]))"),
        prom.scalar(rejected),
        prom.scalar(ingested),
        asyncio.gather(*(prom.query_range(q, inp.now - RANGE, inp.now, RANGE_STEP_S) for q in (rejected, ingested))),
        inp.slis(),
    )
    last_hour, rate = last_hour or 0.0, rate or 0.0
    share = rate / ingest if ingest else 0.0
    rej_points, ingest_points = (r[0].points if r else [] for r in ranges)
    onset = level_onset(rej_points)
    now = inp.now.timestamp()
    grew = rise(ingest_points, onset, now) if onset is not None else None
    started = earliest(breaching(slis))
    with_breach = onset is not None and started is not None and abs(onset - started) <= SAME_TIME_S
    over = share > cfg.slo.quota_exceeded_share
    summary = f"{last_hour:,.0f} quota rejections in the last hour; now {rate:.1f}/s ({share:.0%} of ingest)"
    if onset is not None:
        summary += f"; at this level since {clock(onset)}"
        if started is not None:
            summary += " (with the breach)" if with_breach else f" (breach since {clock(started)})"
    if started is not None and (over or (with_breach and share >= MIN_LEAD_SHARE)):
        status = Status.BREACH
    else:
        status = Status.WARN if share >= MIN_LEAD_SHARE or over else Status.OK
    return Finding(
        "quota.hits",
        "Rate-limit hits (1h)",
        status,
        summary,
        facts={"last 1h": f"{last_hour:,.0f}", "now": f"{rate:.1f}/s", "share of ingest": f"{share:.0%}"},
        series={"quota rejections/s": list(rej_points)},
        data={
            "hits_1h": last_hour,
            "rate": rate,
            "share": share,
            "onset": onset,
            "ingest_rise": grew,
            "slis": slis,
            "breach_start": started,
            "with_breach": with_breach,
            "over": over,
        },
    )


async def _rejections(inp: Inputs) -> list[LogLine]:
    wanted = inp.config.diagnosis.quota_exceeded_message.lower()
    return [line for line in await inp.tenant_lines() if wanted in line.msg.lower()]


async def logs(inp: Inputs) -> Finding:
    cfg = inp.config.diagnosis
    lines = await _rejections(inp)
    sources = Counter(line.source or "unknown" for line in lines)
    top = sources.most_common(cfg.top_sources)
    window = f"{cfg.log_window_s / 60:.0f} min"
    if not lines:
        summary, status = f"no `{cfg.quota_exceeded_message}` lines for `{inp.tenant}` in the last {window}", Status.OK
    else:
        summary = (
            f"{len(lines):,} `{cfg.quota_exceeded_message}` lines in the last {window} from {len(sources)} source(s)"
        )
        summary += "; top: " + ", ".join(f"{ip} ×{n:,}" for ip, n in top[:3])
        status = await _lead_status(inp)
    return Finding(
        "quota.logs",
        "Quota-exceeded lines and top sources (1h)",
        status,
        summary,
        evidence=[f"{n:>7,} {ip}" for ip, n in top],
        data={"count": len(lines), "sources": len(sources), "top": top, ATTACK_SOURCES: _heavy(top, len(lines))},
    )


def _heavy(top: list[tuple[str, int]], total: int) -> list[str]:
    """The top sources that each carry a real share of the rejections (an unknown one is no address)."""
    return [ip for ip, n in top if ip != "unknown" and total and n / total >= HEAVY_SOURCE_SHARE]


@dataclass(frozen=True)
class SourcePattern:
    source: str
    lines: int
    median_interval_s: float
    cv: float  # standard deviation over mean of the intervals: 0 for a metronome, ~1 at random


@dataclass(frozen=True)
class Pattern:
    sources: int
    lines: int
    per_source: list[SourcePattern]
    regular_share: float  # share of the lines sent at fixed short intervals
    concentration: float  # Gini of the lines per source: 0 even, towards 1 when a few carry most

    def kind(self, cfg: Diagnosis, ingest_rise: float | None) -> str:
        if self.regular_share >= 0.5 and self.sources <= cfg.retry_max_sources:
            return "retry storm"
        if self.concentration >= CONCENTRATED and self.sources >= 2:
            return "attack"
        if ingest_rise is None:
            return "attack" if self.sources >= cfg.attack_min_sources else "legitimate burst"
        return "legitimate burst" if ingest_rise >= INGEST_ROSE else "attack"


def pattern(times_by_source: dict[str, list[float]], cfg: Diagnosis) -> Pattern:
    """The request-timestamp pattern: per source, how long and how regular its intervals are."""
    per_source = []
    for source, times in times_by_source.items():
        if len(times) < MIN_LINES_PER_SOURCE:
            continue
        ordered = sorted(times)
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        mean = statistics.fmean(gaps)
        cv = statistics.pstdev(gaps) / mean if mean > 0 else 0.0
        per_source.append(SourcePattern(source, len(times), statistics.median(gaps), cv))
    per_source.sort(key=lambda p: p.lines, reverse=True)
    total = sum(len(t) for t in times_by_source.values())
    regular = sum(
        p.lines for p in per_source if p.cv <= cfg.retry_max_cv and p.median_interval_s <= cfg.retry_max_interval_s
    )
    counts = [len(t) for t in times_by_source.values()]
    return Pattern(len(times_by_source), total, per_source, regular / total if total else 0.0, gini(counts))


async def timing(inp: Inputs) -> Finding:
    cfg = inp.config.diagnosis
    times: dict[str, list[float]] = defaultdict(list)
    for line in await _rejections(inp):
        times[line.source or "unknown"].append(line.ts.timestamp())
    if not times:
        return Finding("quota.pattern", "Request pattern", Status.OK, "no rejected requests to look at")
    p = pattern(times, cfg)
    evidence = [
        f"{s.source}: {s.lines:,} requests, every {s.median_interval_s:.3g} s (CV {s.cv:.2f})"
        for s in p.per_source[: cfg.top_sources]
    ]
    summary = f"{p.regular_share:.0%} of {p.lines:,} rejected requests at fixed short intervals"
    summary += f", {p.sources} source(s), unevenness {p.concentration:.2f}"
    return Finding(
        "quota.pattern",
        "Request pattern",
        await _lead_status(inp),
        summary,
        evidence=evidence,
        data={k: v for k, v in asdict(p).items() if k != "per_source"},
    )


PROBES = (
    ("quota.config", "Quota config (admin API)", limits),
    ("quota.hits", "Rate-limit hits (1h)", hits),
    ("quota.logs", "Quota-exceeded lines and top sources (1h)", logs),
    ("quota.pattern", "Request pattern", timing),
)


def decide(data: dict[str, dict], config: RunbookConfig, tenant: str, now: float) -> Outcome:
    hit, lines, pat, conf = (data.get(k, {}) for k in ("quota.hits", "quota.logs", "quota.pattern", "quota.config"))
    if not hit:
        return unknown(SCENARIO, "the quota rejections could not be read from Prometheus")
    rejected, logged = hit.get("hits_1h", 0.0), lines.get("count", 0)
    if rejected < 1 and logged == 0:
        return quiet(SCENARIO, "no quota problem", ["no quota rejections in the last hour"])
    said = f"{rejected:,.0f} quota rejections in the last hour, now {hit['rate']:.1f}/s ({hit['share']:.0%} of ingest)"
    if not breaching(hit.get("slis", {})):
        return quiet(SCENARIO, "no quota problem", [f"{said}, but no SLI is over its SLO"])
    started, onset = hit.get("breach_start"), hit.get("onset")
    lead = hit.get("over") or (hit.get("with_breach") and hit["share"] >= MIN_LEAD_SHARE)
    if not lead:
        when = f"at this level since {clock(onset)}" if onset else "none now"
        why = f"{said}, {when}; the breach began {clock(started)}: the rejections do not explain it"
        return quiet(SCENARIO, "no quota problem", [why])
    evidence = [said]
    if hit.get("with_breach"):
        evidence.append(f"the rejections rose at {clock(onset)}, with the breach ({clock(started)})")
    if conf:
        evidence.append(
            f"limits: token_rate {conf['token_rate']}/s, burst_rate {conf['burst_rate']}, "
            f"daily_quota {conf['daily_quota']:,}"
        )
    cites = ("quota.hits", "quota.logs", "quota.pattern")
    if not pat:
        evidence.append("the request pattern could not be read from the logs")
        return fired(
            SCENARIO,
            "cause not determined",
            evidence,
            [f"mitigate {tenant} quota"],
            cause=None,
            confidence="low",
            rule="quota rejections explain the breach; their pattern is unknown",
            cites=("quota.hits",),
        )
    grew = hit.get("ingest_rise")
    kind = Pattern(pat["sources"], pat["lines"], [], pat["regular_share"], pat["concentration"]).kind(
        config.diagnosis, grew
    )
    top = ", ".join(ip for ip, _ in lines.get("top", [])[:5])
    evidence.append(
        f"{pat['regular_share']:.0%} of {pat['lines']:,} rejected requests at fixed short intervals from "
        f"{pat['sources']} source(s) (unevenness {pat['concentration']:.2f}): {top}"
    )
    if grew is not None:
        evidence.append(
            f"the tenant's ingest {'rose' if grew >= INGEST_ROSE else 'did not rise'} with them (×{grew:.2f})"
        )
    if kind == "attack":
        evidence.append(f"resolution: rate-limit at the ingress (Nginx/Envoy) and block the top sources: {top}")
        rule = (
            f"a few sources carry most rejections (unevenness ≥ {CONCENTRATED:g})"
            if pat["concentration"] >= CONCENTRATED
            else "rejections without a rise in the tenant's own traffic, no retry rhythm"
        )
        return fired(
            SCENARIO,
            "possible attack",
            evidence,
            [f"notify {tenant}"],
            cause="attack",
            confidence="medium",
            rule=rule,
            cites=cites,
        )
    if kind == "retry storm":
        evidence.append("resolution: coordinate with the tenant to fix its retry logic; raise the quota meanwhile")
        return fired(
            SCENARIO,
            kind,
            evidence,
            [f"mitigate {tenant} quota", f"notify {tenant}"],
            cause="retry_storm",
            confidence="high",
            rule="most rejected requests at fixed short intervals from few sources",
            cites=cites,
        )
    evidence.append("resolution: temporarily increase burst_rate")
    return fired(
        SCENARIO,
        kind,
        evidence,
        [f"mitigate {tenant} quota"],
        cause="legitimate_burst",
        confidence="high" if grew is not None else "low",
        rule="the tenant's ingest rose with the rejections, spread evenly over its clients",
        cites=cites,
    )
