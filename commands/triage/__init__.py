"""`/flk triage <tenant>`: the runbook's §3 immediate triage, every probe concurrent.

§3.1 identify (SLIs, other tenants, backend logs), §3.2 health (trend, latency, quota,
signature failures), §3.3 recent changes (policy registry, configmaps, events, commits),
then the likely root-cause scenario.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from commands.context import Context
from commands.models import Probe, Report
from commands.promql import ratio_by_tenant
from commands.registry import Verb, optional_tenant, register
from commands.runner import OnFinding, ProbeSpec, run_probes
from commands.triage import changes, health, identify
from commands.triage.verdict import decide

VERB = register(
    Verb(
        "triage",
        "triage [tenant]",
        "runbook §3: SLIs, health, recent changes and the likely scenario; without a tenant, who breaches now",
        optional_tenant,
    )
)

PROBES: tuple[tuple[str, str, object], ...] = (
    ("sli.escalations", "Escalation ratio (5m)", lambda c, t: identify.sli(c, t, "escalations")),
    ("sli.signatures", "Signature-error ratio (5m)", lambda c, t: identify.sli(c, t, "signatures")),
    ("identify.others", "Other tenants", identify.other_tenants),
    ("identify.logs", "Backend logs", identify.log_share),
    ("health.trend", "Error trend (1h, 6h, 24h)", health.trend),
    ("health.latency", "Latency p95/p99", health.latency),
    ("health.quota", "Rate-limit hits", health.quota_hits),
    ("health.quota_config", "Quota config (admin API)", health.quota_config),
    ("health.signatures", "Signature failures (1h)", health.signature_failures),
    ("changes.registry", "Policy registry", changes.policy_registry),
    ("changes.configmaps", "Tenant configmaps", changes.configmaps),
    ("changes.events", "Kubernetes events", changes.events),
    ("changes.flags", "Feature-flag changes (24h)", changes.flags),
    ("changes.commits", "Config commits (24h)", changes.commits),
)


def probes() -> list[Probe]:
    return [Probe(key, title) for key, title, _ in PROBES]


async def run_triage(ctx: Context, tenant: str, on_finding: OnFinding | None = None) -> Report:
    specs = [
        ProbeSpec(Probe(key, title), (lambda fn=fn: fn(ctx, tenant)))  # type: ignore[operator, misc]
        for key, title, fn in PROBES
    ]
    report = await run_probes("triage", tenant, specs, ctx.config.timeouts.probe_s, on_finding)
    report.verdict = decide(report, ctx.config)
    return report


@dataclass(frozen=True)
class Breaching:
    tenant: str
    sli: str
    value: float
    slo: float

    @property
    def severity(self) -> float:
        return self.value / self.slo


async def breaching_tenants(ctx: Context) -> list[Breaching]:
    """Every tenant over an SLO now, worst first (by how many times its SLO it stands at)."""
    cfg = ctx.config
    label = cfg.metrics.tenant_label
    esc, err = await asyncio.gather(
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.escalated)),
        ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.signature_errors)),
    )
    worst: dict[str, Breaching] = {}
    for samples, sli, slo in (
        (esc, "escalations", cfg.slo.escalation_ratio),
        (err, "signature errors", cfg.slo.signature_error_ratio),
    ):
        for s in samples:
            tenant = s.labels.get(label)
            if tenant and s.value > slo:
                candidate = Breaching(tenant, sli, s.value, slo)
                if tenant not in worst or candidate.severity > worst[tenant].severity:
                    worst[tenant] = candidate
    return sorted(worst.values(), key=lambda b: b.severity, reverse=True)
