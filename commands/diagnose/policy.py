"""Runbook §4 scenario D · per-tenant policy misconfiguration: did the breach start right after
the tenant's active policy version was promoted, and what changed for the tenant with it?

The policy registry holds ``<version>`` → ``{created_at, author, thresholds}`` and
``<tenant>.<version>`` → that tenant's overrides; a tenant's thresholds at a version are the
version's with its overrides on top.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from commands.config import RunbookConfig
from commands.diagnose.common import Inputs, Outcome, Trend, clock, fired, parse_time, quiet, unknown
from commands.models import Finding, Scenario, Status
from commands.policy_registry import registry_entries
from commands.promql import ratio_by_tenant
from integrations.errors import BackendError

SCENARIO: Scenario = "policy"
# The 5 m rate window and the 2 m range step put the computed breach start a little late or early.
START_SLACK_S = 300
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Active:
    version: str | None
    source: str  # where it was read: the backend logs, else the tenant configmap
    # version -> (first, last) time seen in the logs, oldest first
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    active: str | None
    promoted_at: float | None
    author: str
    previous: str | None
    diff: list[str]  # "tol_D: 1.6 → 1.2"
    thresholds: dict[str, str]


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


def _version_order(key: str, entry: dict[str, Any]) -> tuple[float, int]:
    created = parse_time(entry.get("created_at"))
    number = _NUMBER.search(key)
    return (created.timestamp() if created else 0.0, int(number.group()) if number else -1)


def history(entries: dict[str, dict[str, Any]], tenant: str, current: Active) -> History:
    """The active version's promotion, its predecessor, and the tenant's threshold changes."""
    versions = sorted((k for k in entries if "." not in k), key=lambda k: _version_order(k, entries[k]))

    def thresholds(version: str | None) -> dict[str, str]:
        base = entries.get(version or "", {}).get("thresholds") or {}
        override = entries.get(f"{tenant}.{version}", {}).get("thresholds") or {}
        return {str(k): str(v) for k, v in {**base, **override}.items()}

    version = current.version
    promoted = parse_time(entries.get(f"{tenant}.{version}", {}).get("created_at")) or parse_time(
        entries.get(version or "", {}).get("created_at")
    )
    # The version the tenant ran before, as the logs show it; else the registry's predecessor.
    before = [v for v in current.seen if v != version]
    previous = before[-1] if before else None
    if previous is None and version in versions and versions.index(version) > 0:
        previous = versions[versions.index(version) - 1]
    old, new = thresholds(previous), thresholds(version)
    diff = [
        f"{k}: {old.get(k, 'unset')} → {new.get(k, 'unset')}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
    author = str(entries.get(version or "", {}).get("author", "unknown"))
    return History(version, promoted.timestamp() if promoted else None, author, previous, diff if previous else [], new)


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
    return Finding(
        "policy.flags",
        "Feature flags",
        Status.WARN if overrides else Status.OK,
        summary,
        facts={f"global {k}": str(v) for k, v in general.items()},
        data={"tenant": mine, "overrides": sorted(overrides)},
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
        status = Status.BREACH if within else Status.OK
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


def decide(data: dict[str, dict], config: RunbookConfig, tenant: str, now: float) -> Outcome:
    t, reg, fl = (data.get(k, {}) for k in ("policy.timing", "policy.registry", "policy.flags"))
    if not t or not reg:
        return unknown(SCENARIO, "the rollout or the breach's start could not be read")
    if t["breach_start"] is None:
        return quiet(SCENARIO, "not policy", ["no breach running"])
    version, promoted = reg["active"], reg["promoted_at"]
    if not t["within"]:
        when = f"promoted {clock(promoted)}" if promoted else "promotion time unknown"
        evidence = [f"breach since {clock(t['breach_start'])}; active policy {version} {when}, not just before it"]
        return quiet(SCENARIO, "not policy", evidence)
    evidence = [
        f"policy {version} promoted {clock(promoted)}, breach since {clock(t['breach_start'])} "
        f"({t['lag_s'] / 60:+.0f} min)",
    ]
    if reg["diff"]:
        evidence.append(f"{tenant}'s thresholds {reg['previous']} → {version}: {'; '.join(reg['diff'])}")
    if fl.get("overrides"):
        evidence.append(f"tenant feature flags differing from global: {', '.join(fl['overrides'])}")
    same = t.get("others_same_version", [])
    evidence.append(
        f"other tenants on {version} breaching: {', '.join(same)}" if same else f"no other tenant on {version} breaches"
    )
    evidence.append("resolution: roll back to the previous version, fix the policy and re-promote with a canary")
    rollback = f"mitigate {tenant} rollback-policy" + (f" {reg['previous']}" if reg.get("previous") else "")
    return fired(SCENARIO, "bad policy version", evidence, [rollback])
