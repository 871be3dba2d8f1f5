"""The communication verbs: `/flk notify`, `/flk resolve`, `/flk rca`, `/flk silence`."""

from __future__ import annotations

import re
from typing import Any

from commands.comms.templates import duration
from commands.config import RunbookConfig
from commands.registry import UsageError, Verb, optional_tenant, register, tenant_arg

_DURATION = re.compile(r"^(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$")
MAX_REASON = 500

NOTIFY = register(
    Verb(
        "notify",
        "notify [tenant]",
        "runbook §5.1: draft the tenant notice from the incident, edit it, post it to the tenant's channel",
        optional_tenant,
        mutating=True,
        examples=("notify", "notify acme"),
    )
)
RESOLVE = register(
    Verb(
        "resolve",
        "resolve [tenant]",
        "runbook §6: the RESOLVED update (root cause, resolution, duration, next steps), annotation, silences expired",
        optional_tenant,
        mutating=True,
        examples=("resolve acme",),
    )
)
RCA = register(
    Verb(
        "rca",
        "rca [tenant]",
        "runbook §7: the RCA draft from the timeline as a Markdown file, and the tenant summary",
        optional_tenant,
        examples=("rca acme",),
    )
)


def parse_duration(word: str) -> int:
    """``30m``, ``2h``, ``1h30m``, ``1d``, ``90s`` → seconds; UsageError for anything else."""
    match = _DURATION.fullmatch(word.lower())
    if not word or match is None:
        raise UsageError(f"`{word[:20]}` is not a duration (like 30m, 2h or 1h30m)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise UsageError("a silence must last longer than zero")
    return total


def parse_silence(args: list[str]) -> dict[str, Any]:
    if len(args) < 3:
        raise UsageError("expected a tenant, a duration and a reason")
    tenant = tenant_arg(args[0])
    seconds = parse_duration(args[1])
    reason = " ".join(args[2:]).strip()
    if not reason:
        raise UsageError("a silence needs a reason")
    if len(reason) > MAX_REASON:
        raise UsageError(f"keep the reason under {MAX_REASON} characters")
    return {"tenant": tenant, "duration_s": seconds, "reason": reason}


SILENCE = register(
    Verb(
        "silence",
        "silence <tenant> <duration> <reason>",
        "an Alertmanager silence of the tenant's SLO alert (e.g. 30m, 2h), expired when the incident is resolved",
        parse_silence,
        mutating=True,
        examples=("silence acme 2h mitigation applied, waiting for the 5m rate",),
    )
)


def check_silence_duration(seconds: int, config: RunbookConfig) -> int:
    """``seconds`` when within the configured maximum; UsageError (with the usage) otherwise."""
    cap = config.comms.silence_max_s
    if seconds > cap:
        raise UsageError(f"a silence may last at most {duration(cap)}, not {duration(seconds)}", SILENCE)
    return seconds
