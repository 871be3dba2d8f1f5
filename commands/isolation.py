"""Isolation breach: many tenants breaching at once breaks the runbook's "other tenants are
isolated". Triage across them: their SLIs, and what they share (region, policy version,
a recent rollout), which is where the cause likely is."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime

from commands.context import Context
from commands.models import Finding, Probe, Status, Verdict
from commands.promql import pct, ratio_by_tenant
from commands.runner import ProbeSpec, run_probes

CONCURRENCY = 16


def _shared(counts: Counter[str], total: int) -> tuple[str, int] | None:
    if not counts:
        return None
    value, n = counts.most_common(1)[0]
    return (value, n) if n * 2 > total else None


async def slis(ctx: Context, tenants: list[str]) -> Finding:
    cfg = ctx.config
    label = cfg.metrics.tenant_label
    esc, err = await asyncio.gather(
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.escalated)),
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.signature_errors)),
    )
    wanted = set(tenants)
    rows = {}
    for samples, name in ((esc, "escalations"), (err, "signature errors")):
        for s in samples:
            tenant = s.labels.get(label, "")
            if tenant in wanted:
                rows.setdefault(tenant, {})[name] = s.value
    breaching = [
        t
        for t, v in rows.items()
        if v.get("escalations", 0) > cfg.slo.escalation_ratio
        or v.get("signature errors", 0) > cfg.slo.signature_error_ratio
    ]
    evidence = [
        f"{t}: escalations {pct(v.get('escalations'))}, signature errors {pct(v.get('signature errors'))}"
        for t, v in sorted(rows.items(), key=lambda kv: -kv[1].get("escalations", 0))
    ]
    return Finding(
        "isolation.slis",
        "SLIs across tenants",
        Status.BREACH if breaching else Status.OK,
        f"{len(breaching)} of {len(tenants)} tenants over an SLO now",
        evidence=evidence,
        data={"breaching": breaching},
    )


async def regions(ctx: Context, tenants: list[str]) -> Finding:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def region(tenant: str) -> str | None:
        async with limit:
            body = await ctx.admin.tenant(tenant)
        value = body.get("region")
        return str(value) if value else None

    found = await asyncio.gather(*(region(t) for t in tenants), return_exceptions=True)
    counts = Counter(r for r in found if isinstance(r, str))
    failed = sum(isinstance(r, BaseException) for r in found)
    shared = _shared(counts, len(tenants))
    summary = f"most in {shared[0]} ({shared[1]}/{len(tenants)})" if shared else "spread over regions"
    if failed:
        summary += f"; {failed} could not be read"
    evidence = [f"{name}: {n} tenant(s)" for name, n in counts.most_common(10)]
    return Finding(
        "isolation.regions",
        "Regions",
        Status.WARN if shared else Status.OK,
        summary,
        evidence=evidence,
        data={"shared": shared[0] if shared else None},
    )


async def policies(ctx: Context, tenants: list[str]) -> Finding:
    res = ctx.config.resources
    maps = {cm.name: cm for cm in await ctx.kube.config_maps()}
    versions = Counter(
        maps[name].data.get("policy_version", "?")
        for t in tenants
        if (name := ctx.config.name(res.tenant_configmap, t)) in maps
    )
    registry = maps.get(res.policy_registry)
    now = datetime.now(UTC)
    recent: list[str] = []
    for key, raw in registry.data.items() if registry else []:
        try:
            created = datetime.fromisoformat(json.loads(raw)["created_at"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            continue
        if (now - created).total_seconds() < ctx.config.timeouts.rollout_window_s:
            recent.append(f"{key} promoted {(now - created).total_seconds() / 60:.0f} min ago")
    shared = _shared(versions, len(tenants))
    summary = f"most on policy {shared[0]} ({shared[1]}/{len(tenants)})" if shared else "on different policy versions"
    if recent:
        summary += f"; recent rollouts: {', '.join(recent[:3])}"
    evidence = [f"{v}: {n} tenant(s)" for v, n in versions.most_common(10)] + recent
    status = Status.WARN if shared and recent else Status.OK
    return Finding(
        "isolation.policies",
        "Policy versions and rollouts",
        status,
        summary,
        evidence=evidence,
        data={"shared": shared[0] if shared else None, "recent": recent},
    )


async def run_isolation_triage(ctx: Context, tenants: list[str]):  # type: ignore[no-untyped-def]
    specs = [
        ProbeSpec(Probe("isolation.slis", "SLIs across tenants"), lambda: slis(ctx, tenants)),
        ProbeSpec(Probe("isolation.regions", "Regions"), lambda: regions(ctx, tenants)),
        ProbeSpec(Probe("isolation.policies", "Policy versions and rollouts"), lambda: policies(ctx, tenants)),
    ]
    report = await run_probes("isolation triage", f"{len(tenants)} tenants", specs, ctx.config.timeouts.probe_s * 3)
    shared = [f.data["shared"] for f in report.findings if f.data.get("shared")]
    evidence = [f"{len(tenants)} tenants breaching together: the runbook's tenant isolation does not hold"]
    evidence += [f"{f.title}: {f.summary}" for f in report.findings if f.key != "isolation.slis"]
    headline = f"Isolation breach across {len(tenants)} tenants" + (f"; shared: {', '.join(shared)}" if shared else "")
    report.verdict = Verdict(None, headline, evidence)
    return report
