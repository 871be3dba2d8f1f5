"""Runbook §3.3: what changed recently: policy registry, tenant configmaps, events, commits."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from commands.context import Context
from commands.models import Finding, Status
from commands.policy_registry import Active, flag_changes, history, registry_entries
from commands.timestamps import parse_time
from integrations.kube import KubeError

RECENT = timedelta(hours=24)


def concerns(key: str, tenant: str) -> bool:
    """Registry keys name tenants as dot- or slash-separated parts; compare parts exactly."""
    return tenant in key.replace("/", ".").split(".")


def _version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else -1


async def policy_registry(ctx: Context, tenant: str) -> Finding:
    res = ctx.config.resources
    registry_name = res.policy_registry
    registry, tenant_cm = await asyncio.gather(
        ctx.kube.config_map(registry_name),
        ctx.kube.config_map(ctx.config.name(res.tenant_configmap, tenant)),
        return_exceptions=True,
    )
    if isinstance(registry, BaseException):
        raise registry
    active = tenant_cm.data.get("policy_version") if not isinstance(tenant_cm, BaseException) else None
    entries: dict[str, dict] = {}
    for key, raw in registry.data.items():
        try:
            value = json.loads(raw)
        except ValueError:
            value = {}
        entries[key] = value if isinstance(value, dict) else {}
    versions = sorted((k for k in entries if k.startswith("v") and k[1:].isdigit()), key=_version_number)
    mine = sorted(k for k in entries if concerns(k, tenant))
    now = datetime.now(UTC)
    evidence, recent = [], []
    for key in mine + ([active] if active in entries else []):
        created = parse_time(entries[key].get("created_at"))
        when = created.strftime("%Y-%m-%d %H:%M UTC") if created else "unknown time"
        evidence.append(f"{key}: created {when}")
        if created and now - created < RECENT:
            recent.append((key, created))
    active_created = parse_time(entries.get(active or "", {}).get("created_at"))
    previous = None
    if active in versions:
        index = versions.index(active)
        previous = versions[index - 1] if index > 0 else None
    # What the active version changed for the tenant: a promotion that changed nothing is no lead.
    h = history(registry_entries(registry.data), tenant, Active(active, "tenant configmap"))
    promoted = h.promoted_at if h.promoted_at is not None else (active_created.timestamp() if active_created else None)
    data = {
        "active_version": active,
        "active_created_at": promoted,
        "previous_version": h.previous or previous,
        "tenant_keys": mine,
        "diff": h.diff,
    }
    if h.diff:
        evidence.append(f"{h.previous} → {active}: {'; '.join(h.diff)}")
    if recent:
        newest_key, newest = max(recent, key=lambda kv: kv[1])
        minutes = (now - newest).total_seconds() / 60
        summary = f"`{newest_key}` changed {minutes:.0f} min ago (active version {active or 'unknown'})"
        status = Status.WARN
    else:
        summary = f"no registry change for `{tenant}` in 24 h (active version {active or 'unknown'})"
        status = Status.OK
    facts = {"active version": active or "unknown", "previous version": previous or "none"}
    return Finding("changes.registry", "Policy registry", status, summary, facts=facts, evidence=evidence, data=data)


async def configmaps(ctx: Context, tenant: str) -> Finding:
    res = ctx.config.resources
    names = [ctx.config.name(res.tenant_configmap, tenant), ctx.config.name(res.policy_configmap, tenant)]
    results = await asyncio.gather(*(ctx.kube.config_map(n) for n in names), return_exceptions=True)
    facts: dict[str, str] = {}
    problems: list[str] = []
    data: dict[str, dict[str, str]] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, KubeError) and result.status == 404:
            problems.append(f"configmap `{name}` is missing in namespace `{ctx.kube.namespace}`")
        elif isinstance(result, BaseException):
            raise result
        else:
            data[name] = result.data
            facts[name] = ", ".join(f"{k}={v}" for k, v in sorted(result.data.items()))
    if problems:
        finding = Finding("changes.configmaps", "Tenant configmaps", Status.ERROR, "; ".join(problems), facts=facts)
        finding.data = data
        return finding
    return Finding(
        "changes.configmaps", "Tenant configmaps", Status.OK, f"{', '.join(names)} read", facts=facts, data=data
    )


async def events(ctx: Context, tenant: str) -> Finding:
    res = ctx.config.resources
    objects = [
        ("Secret", ctx.config.name(res.signing_secret, tenant)),
        ("ConfigMap", ctx.config.name(res.tenant_configmap, tenant)),
        ("ConfigMap", ctx.config.name(res.policy_configmap, tenant)),
    ]
    lists = await asyncio.gather(*(ctx.kube.events_for(kind, name) for kind, name in objects))
    found = sorted((e for batch in lists for e in batch), key=lambda e: e.last_seen, reverse=True)
    evidence = [
        f"{e.last_seen[:16].replace('T', ' ')} {e.object_kind}/{e.object_name} {e.reason}: {e.message}" for e in found
    ]
    rotations = [e for e in found if e.object_kind == "Secret"]
    summary = f"{len(found)} event(s) on the tenant's secret and configmaps" if found else "no recent events"
    return Finding(
        "changes.events",
        "Kubernetes events",
        Status.WARN if found else Status.OK,
        summary,
        evidence=evidence,
        data={
            "secret_events": [f"{e.reason}: {e.message}" for e in rotations],
            "secret_event_times": [t.timestamp() for e in rotations if (t := parse_time(e.last_seen))],
            "count": len(found),
        },
    )


async def flags(ctx: Context, tenant: str) -> Finding:
    """The dated flag changes that reach the tenant (its own and global ones) in the last 24 h."""
    body = await ctx.admin.flags()
    now = datetime.now(UTC).timestamp()
    changes = [c for c in flag_changes(body, tenant) if now - c.at <= RECENT.total_seconds()]
    evidence = [f"{datetime.fromtimestamp(c.at, UTC):%H:%M UTC} {c.text()}" for c in changes]
    if changes:
        summary = f"{len(changes)} flag change(s) for `{tenant}` in 24 h, latest: {changes[-1].text()}"
    else:
        summary = f"no flag change for `{tenant}` in 24 h"
    return Finding(
        "changes.flags",
        "Feature-flag changes (24h)",
        Status.WARN if changes else Status.OK,
        summary,
        evidence=evidence,
        data={"changes": [{"at": c.at, "text": c.text()} for c in changes]},
    )


async def commits(ctx: Context, tenant: str) -> Finding:
    if ctx.repo is None:
        reason = "no tenant repo configured (FLK_TENANT_REPO)"
        return Finding("changes.commits", "Config commits (24h)", Status.UNKNOWN, reason)
    file = ctx.config.name(ctx.config.resources.tenant_file, tenant)
    found = await ctx.repo.commits(file)
    evidence = [f"{c.when[:16].replace('T', ' ')} {c.sha} {c.author}: {c.subject}" for c in found]
    summary = f"{len(found)} commit(s) to `{file}` in the last 24 h" if found else f"no commits to `{file}` in 24 h"
    return Finding(
        "changes.commits",
        "Config commits (24h)",
        Status.WARN if found else Status.OK,
        summary,
        evidence=evidence,
        data={"commits": [c.subject for c in found]},
    )
