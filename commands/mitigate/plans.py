"""Runbook §5: one plan builder per mitigation. A builder reads the objects it will change and
says exactly what it would do; nothing is written here.

- degraded-mode: ``strict_mode: "false"`` in ``tenant-<t>``, then a rollout restart;
- quota: ``token_rate`` raised (default: doubled), ``burst_rate`` on request;
- rollback-policy: ``policy_version`` in ``tenant-<t>`` and the tenant's thresholds in
  ``policy-<t>`` back to the previous (or named) registry version, then a rollout restart;
- key-window: the multi-key verification window opened until now + the configured duration;
- ip-block: source ranges added to the tenant Ingress's denylist (``ip_block.py``).

All but rollback-policy are temporary: they last ``mitigations.default_expiry_s`` (or the plan's
``for <duration>``), then the thread is reminded to revert or extend them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from commands.context import Context
from commands.mitigate.ip_block import ip_block
from commands.mitigate.models import (
    ACTIONS,
    TEMPORARY,
    Change,
    Draft,
    Forbidden,
    ObjectChange,
    ObjectRef,
    Plan,
    Refused,
)
from commands.policy_registry import registry_entries
from commands.registry import tenant_arg
from commands.timestamps import parse_time
from integrations.kube import ConfigMap, KubeError

STRICT_MODE = "strict_mode"
TOKEN_RATE = "token_rate"
BURST_RATE = "burst_rate"
POLICY_VERSION = "policy_version"
KEY_WINDOW = "multi_key_window_until"
_NUMBER = re.compile(r"\d+")


Builder = Callable[[Context, str, Mapping[str, Any], datetime], Awaitable[Draft]]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def number_text(value: Decimal) -> str:
    """A rate as configmaps hold it: "200", "12.5" (never "2E+2")."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def positive_number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def config_map_ref(ctx: Context, template: str, tenant: str) -> ObjectRef:
    return ObjectRef("ConfigMap", ctx.kube.namespace, ctx.config.name(template, tenant))


async def read(ctx: Context, name: str) -> ConfigMap:
    """A configmap the plan needs; a 403 is a typed refusal, a 404 a short one."""
    try:
        return await ctx.kube.config_map(name)
    except KubeError as exc:
        if exc.status == 403:
            raise Forbidden("get", "configmaps", ctx.kube.namespace, name) from None
        if exc.status == 404:
            raise Refused(f"configmap `{name}` does not exist in namespace {ctx.kube.namespace}") from None
        raise


def changed(ref: ObjectRef, cm: ConfigMap, after: Mapping[str, str | None]) -> ObjectChange | None:
    changes = tuple(Change(k, cm.data.get(k), v) for k, v in after.items() if cm.data.get(k) != v)
    return ObjectChange(ref, cm.resource_version, changes) if changes else None


async def _tenant_map(ctx: Context, tenant: str) -> tuple[ObjectRef, ConfigMap]:
    ref = config_map_ref(ctx, ctx.config.resources.tenant_configmap, tenant)
    return ref, await read(ctx, ref.name)


async def degraded_mode(ctx: Context, tenant: str, args: Mapping[str, Any], now: datetime) -> Draft:
    ref, cm = await _tenant_map(ctx, tenant)
    change = changed(ref, cm, {STRICT_MODE: "false"})
    if change is None:
        raise Refused(f'{STRICT_MODE} is already "false" in `{ref.name}`: degraded mode is on; nothing to change')
    return Draft((change,), restart=True, notes=("strict checks off for the tenant until undone",))


def _rate_arg(args: Mapping[str, Any], key: str) -> Decimal | None:
    """A rate the caller asked for: absent, or a number above 0 (the parser's check, kept here
    for callers that build the arguments themselves)."""
    text = args.get(key)
    if text is None:
        return None
    value = positive_number(str(text))
    if value is None:
        raise Refused(f"{key} must be a number above 0")
    return value


async def quota(ctx: Context, tenant: str, args: Mapping[str, Any], now: datetime) -> Draft:
    ref, cm = await _tenant_map(ctx, tenant)
    limits = ctx.config.mitigations
    current = positive_number(cm.data.get(TOKEN_RATE, ""))
    asked, burst = _rate_arg(args, TOKEN_RATE), _rate_arg(args, BURST_RATE)
    if asked is None and current is None:
        raise Refused(f"{TOKEN_RATE} in `{ref.name}` is not a number: name the new rate (`quota <token_rate>`)")
    rate = asked if asked is not None else 2 * current  # type: ignore[operator]
    if current is not None and rate <= current:
        raise Refused(f"{TOKEN_RATE} is {cm.data[TOKEN_RATE]} in `{ref.name}`: {number_text(rate)} would not raise it")
    after: dict[str, str | None] = {TOKEN_RATE: number_text(rate)}
    reasons = []
    if rate > Decimal(str(limits.quota_ceiling)):
        reasons.append(f"{TOKEN_RATE} {number_text(rate)} is above the ceiling of {limits.quota_ceiling:g}")
    if burst is not None:
        after[BURST_RATE] = number_text(burst)
        if burst > Decimal(str(limits.burst_ceiling)):
            reasons.append(f"{BURST_RATE} {after[BURST_RATE]} is above the ceiling of {limits.burst_ceiling:g}")
    change = changed(ref, cm, after)
    if change is None:
        raise Refused(f"`{ref.name}` already has these values; nothing to change")
    notes = ("doubles the current rate",) if asked is None else ()
    return Draft((change,), restart=False, notes=notes, approval_reasons=tuple(reasons))


def versions_in_order(entries: Mapping[str, dict[str, Any]]) -> list[str]:
    """Registry versions (keys without a tenant part), oldest first: by creation time, then number."""

    def order(key: str) -> tuple[float, int]:
        created = parse_time(entries[key].get("created_at"))
        number = _NUMBER.search(key)
        return (created.timestamp() if created else 0.0, int(number.group()) if number else -1)

    return sorted((k for k in entries if "." not in k), key=order)


def thresholds(entries: Mapping[str, dict[str, Any]], tenant: str, version: str) -> dict[str, str]:
    """A tenant's thresholds at a version: the version's, with the tenant's overrides on top."""
    base = entries.get(version, {}).get("thresholds") or {}
    override = entries.get(f"{tenant}.{version}", {}).get("thresholds") or {}
    return {str(k): str(v) for k, v in {**base, **override}.items()}


async def rollback_policy(ctx: Context, tenant: str, args: Mapping[str, Any], now: datetime) -> Draft:
    res = ctx.config.resources
    tenant_ref = config_map_ref(ctx, res.tenant_configmap, tenant)
    policy_ref = config_map_ref(ctx, res.policy_configmap, tenant)
    tenant_cm, policy_cm, registry = await asyncio.gather(
        read(ctx, tenant_ref.name), read(ctx, policy_ref.name), read(ctx, res.policy_registry)
    )
    entries = registry_entries(registry.data)
    versions = versions_in_order(entries)
    current = tenant_cm.data.get(POLICY_VERSION)
    target = args.get("version")
    if target is None:
        if current not in versions:
            raise Refused(
                f"`{tenant}` runs policy {current or '(unset)'}, which the registry does not list: "
                "name the version (`rollback-policy <version>`)"
            )
        index = versions.index(current)
        if index == 0:
            raise Refused(f"policy {current} is the oldest in `{res.policy_registry}`: nothing to roll back to")
        target = versions[index - 1]
    elif target not in versions:
        raise Refused(f"unknown policy version `{target}`: `{res.policy_registry}` has {', '.join(versions) or 'none'}")
    if target == current:
        raise Refused(f"`{tenant}` already runs policy {target}; nothing to change")
    wanted: dict[str, str | None] = dict(thresholds(entries, tenant, target))
    # Thresholds the current version sets and the target does not: removed, not left behind.
    for key in thresholds(entries, tenant, current or "").keys() - wanted.keys():
        if key in policy_cm.data:
            wanted[key] = None
    objects = [changed(tenant_ref, tenant_cm, {POLICY_VERSION: target}), changed(policy_ref, policy_cm, wanted)]
    kind = "previous" if args.get("version") is None else "named"
    return Draft(
        tuple(o for o in objects if o is not None),
        restart=True,
        notes=(f"policy {current} → {target} ({kind} version in `{res.policy_registry}`)",),
    )


async def key_window(ctx: Context, tenant: str, args: Mapping[str, Any], now: datetime) -> Draft:
    ref, cm = await _tenant_map(ctx, tenant)
    seconds = float(args.get("lasts_s") or ctx.config.mitigations.key_window_s)
    until = now + timedelta(seconds=seconds)
    open_until = parse_time(cm.data.get(KEY_WINDOW))
    if open_until is not None and open_until >= until.replace(microsecond=0):
        raise Refused(f"the multi-key window of `{tenant}` is already open until {cm.data[KEY_WINDOW]}")
    change = changed(ref, cm, {KEY_WINDOW: rfc3339(until)})
    assert change is not None  # the window moves later, so the value differs
    hours = seconds / 3600
    return Draft((change,), restart=False, notes=(f"old and new signing keys both accepted for {hours:g} h",))


BUILDERS: dict[str, Builder] = {
    "degraded-mode": degraded_mode,
    "quota": quota,
    "rollback-policy": rollback_policy,
    "key-window": key_window,
    "ip-block": ip_block,
}


async def plan(
    ctx: Context, tenant: str, action: str, args: Mapping[str, Any] | None = None, *, now: datetime | None = None
) -> Plan:
    """The exact change ``action`` would make for ``tenant``, read now; raises ``Refused`` (or
    ``Forbidden``) when it cannot or need not be made, and ``KubeError`` when the API fails."""
    tenant_arg(tenant)
    if action not in BUILDERS:
        raise Refused(f"unknown mitigation `{action[:40]}`: expected {', '.join(ACTIONS)}")
    now = now or datetime.now(UTC)
    draft = await BUILDERS[action](ctx, tenant, args or {}, now)
    limits = ctx.config.mitigations
    reasons = list(draft.approval_reasons)
    if action in limits.second_approver_actions:
        reasons.append(f"{action} needs a second approver (configured)")
    restart = ObjectRef("Deployment", ctx.kube.namespace, ctx.config.resources.deployment) if draft.restart else None
    return Plan(
        id=uuid.uuid4().hex[:12],
        tenant=tenant,
        action=action,  # type: ignore[arg-type]
        objects=draft.objects,
        restart=restart,
        needs_second_approver=bool(reasons),
        approval_reasons=tuple(reasons),
        created_at=now,
        expires_at=now + timedelta(seconds=limits.plan_expiry_s),
        notes=draft.notes,
        lasts_s=lasting(ctx, action, args or {}) if action in TEMPORARY else None,
    )


def lasting(ctx: Context, action: str, args: Mapping[str, Any]) -> float:
    """How long a temporary mitigation lasts: the plan's own duration, else the key window's
    length for key-window, else the configured default."""
    if args.get("lasts_s"):
        return float(args["lasts_s"])
    if action == "key-window":
        return ctx.config.mitigations.key_window_s
    return ctx.config.mitigations.default_expiry_s
