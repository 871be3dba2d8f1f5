"""`/flk mitigate <tenant> <action>`: the runbook's §5 mitigations as plans first (exact objects,
keys before → after, the restart that follows), applied only as planned, and undone exactly.

    p = await plan(ctx, "acme", "quota", {"token_rate": "300"})   # reads, writes nothing
    applied = await apply(ctx, p)                                 # Conflict / Forbidden / PartialApply
    back = await plan_undo(ctx, applied)                          # then apply(ctx, back)
"""

from __future__ import annotations

import re
from typing import Any

from commands.mitigate.apply import apply, retry_restart
from commands.mitigate.ip_block import DENYLIST, parse_ranges
from commands.mitigate.models import (
    ACTIONS,
    TEMPORARY,
    Action,
    Applied,
    Change,
    Conflict,
    Expired,
    Forbidden,
    MitigationError,
    ObjectChange,
    ObjectRef,
    PartialApply,
    Plan,
    Refused,
    Uncertain,
)
from commands.mitigate.plans import number_text, plan, positive_number
from commands.mitigate.undo import plan_undo
from commands.registry import UsageError, Verb, register, tenant_arg

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LASTS = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_LASTS_S = 7 * 86400
# Far above any real rate; bigger numbers are typos, not quotas.
_MAX_RATE = 10**12


def _rate(text: str, what: str) -> str:
    value = positive_number(text)
    if value is None:
        raise UsageError(f"{what} must be a number above 0, not `{text[:20]}`")
    if value > _MAX_RATE:
        raise UsageError(f"{what} `{text[:20]}` is not a plausible rate")
    return number_text(value)


def _take_option(words: list[str], name: str) -> str | None:
    """Remove ``--name value`` or ``--name=value`` from ``words``; the value, or None if absent."""
    for i, word in enumerate(words):
        if word == name:
            if i + 1 >= len(words):
                raise UsageError(f"`{name}` needs a value")
            value = words[i + 1]
            del words[i : i + 2]
            return value
        if word.startswith(name + "="):
            del words[i]
            return word.split("=", 1)[1]
    return None


def lasts(word: str) -> int:
    """``30m``, ``2h``, ``1h30m``, ``1d`` -> seconds (at most 7 days); UsageError otherwise."""
    match = _LASTS.fullmatch(word.lower())
    if not word or match is None:
        raise UsageError(f"`{word[:20]}` is not a duration (like 30m, 2h or 1d)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if not 0 < total <= MAX_LASTS_S:
        raise UsageError("a temporary mitigation lasts more than 0 s and at most 7 days")
    return total


def _take_for(words: list[str]) -> int | None:
    """Remove ``for <duration>`` from ``words``; its seconds, or None."""
    for i, word in enumerate(words[2:], start=2):
        if word.lower() == "for":
            if i + 1 >= len(words):
                raise UsageError("`for` needs a duration (like 2h)")
            seconds = lasts(words[i + 1])
            del words[i : i + 2]
            return seconds
    return None


def parse_args(args: list[str]) -> dict[str, Any]:
    words = [w for w in args if w != "--dry-run"]
    dry_run = len(words) != len(args)
    burst = _take_option(words, "--burst")
    lasts_s = _take_for(words)
    unknown = [w for w in words if w.startswith("--")]
    if unknown:
        raise UsageError(f"unknown option `{unknown[0][:30]}`")
    if not words:
        raise UsageError("which tenant?")
    tenant = tenant_arg(words[0])
    if len(words) < 2:
        raise UsageError(f"which mitigation? {', '.join(ACTIONS)}")
    action, rest = words[1].lower(), words[2:]
    if action not in ACTIONS:
        raise UsageError(f"unknown mitigation `{words[1][:40]}`: expected {', '.join(ACTIONS)}")
    if lasts_s is not None and action not in TEMPORARY:
        raise UsageError(f"`{action}` is not temporary: it stays until undone (no `for <duration>`)")
    if action == "ip-block":
        if not rest:
            raise UsageError("which source IPs? `ip-block <ip>[,<ip>...]`")
    elif len(rest) > (1 if action in ("quota", "rollback-policy") else 0):
        raise UsageError("too many arguments")
    if burst is not None and action != "quota":
        raise UsageError("`--burst` goes with `quota`")
    token_rate = _rate(rest[0], "token_rate") if action == "quota" and rest else None
    version = rest[0] if action == "rollback-policy" and rest else None
    if version is not None and not _VERSION.fullmatch(version):
        raise UsageError(f"`{version[:40]}` is not a policy version")
    return {
        "tenant": tenant,
        "action": action,
        "token_rate": token_rate,
        "burst_rate": _rate(burst, "burst_rate") if burst is not None else None,
        "version": version,
        "ips": parse_ranges(rest) if action == "ip-block" else None,
        "lasts_s": lasts_s,
        "dry_run": dry_run,
    }


VERB = register(
    Verb(
        "mitigate",
        "mitigate <tenant> degraded-mode|quota [<token_rate>] [--burst <n>]|rollback-policy [<version>]|key-window"
        "|ip-block <ip>[,<ip>...] [for <duration>] [--dry-run]",
        "runbook §5: plan a mitigation (dry run, then confirm); every change can be undone",
        parse_args,
        mutating=True,
        examples=(
            "mitigate acme degraded-mode",
            "mitigate acme quota 300 --burst 600",
            "mitigate acme rollback-policy --dry-run",
            "mitigate acme ip-block 203.0.113.7,198.51.100.0/24 for 2h",
        ),
    )
)

_PLAN_ID = re.compile(r"^[0-9a-f]{6,32}$")


def parse_plan_id(args: list[str]) -> dict[str, Any]:
    if len(args) != 1:
        raise UsageError("which plan? (its id is on the plan: `Plan 1a2b3c…`)")
    if not _PLAN_ID.fullmatch(args[0]):
        raise UsageError(f"`{args[0][:40]}` is not a plan id")
    return {"plan_id": args[0]}


UNDO_VERB = register(
    Verb(
        "undo",
        "undo <plan-id>",
        "plan the exact undo of an applied mitigation (confirmed like any plan)",
        parse_plan_id,
        mutating=True,
        examples=("undo 1a2b3c4d5e6f",),
    )
)


def parse_extend(args: list[str]) -> dict[str, Any]:
    if not args or len(args) > 2:
        raise UsageError("expected `extend <plan-id> [<duration>]`")
    plan_id = parse_plan_id(args[:1])["plan_id"]
    return {"plan_id": plan_id, "lasts_s": lasts(args[1]) if len(args) == 2 else None}


EXTEND_VERB = register(
    Verb(
        "extend",
        "extend <plan-id> [<duration>]",
        "keep a temporary mitigation longer (default: as long again as it was planned for)",
        parse_extend,
        mutating=True,
        examples=("extend 1a2b3c4d5e6f 2h",),
    )
)

__all__ = [
    "ACTIONS",
    "DENYLIST",
    "EXTEND_VERB",
    "TEMPORARY",
    "UNDO_VERB",
    "VERB",
    "Action",
    "Applied",
    "Change",
    "Conflict",
    "Expired",
    "Forbidden",
    "MitigationError",
    "ObjectChange",
    "ObjectRef",
    "PartialApply",
    "Plan",
    "Refused",
    "Uncertain",
    "apply",
    "lasts",
    "parse_args",
    "parse_extend",
    "parse_plan_id",
    "plan",
    "plan_undo",
    "retry_restart",
]
