"""Runbook §4 scenario D · per-tenant policy misconfiguration: did the breach start right after
the tenant's active policy version was promoted, and what changed for the tenant with it?

The policy registry holds ``<version>`` → ``{created_at, author, thresholds}`` and
``<tenant>.<version>`` → that tenant's overrides; a tenant's thresholds at a version are the
version's with its overrides on top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import asdict

from commands.config import RunbookConfig
from commands.diagnose.common import Inputs, Outcome, Trend, clock, fired, quiet, unknown
from commands.models import Finding, Scenario, Status
from commands.policy_registry import (
    Active,
    FlagChange,
    History,
    flag_changes,
    flip_before,
    history,
    registry_entries,
)
from commands.promql import ratio_by_tenant
from integrations.errors import BackendError

SCENARIO: Scenario = "policy"
# The 5 m rate window and the 2 m range step put the computed breach start a little late or early.
START_SLACK_S = 300


def active(inp: Inputs) -> Awaitable[Active]:
    return inp.once("policy:active", lambda: _active(inp))


async def _active(inp: Inputs) -> Active:
    try:
        lines = [line for line in await inp.tenant_lines() if line.fields.get("policy_version")]
    except BackendError:
        lines = []
    if lines:
        seen: dict[str, tuple[float, float]] = {}
        for line in lines:
            version, ts = line.fields["policy_version"], line.ts.timestamp()
            seen[version] = (seen.get(version, (ts, ts))[0], ts)
        return Active(lines[-1].fields["policy_version"], "backend logs", seen)
    cm = await inp.config_map(inp.config.resources.tenant_configmap)
    return Active(cm.data.get("policy_version"), f"configmap {cm.name}")


def registry(inp: Inputs) -> Awaitable[History]:
    async def load() -> History:
        cm, current = await asyncio.gather(inp.config_map(inp.config.resources.policy_registry), active(inp))
        return history(registry_entries(cm.data), inp.tenant, current)

    return inp.once("policy:registry", load)


async def active_version(inp: Inputs) -> Finding:
    current = await active(inp)
    if current.version is None:
        return Finding(
            "policy.active", "Active policy version", Status.UNKNOWN, "no policy_version in the logs or configmap"
        )
    evidence = [f"{v}: seen {clock(first)} → {clock(last)}" for v, (first, last) in current.seen.items()]
    return Finding(
        "policy.active",
        "Active policy version",
        Status.OK,
        f"`{inp.tenant}` runs policy {current.version} (from the {current.source})",
        evidence=evidence,
        data={"version": current.version, "source": current.source},
    )


async def promotion(inp: Inputs) -> Finding:
    h = await registry(inp)
    if h.active is None:
        return Finding("policy.registry", "Promotion and threshold diff", Status.UNKNOWN, "active version unknown")
    summary = f"{h.active} promoted {clock(h.promoted_at)} by {h.author}; previous {h.previous or 'none'}"
    summary += f"; {'; '.join(h.diff)}" if h.diff else "; the tenant's thresholds did not change"
    recent = h.promoted_at is not None and inp.now.timestamp() - h.promoted_at <= inp.config.timeouts.rollout_window_s
    markers = [{"label": f"policy {h.active}", "ts": h.promoted_at}] if h.promoted_at else []
    return Finding(
        "policy.registry",
        "Promotion and threshold diff",
        Status.WARN if recent and h.diff else Status.OK,
        summary,
        facts={"thresholds now": ", ".join(f"{k}={v}" for k, v in sorted(h.thresholds.items()))},
        evidence=h.diff,
        data={
            "active": h.active,
            "promoted_at": h.promoted_at,
            "previous": h.previous,
            "diff": h.diff,
            "markers": markers,
        },
    )


async def flags(inp: Inputs) -> Finding:
    body = await inp.flags()
    general = body.get("global") or {}
    mine = (body.get("tenants") or {}).get(inp.tenant) or {}
    if not isinstance(general, dict) or not isinstance(mine, dict):
        raise BackendError("admin API", "flags answer has an unexpected shape")
    overrides = {k: v for k, v in mine.items() if general.get(k) != v}
    if not mine:
        summary = f"no flags set for `{inp.tenant}`; global: " + (
            ", ".join(f"{k}={v}" for k, v in general.items()) or "none"
        )
    else:
        summary = f"`{inp.tenant}`: " + ", ".join(f"{k}={v}" for k, v in mine.items())
        if overrides:
            summary += f" ({', '.join(overrides)} differ from global)"
    changes = flag_changes(body, inp.tenant)
    window = inp.config.timeouts.rollout_window_s
    recent = [c for c in changes if inp.now.timestamp() - c.at <= window]
    if recent:
        summary += f"; {len(recent)} flag change(s) in the last {window / 60:.0f} min, latest {clock(recent[-1].at)}"
    return Finding(
        "policy.flags",
        "Feature flags",
        Status.WARN if overrides or recent else Status.OK,
        summary,
        facts={f"global {k}": str(v) for k, v in general.items()},
        evidence=[f"{clock(c.at)} {c.text()}" for c in changes[-5:]],
        data={"tenant": mine, "overrides": sorted(overrides), "changes": [asdict(c) for c in changes]},
    )


async def _others(inp: Inputs) -> list[str]:
    """Other tenants breaching an SLO now."""
    cfg, label = inp.config, inp.config.metrics.tenant_label
    esc, err = await asyncio.gather(
        inp.ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.escalated)),
        inp.ctx.prometheus.query(ratio_by_tenant(cfg, cfg.metrics.signature_errors)),
    )
    found = set()
    for samples, slo in ((esc, cfg.slo.escalation_ratio), (err, cfg.slo.signature_error_ratio)):
        found |= {s.labels.get(label, "") for s in samples if s.value > slo}
    return sorted(found - {"", inp.tenant})


async def timing(inp: Inputs) -> Finding:
    trends: list[Trend] = await asyncio.gather(inp.trend("escalations"), inp.trend("signatures"))
    h = await registry(inp)
    starts = [t.breach_start for t in trends if t.breaching and t.breach_start is not None]
    started = min(starts) if starts else None
    window = inp.config.timeouts.rollout_window_s
    lag = started - h.promoted_at if started is not None and h.promoted_at is not None else None
    within = lag is not None and -START_SLACK_S <= lag <= window
    others = await _others(inp)
    try:
        latest = await asyncio.gather(*(inp.latest_line(t) for t in others))
    except BackendError:
        latest = [None] * len(others)  # without logs the others' versions are unknown, not fatal
    versions = {t: line.fields.get("policy_version", "?") for t, line in zip(others, latest, strict=True) if line}
    same = [t for t in others if versions.get(t) == h.active]
    if started is None:
        summary, status = "no breach running", Status.OK
    elif lag is None:
        summary, status = f"breach since {clock(started)}; promotion time unknown", Status.UNKNOWN
    else:
        summary = (
            f"breach since {clock(started)}, {lag / 60:+.0f} min after {h.active} was promoted ({clock(h.promoted_at)})"
        )
        summary += f": {'within' if within else 'outside'} the {window / 60:.0f} min rollout window"
        if within and not h.diff:
            summary += f", but {h.active} changed none of `{inp.tenant}`'s thresholds"
        status = (Status.BREACH if h.diff else Status.WARN) if within else Status.OK
    breaching = ", ".join(f"{t} ({versions.get(t, '?')})" for t in others) or "none"
    return Finding(
        "policy.timing",
        "Breach vs rollout",
        status,
        summary,
        facts={"other tenants breaching": breaching, f"others on {h.active}": ", ".join(same) or "none"},
        data={"breach_start": started, "lag_s": lag, "within": within, "others": others, "others_same_version": same},
    )


PROBES = (
    ("policy.active", "Active policy version", active_version),
    ("policy.registry", "Promotion and threshold diff", promotion),
    ("policy.flags", "Feature flags", flags),
    ("policy.timing", "Breach vs rollout", timing),
)


def _flip(data: dict[str, dict], config: RunbookConfig, started: float) -> FlagChange | None:
    changes = [FlagChange(**c) for c in data.get("policy.flags", {}).get("changes", [])]
    return flip_before(changes, started, config.timeouts.rollout_window_s, START_SLACK_S)


def decide(data: dict[str, dict], config: RunbookConfig, tenant: str, now: float) -> Outcome:
    t, reg = (data.get(k, {}) for k in ("policy.timing", "policy.registry"))
    if not t or not reg:
        return unknown(SCENARIO, "the rollout or the breach's start could not be read")
    if t["breach_start"] is None:
        return quiet(SCENARIO, "not policy", ["no breach running"])
    started = t["breach_start"]
    version, promoted = reg["active"], reg["promoted_at"]
    flip = _flip(data, config, started)
    rollout = t["within"] and bool(reg["diff"])
    if flip is not None and (not rollout or promoted is None or flip.at >= promoted):
        lag = (started - flip.at) / 60
        evidence = [
            f"{flip.text()} at {clock(flip.at)}, breach since {clock(started)} ({lag:+.0f} min)",
            "resolution: set the flag back to its previous value, then re-enable it with a canary",
        ]
        if t["within"]:
            evidence.insert(1, f"policy {version} was promoted {clock(promoted)} too")
        return fired(
            SCENARIO,
            "feature flag misconfigured",
            evidence,
            [f"notify {tenant}"],
            cause="feature_flag",
            confidence="high",
            rule="a flag for the tenant flipped within the rollout window before the breach",
            cites=("policy.flags", "policy.timing"),
        )
    if not t["within"]:
        when = f"promoted {clock(promoted)}" if promoted else "promotion time unknown"
        evidence = [f"breach since {clock(started)}; active policy {version} {when}, not just before it"]
        return quiet(SCENARIO, "not policy", evidence)
    if not reg["diff"]:
        evidence = [
            f"policy {version} promoted {clock(promoted)}, just before the breach ({clock(started)}), "
            f"but it changed none of {tenant}'s thresholds against {reg.get('previous') or 'its predecessor'}"
        ]
        return quiet(SCENARIO, "not policy", evidence)
    evidence = [
        f"policy {version} promoted {clock(promoted)}, breach since {clock(started)} ({t['lag_s'] / 60:+.0f} min)",
        f"{tenant}'s thresholds {reg['previous']} → {version}: {'; '.join(reg['diff'])}",
    ]
    same = t.get("others_same_version", [])
    evidence.append(
        f"other tenants on {version} breaching: {', '.join(same)}" if same else f"no other tenant on {version} breaches"
    )
    evidence.append("resolution: roll back to the previous version, fix the policy and re-promote with a canary")
    rollback = f"mitigate {tenant} rollback-policy" + (f" {reg['previous']}" if reg.get("previous") else "")
    return fired(
        SCENARIO,
        "bad policy version",
        evidence,
        [rollback],
        cause="bad_thresholds",
        confidence="high",
        rule="a promotion that changed the tenant's thresholds, within the rollout window before the breach",
        cites=("policy.registry", "policy.timing"),
    )
