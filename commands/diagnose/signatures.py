"""Runbook §4 scenario A · signature failures: wrong key, unsynchronised rotation or clock skew.

The signing secret is read for its key names only (``Kube.secret_keys``): no value is kept,
logged or shown.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter

from commands.config import RunbookConfig
from commands.diagnose.common import Inputs, Outcome, clock, fired, quiet, ratio_finding, unknown
from commands.models import Finding, Scenario, Status
from commands.promql import pct
from commands.timestamps import parse_time
from integrations.errors import BackendError

SCENARIO: Scenario = "signatures"
# A rotation up to this long after the breach's computed start still counts as before it:
# the 5 m rate window and the 2 m range step blur the start.
START_SLACK_S = 300
_TOKEN = re.compile(r"[\w.:-]+")


async def ratio(inp: Inputs) -> Finding:
    return ratio_finding("signatures.ratio", "Signature-error ratio and trend", await inp.trend("signatures"))


async def keys(inp: Inputs) -> Finding:
    name = inp.name(inp.config.resources.signing_secret)
    names = await inp.ctx.kube.secret_keys(name)
    summary = f"`{name}` holds {len(names)} key(s): {', '.join(names) or 'none'} (names only)"
    status = Status.OK if names else Status.WARN
    return Finding(
        "signatures.keys", "Signing keys", status, summary, facts={"keys": ", ".join(names)}, data={"keys": names}
    )


async def rotations(inp: Inputs) -> Finding:
    name = inp.name(inp.config.resources.signing_secret)
    events = await inp.ctx.kube.events_for("Secret", name)
    found = []
    for e in events:
        when = parse_time(e.last_seen)
        if when is not None:
            found.append({"ts": when.timestamp(), "reason": e.reason, "message": e.message})
    found.sort(key=lambda r: r["ts"], reverse=True)
    window = inp.config.timeouts.rollout_window_s
    recent = [r for r in found if inp.now.timestamp() - r["ts"] <= window]
    evidence = [f"{clock(r['ts'])} {r['reason']}: {r['message']}" for r in found]
    if recent:
        status, summary = Status.WARN, f"{len(recent)} event(s) on `{name}` in the last {window / 60:.0f} min"
        summary += f", latest {clock(recent[0]['ts'])}: {recent[0]['message']}"
    else:
        status, summary = Status.OK, f"no recent events on `{name}` ({len(found)} older)"
    markers = [{"label": r["reason"] or "key rotation", "ts": r["ts"]} for r in found]
    return Finding(
        "signatures.rotations",
        "Key-rotation events",
        status,
        summary,
        evidence=evidence,
        data={"rotations": found, "markers": markers},
    )


async def rejections(inp: Inputs) -> Finding:
    """Rejected signatures in the backend logs: which key ids, and how far ``sig_ts`` lies from ``ts``."""
    cfg = inp.config.diagnosis
    wanted = cfg.signature_failure_message.lower()
    lines = [line for line in await inp.tenant_lines() if wanted in line.msg.lower()]
    key_ids = Counter(line.fields.get("key_id", "") for line in lines)
    key_ids.pop("", None)
    reasons = Counter(line.fields.get("reason", "") for line in lines)
    reasons.pop("", None)
    skews = []
    for line in lines:
        signed = parse_time(line.fields.get("sig_ts"))
        if signed is not None:
            skews.append((line.ts - signed).total_seconds())
    skewed = sum(abs(s) > cfg.clock_skew_s for s in skews)
    median_skew = statistics.median(skews) if skews else None
    window = f"{cfg.log_window_s / 60:.0f} min"
    if not lines:
        summary, status = f"no `{cfg.signature_failure_message}` lines for `{inp.tenant}` in {window}", Status.OK
    else:
        summary = f"{len(lines)} rejected signature(s) in {window}"
        if key_ids:
            summary += "; key ids: " + ", ".join(f"{k} ×{n}" for k, n in key_ids.most_common(3))
        if skews:
            summary += f"; {skewed} of {len(skews)} timestamped beyond ±{cfg.clock_skew_s:g} s"
        # The failures are the breach when the ratio is over its SLO; else a few, worth a look.
        try:
            breaching = (await inp.trend("signatures")).breaching
        except BackendError:
            breaching = False  # the ratio's own finding says it could not be read
        status = Status.BREACH if breaching else Status.WARN
    facts = {"rejected": str(len(lines)), "reasons": ", ".join(f"{r} ×{n}" for r, n in reasons.most_common(3))}
    if median_skew is not None:
        facts["median skew"] = f"{median_skew:+.1f} s"
    evidence = [f"{line.ts:%H:%M:%S} key_id={line.fields.get('key_id', '?')} src={line.source}" for line in lines[-5:]]
    return Finding(
        "signatures.rejections",
        "Rejected signatures (backend logs)",
        status,
        summary,
        facts=facts,
        evidence=evidence,
        data={
            "count": len(lines),
            "key_ids": dict(key_ids),
            "reasons": dict(reasons),
            "timestamped": len(skews),
            "skewed": skewed,
            "median_skew_s": median_skew,
        },
    )


PROBES = (
    ("signatures.ratio", "Signature-error ratio and trend", ratio),
    ("signatures.keys", "Signing keys (names only)", keys),
    ("signatures.rotations", "Key-rotation events", rotations),
    ("signatures.rejections", "Rejected signatures (backend logs)", rejections),
)


def _mentions(message: str, key: str) -> bool:
    return key in _TOKEN.findall(message)


def _rotation_explains(rotation: dict, key: str | None, names: list[str] | None) -> str | None:
    """Why a rotation just before the breach explains rejections with ``key``, or None: the
    agents still sign with a key the rotation retired, removed, or moved away from."""
    if key is None:
        return "the rejections name no key"
    if _mentions(rotation["message"], key):
        return f"the rotation's event names `{key}`"
    if names is not None and key not in names:
        return f"`{key}` is no longer in the secret"
    # A rotation that names only the key it added, while the agents sign with an older one it kept.
    named = [k for k in names or () if _mentions(rotation["message"], k)]
    if len(named) == 1:
        return f"the rotation moved to `{named[0]}`, the agents still sign with `{key}`"
    return None


def decide(data: dict[str, dict], config: RunbookConfig, tenant: str, now: float) -> Outcome:
    """The scenario's verdict from its findings' data (an errored finding gives ``{}``)."""
    sli = data.get("signatures.ratio", {})
    value, slo = sli.get("ratio"), config.slo.signature_error_ratio
    if value is None:
        return unknown(SCENARIO, "the signature-error ratio could not be read")
    if value <= slo:
        return quiet(SCENARIO, "no signature problem", [f"signature-error ratio {pct(value)} ≤ SLO {pct(slo)}"])
    started = sli.get("breach_start")
    evidence = [
        f"signature-error ratio {pct(value)} > SLO {pct(slo)}" + (f" since {clock(started)}" if started else "")
    ]
    cites = ("signatures.ratio", "signatures.rejections")
    rej = data.get("signatures.rejections", {})
    timestamped, skewed = rej.get("timestamped", 0), rej.get("skewed", 0)
    if timestamped and skewed / timestamped >= config.diagnosis.clock_skew_share:
        evidence.append(
            f"{skewed} of {timestamped} rejected signatures carry a timestamp more than "
            f"±{config.diagnosis.clock_skew_s:g} s from receive time (median {rej.get('median_skew_s', 0):+.1f} s)"
        )
        evidence.append("resolution: the tenant's agents must sync NTP")
        rule = (
            f"{skewed / timestamped:.0%} of timestamped rejections skewed (≥ {config.diagnosis.clock_skew_share:.0%})"
        )
        return fired(
            SCENARIO,
            "clock skew",
            evidence,
            [f"notify {tenant}"],
            cause="clock_skew",
            confidence="high",
            rule=rule,
            cites=cites,
        )

    key_ids: dict[str, int] = rej.get("key_ids", {})
    key = max(key_ids, key=key_ids.__getitem__) if key_ids else None
    if key:
        evidence.append(f"rejected signatures use key `{key}` ({key_ids[key]} of {rej.get('count', 0)})")
    names: list[str] | None = data.get("signatures.keys", {}).get("keys")
    anchor = started if started is not None else now
    window = config.timeouts.rollout_window_s
    rotation = next(
        (
            r
            for r in data.get("signatures.rotations", {}).get("rotations", [])
            if r["ts"] <= anchor + START_SLACK_S and anchor - r["ts"] <= window
        ),
        None,
    )
    why = _rotation_explains(rotation, key, names) if rotation is not None else None
    if rotation is not None and why is not None:
        lead = ((started or rotation["ts"]) - rotation["ts"]) / 60
        evidence.append(
            f"key rotation at {clock(rotation['ts'])} ({rotation['message']}), {lead:.0f} min before the breach: {why}"
        )
        evidence.append("resolution: enable the multi-key verification window until the agents use the new key")
        return fired(
            SCENARIO,
            "rotation not synchronised",
            evidence,
            [f"mitigate {tenant} key-window", f"notify {tenant}"],
            cause="rotation_not_synchronised",
            confidence="high" if key is not None else "medium",
            rule="a key rotation within the rollout window before the breach, and " + why,
            cites=(*cites, "signatures.rotations"),
        )
    if names is not None and key is not None and key not in names:
        evidence.append(f"`{key}` is not one of the tenant's keys ({', '.join(names) or 'none'})")
    if rotation is None:
        evidence.append("no key rotation just before the breach")
    evidence.append("resolution: coordinate with the tenant to update the agent's signing key")
    known_key = names is not None and key is not None
    return fired(
        SCENARIO,
        "key mismatch",
        evidence,
        [f"notify {tenant}"],
        cause="wrong_key",
        confidence="high" if known_key and rotation is None else "medium",
        rule="signatures rejected with a key no recent rotation explains, timestamps in window",
        cites=cites,
    )
