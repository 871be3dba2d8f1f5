"""Runbook §6: is the SLO restored? The check the bot runs 5 and 10 minutes after a mitigation
(and on `/flk verify <tenant> [in <duration>]`): the escalation ratio and the signature-error
ratio against their SLOs, with the runbook's own `rate(flk_escalated_by_tenant{…}[5m])`."""

from __future__ import annotations

import asyncio
import math
import re
from datetime import UTC, datetime
from typing import Any

from commands.context import Context
from commands.models import Finding, Status
from commands.promql import escalation_ratio, pct, selector, signature_error_ratio
from commands.registry import UsageError, Verb, register, tenant_arg
from integrations.errors import BackendError

KEY, TITLE = "verify.slo", "SLO check"
_WINDOW = re.compile(r"^\d+[smh]$")
_DURATION = re.compile(r"^(\d+)([smh]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}
MAX_DELAY_S = 24 * 3600


def duration_s(text: str) -> int:
    """'90', '90s', '5m', '1h' -> seconds (at most a day)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"`{text[:20]}` is not a duration (like 30s, 5m or 1h)")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds > MAX_DELAY_S:
        raise UsageError("a check can be scheduled at most 24 h ahead")
    return seconds


def parse_args(args: list[str]) -> dict[str, Any]:
    if not args:
        raise UsageError("which tenant?")
    tenant = tenant_arg(args[0])
    rest = args[1:]
    if not rest:
        return {"tenant": tenant, "delay_s": 0}
    if len(rest) != 2 or rest[0].lower() != "in":
        raise UsageError("expected `verify <tenant>` or `verify <tenant> in <duration>`")
    return {"tenant": tenant, "delay_s": duration_s(rest[1])}


VERB = register(
    Verb(
        "verify",
        "verify <tenant> [in <duration>]",
        "runbook §6: is the tenant back within its SLO (now, or in 5m, 1h…)",
        parse_args,
        examples=("verify acme", "verify acme in 5m"),
    )
)


def _value(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else v


async def check_slo(ctx: Context, tenant: str, *, window: str | None = None) -> Finding:
    """``ok`` when both ratios are within their SLOs, ``breach`` when one is above, ``unknown``
    without samples, ``error`` when Prometheus fails. ``window`` (default: the SLO's) can be
    shortened where time is compressed (tests, the demo)."""
    tenant_arg(tenant)
    cfg = ctx.config
    w = window or cfg.slo.window
    if not _WINDOW.fullmatch(w):
        raise UsageError(f"`{w[:20]}` is not a rate window (like 5m)")
    at = datetime.now(UTC)
    try:
        esc, err, per_s = await asyncio.gather(
            ctx.prometheus.scalar(escalation_ratio(cfg, tenant, w), at),
            ctx.prometheus.scalar(signature_error_ratio(cfg, tenant, w), at),
            ctx.prometheus.scalar(f"sum(rate({cfg.metrics.escalated}{selector(cfg, tenant)}[{w}]))", at),
        )
    except BackendError as exc:
        return Finding.error(KEY, TITLE, f"{exc.system}: {exc.reason}", exc.system)
    esc, err, per_s = _value(esc), _value(err), _value(per_s)
    slis = (
        ("escalations", esc, cfg.slo.escalation_ratio),
        ("signature errors", err, cfg.slo.signature_error_ratio),
    )
    above = [f"{name} {pct(v)} > SLO {pct(slo)}" for name, v, slo in slis if v is not None and v > slo]
    if above:
        status, summary = Status.BREACH, f"`{tenant}` still breaches: {'; '.join(above)}"
    elif esc is None or err is None:
        status, summary = Status.UNKNOWN, f"no samples for `{tenant}` in the last {w}: cannot tell"
    else:
        status = Status.OK
        summary = f"`{tenant}` is within its SLO: escalations {pct(esc)}, signature errors {pct(err)}"
    facts = {f"{name} ({w})": f"{pct(v)} (SLO {pct(slo)})" for name, v, slo in slis}
    facts[f"rate(escalated[{w}])"] = "n/a" if per_s is None else f"{per_s:.3g}/s"
    data = {
        "escalation_ratio": esc,
        "signature_error_ratio": err,
        "escalations_per_s": per_s,
        "slo": {"escalation_ratio": cfg.slo.escalation_ratio, "signature_error_ratio": cfg.slo.signature_error_ratio},
        "window": w,
        "at": at.timestamp(),
    }
    return Finding(KEY, TITLE, status, summary, facts=facts, data=data)
