"""Runbook §3.1: identify the affected tenant: its SLIs, the other tenants, the backend logs."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from commands.context import Context
from commands.models import Finding, Status
from commands.promql import escalation_ratio, pct, ratio_by_tenant, signature_error_ratio

# The parsed field, compared exactly: the runbook's grep "tenant_id.*X" also matches X1.
TENANT_FIELD = re.compile(r'(?:^|\s)tenant_id="?([^\s"]+)"?')


def _sli_status(value: float, slo: float) -> Status:
    if value > slo:
        return Status.BREACH
    return Status.WARN if value > 0.75 * slo else Status.OK


async def sli(ctx: Context, tenant: str, which: str) -> Finding:
    cfg = ctx.config
    if which == "escalations":
        query, slo, title = escalation_ratio(cfg, tenant), cfg.slo.escalation_ratio, "Escalation ratio (5m)"
    else:
        query, slo = signature_error_ratio(cfg, tenant), cfg.slo.signature_error_ratio
        title = "Signature-error ratio (5m)"
    key = f"sli.{which}"
    value = await ctx.prometheus.scalar(query)
    if value is None:
        return Finding(key, title, Status.UNKNOWN, f"no samples for `{tenant}` in the last {cfg.slo.window}")
    status = _sli_status(value, slo)
    verb = "above" if status is Status.BREACH else "within"
    return Finding(
        key,
        title,
        status,
        f"{pct(value)}, {verb} the SLO of {pct(slo)}",
        facts={"now": pct(value), "SLO": pct(slo)},
        data={"ratio": value, "slo": slo},
    )


async def other_tenants(ctx: Context, tenant: str) -> Finding:
    """Who else breaches now: if many do, tenant isolation itself is in question."""
    cfg = ctx.config
    label = cfg.metrics.tenant_label
    esc, err = await asyncio.gather(
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.escalated)),
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.signature_errors)),
    )
    breaching: dict[str, float] = {}
    for samples, slo in ((esc, cfg.slo.escalation_ratio), (err, cfg.slo.signature_error_ratio)):
        for s in samples:
            name = s.labels.get(label, "")
            if name and name != tenant and s.value > slo:
                breaching[name] = max(breaching.get(name, 0.0), s.value / slo)
    others = sorted(breaching, key=breaching.get, reverse=True)  # type: ignore[arg-type]
    total = len({s.labels.get(label) for s in esc}) - 1
    if not others:
        summary = f"no other tenant breaches ({max(total, 0)} checked): isolation holds"
        status = Status.OK
    else:
        summary = f"{len(others)} other tenant(s) breaching too: {', '.join(others[:5])}"
        status = Status.WARN
    return Finding("identify.others", "Other tenants", status, summary, data={"others": others})


async def log_share(ctx: Context, tenant: str) -> Finding:
    """`kubectl logs -l app=backend --tail=N | grep tenant_id= | sort | uniq -c`, parsed exactly."""
    res = ctx.config.resources
    pods = await ctx.kube.backend_pods(res.backend_selector)
    if not pods:
        return Finding("identify.logs", "Backend logs", Status.UNKNOWN, f"no pods match `{res.backend_selector}`")
    tails = await asyncio.gather(
        *(ctx.kube.pod_log(p, res.backend_container, tail_lines=ctx.config.timeouts.log_tail_lines) for p in pods)
    )
    counts: Counter[str] = Counter()
    for lines in tails:
        for line in lines:
            match = TENANT_FIELD.search(line)
            if match:
                counts[match.group(1)] += 1
    total = sum(counts.values())
    mine = counts.get(tenant, 0)
    share = mine / total if total else 0.0
    top = counts.most_common(5)
    evidence = [f"{name}: {n} lines ({n / total:.0%})" for name, n in top] if total else []
    dominant = top[0][0] if top else None
    summary = f"`{tenant}` has {mine} of the last {total} tenant lines ({share:.0%}) across {len(pods)} pods"
    if dominant and dominant != tenant:
        summary += f"; `{dominant}` dominates"
    return Finding(
        "identify.logs",
        "Backend logs",
        Status.OK,
        summary,
        evidence=evidence,
        facts={"pods": str(len(pods)), "lines": str(total)},
        data={"share": share, "dominant": dominant, "counts": dict(counts)},
    )
