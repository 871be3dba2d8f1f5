"""Scenario C's attack branch (runbook: "apply rate limit at ingress (Nginx/Envoy), block malicious
IPs"): the offending source ranges added to the tenant Ingress's ingress-nginx denylist.

Why that object: the tenant's traffic enters through its own Ingress, so the block touches that
tenant only; ingress-nginx reloads an annotation change by itself (no rollout restart), and the
annotation is a plain comma-separated list that other people may also edit. So the plan adds only
the ranges not listed yet, and the undo removes exactly the ranges it added, leaving every other
entry (added before or since) where it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from commands.config import RunbookConfig
from commands.context import Context
from commands.mitigate.models import Change, Draft, ObjectChange, ObjectRef, Refused
from commands.mitigate.objects import read
from commands.registry import UsageError

# ingress-nginx: "a comma separated list of CIDRs ... for which access is denied".
DENYLIST = "nginx.ingress.kubernetes.io/denylist-source-range"
# Keys holding comma-separated lists: an undo removes what was added instead of restoring a value.
LIST_KEYS = frozenset({DENYLIST})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def entries(value: str | None) -> list[str]:
    return [e.strip() for e in (value or "").split(",") if e.strip()]


def joined(items: Iterable[str]) -> str | None:
    text = ",".join(items)
    return text or None


def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def parse_ranges(words: Iterable[str]) -> list[str]:
    """IPs or CIDRs (comma- or space-separated) as CIDRs, in order, without repeats; UsageError
    names the first bad one."""
    found: list[str] = []
    for word in (w.strip() for text in words for w in text.split(",")):
        if not word:
            continue
        net = _network(word)
        if net is None:
            raise UsageError(f"`{word[:45]}` is not an IP address or CIDR range")
        if str(net) not in found:
            found.append(str(net))
    if not found:
        raise UsageError("which source IPs? `ip-block <ip>[,<ip>...]`")
    return found


def source_ranges(words: Iterable[str], config: RunbookConfig) -> list[str]:
    """``parse_ranges`` within the configured limits: no range wider than the minimum prefix,
    no more ranges than the maximum."""
    limits = config.mitigations
    found = parse_ranges(words)
    for cidr in found:
        net = ipaddress.ip_network(cidr)
        floor = limits.ip_block_min_prefix_v4 if net.version == 4 else limits.ip_block_min_prefix_v6
        if net.prefixlen < floor:
            raise UsageError(f"`{net}` is too wide to block (at most /{floor} for IPv{net.version})")
    if len(found) > limits.ip_block_max_entries:
        raise UsageError(f"{len(found)} ranges: at most {limits.ip_block_max_entries} in one plan")
    return found


def _same(entry: str, cidr: str) -> bool:
    net = _network(entry)
    return entry == cidr if net is None else str(net) == cidr


async def ip_block(ctx: Context, tenant: str, args: Mapping[str, Any], now: datetime) -> Draft:
    try:
        wanted = source_ranges(args.get("ips") or (), ctx.config)
    except UsageError as exc:
        raise Refused(str(exc)) from None
    ref = ObjectRef("Ingress", ctx.kube.namespace, ctx.config.name(ctx.config.resources.tenant_ingress, tenant))
    ingress = await read(ctx, ref)
    current = entries(ingress.data.get(DENYLIST))
    new = [cidr for cidr in wanted if not any(_same(e, cidr) for e in current)]
    if not new:
        raise Refused(f"{', '.join(wanted)} already denied on ingress `{ref.name}`; nothing to change")
    change = Change(DENYLIST, ingress.data.get(DENYLIST), joined([*current, *new]))
    notes = [f"denies {len(new)} source range(s) at the tenant's ingress (ingress-nginx reloads it, no restart)"]
    if len(new) < len(wanted):
        notes.append(f"already denied, left as they are: {', '.join(c for c in wanted if c not in new)}")
    return Draft((ObjectChange(ref, ingress.resource_version, (change,)),), restart=False, notes=tuple(notes))


def undo_list(change: Change, now_value: str | None) -> str | None:
    """The value that takes back what ``change`` did to a list and nothing else: the entries it
    added removed, the entries it removed put back, whatever else is there now kept in order."""
    before, after = entries(change.before), entries(change.after)
    added = [e for e in after if e not in before]
    removed = [e for e in before if e not in after]
    kept = [e for e in entries(now_value) if e not in added]
    return joined([*kept, *(e for e in removed if e not in kept)])
