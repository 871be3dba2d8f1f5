"""Each runbook cause as a change to a healthy tenant draft: the metrics, log lines, WORM values,
events, commits, policy versions and flags that the cause would leave behind in fractal-lba.

A builder sets the tenant's truth; ``group`` marks a tenant of an isolation breach (several
tenants, one shared cause) and gives the builder the shared parts (``Shared``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from sandbox.world.cause_draft import FLAGS, MAX_QUOTA_RPS, Breach, rejection_log, rescale_ingest
from sandbox.world.draft import (
    SLO_ESCALATIONS,
    SLO_SIGNATURES,
    addresses,
    healthy_worm,
    newest_key,
    next_key,
    offset,
    secret_value,
    step,
)
from sandbox.world.truth import Cause

# -- A · signatures -------------------------------------------------------------------------------


def wrong_key(b: Breach) -> None:
    t, rng = b.tenant, b.rng
    others = [k for o in b.world.tenants if o is not t for k in o.keys if k not in t.keys]
    kind = rng.choice(["unknown key id", "stale key id"] + (["another tenant's key id"] if others else []))
    if kind == "another tenant's key id":
        key = rng.choice(others)
    elif kind == "stale key id":
        key = f"key-2025-{rng.randint(1, 12):02d}"
    else:
        key = f"{rng.choice(('agent', 'default', 'local'))}-key-{rng.randint(1, 9)}"
    b.variant.append(kind)
    b.sli("signatures")
    extra: dict[str, Any] = {}
    if rng.random() < 0.5:
        # Signed in a timestamped mode: the timestamps are fine, only the key is wrong.
        extra["skew_s"] = round(rng.choice((-1, 1)) * rng.uniform(0.2, 3.0), 2)
    per_min = t.ingest_at(0) * b.magnitude * SLO_SIGNATURES * 60
    sources = rng.sample(t.agents, rng.randint(1, len(t.agents)))
    rejection_log(b, per_min, sources, {"key_id": key, "reason": "unknown_key"}, **extra)
    if rng.random() < 0.3:
        rotated = newest_key(t.keys)
        t.event("secret", "KeyRotated", f"signing key {rotated} added", rng.uniform(2, 6) * 86400)
    b.finish("wrong_key")


def rotation_not_synchronised(b: Breach) -> None:
    t, rng = b.tenant, b.rng
    old = newest_key(t.keys)
    new = next_key(old)
    keep_old = rng.random() < 0.5
    t.keys = {**({old: t.keys[old]} if keep_old else {}), new: secret_value(rng, t.name)}
    rotated_s = b.onset_s + rng.uniform(30, 900)
    names_old = rng.random() < 0.6
    message = f"signing key {new} added, {old} retired" if names_old else f"signing key rotated to {new}"
    t.event("secret", "KeyRotated", message, rotated_s)
    b.variant.append("old key kept in the secret" if keep_old else "old key removed")
    b.variant.append("event names the old key" if names_old else "event names the new key only")
    if rng.random() < 0.5:
        t.commit(f"rotate signing key to {new}", rotated_s + 60, {"signing_key_id": new}, b.person())
    before = b.sli("signatures")
    per_min = t.ingest_at(0) * b.magnitude * SLO_SIGNATURES * 60
    stale_agents = rng.sample(t.agents, rng.randint(1, len(t.agents)))
    reason = "retired_key" if keep_old else "unknown_key"
    rejection_log(b, per_min, stale_agents, {"key_id": old, "reason": reason})
    b.finish("rotation_not_synchronised", {"action": "key-window", "recovers_to": {"signature_error_ratio": before}})


def clock_skew(b: Breach) -> None:
    t, rng = b.tenant, b.rng
    b.sli("signatures")
    per_min = t.ingest_at(0) * b.magnitude * SLO_SIGNATURES * 60
    key = newest_key(t.keys)
    # A region's broken time source moves its tenants' clocks alike; else each agent drifts its own way.
    typical = b.shared.skew_s if b.shared else rng.choice((-1, 1)) * rng.uniform(45, 900)
    sign = 1 if typical >= 0 else -1
    drifting = rng.sample(t.agents, rng.randint(1, min(3, len(t.agents))))
    for agent in drifting:
        skew = abs(typical) * rng.uniform(0.9, 1.1) if b.shared else rng.uniform(45, 900)
        fields = {"key_id": key, "reason": "timestamp_out_of_window"}
        rejection_log(b, per_min / len(drifting), [agent], fields, skew_s=round(sign * skew, 1))
    b.variant.append(f"{len(drifting)} drifting agent(s), clocks {'behind' if sign > 0 else 'ahead'}")
    b.finish("clock_skew")


# -- B · escalations ------------------------------------------------------------------------------


def distribution_shift(b: Breach) -> None:
    t, rng = b.tenant, b.rng
    before = b.sli("escalations")
    shifted = copy.deepcopy(t.worm["accepted"])
    moved = rng.choice(("D_hat", "coh_star", "both"))
    sigmas = rng.uniform(2.5, 6.0)
    if moved in ("D_hat", "both"):
        d = shifted["D_hat"]
        d["mean"] = round(d["mean"] + sigmas * d["sd"], 3)
        d["sd"] = round(d["sd"] * rng.uniform(1.0, 1.4), 3)
    if moved in ("coh_star", "both"):
        c = shifted["coh_star"]
        c["mean"] = round(max(c["mean"] - sigmas * c["sd"], 0.05), 3)
        c["sd"] = round(c["sd"] * rng.uniform(1.0, 1.4), 3)
    t.worm.update(shift_at=offset(b.onset_s), shifted=shifted)
    b.variant.append(f"{moved} moved {sigmas:.1f} sd")
    b.escalation_lines("D_hat_above_tol" if moved == "D_hat" else "coh_star_below_tol")
    b.finish("distribution_shift", {"action": "degraded-mode", "recovers_to": {"escalation_ratio": before}})


def policy_too_strict(b: Breach) -> None:
    """Tolerances the tenant's data sits right at: no shift, no rollout, escalations creep or step up."""
    t, rng = b.tenant, b.rng
    tight = {"tol_D": f"{t.tol_d - rng.uniform(0.1, 0.25):.2f}"}
    if rng.random() < 0.4:
        tight["tol_coh"] = f"{min(t.tol_coh + rng.uniform(0.02, 0.05), 0.95):.2f}"
    t.version.overrides[t.name] = tight
    t.worm = healthy_worm(rng, t, margin=(0.12, 0.25))
    t.worm["escalated"]["D_hat"]["mean"] = round(t.tol_d + rng.uniform(0.01, 0.05), 3)
    before = b.sli("escalations")
    if rng.random() < 0.6:
        steps = rng.randint(2, 4)
        spacing = rng.uniform(0.5, 1.5) * 3600 / steps
        for i in range(steps, 0, -1):
            level = before + (0.95 * SLO_ESCALATIONS - before) * (steps - i + 1) / (steps + 1)
            t.traffic.escalations[b.onset_s + i * spacing] = level
        b.variant.append(f"crept up in {steps} steps")
    b.escalation_lines("D_hat_above_tol")
    b.finish("policy_too_strict", {"action": "degraded-mode", "recovers_to": {"escalation_ratio": before}})


def upstream_corruption(b: Breach) -> None:
    t, rng = b.tenant, b.rng
    before = b.sli("escalations")
    share = b.shared.malformed_share * rng.uniform(0.9, 1.1) if b.shared else rng.uniform(0.15, 0.6)
    t.worm.update(malformed_share=round(min(share, 1.0), 3), malformed_since=offset(b.onset_s))
    t.worm["reasons"] = ["D_hat out of range", "coh_star missing", "D_hat above tol_D"]
    b.variant.append(f"{share:.0%} of escalations malformed")
    b.escalation_lines("invalid_payload")
    b.finish("upstream_corruption", {"action": "degraded-mode", "recovers_to": {"escalation_ratio": before}})


# -- C · quota ------------------------------------------------------------------------------------


def _rejections(b: Breach, rps: float) -> None:
    step(b.tenant.traffic.quota, b.onset_s, round(rps, 3))


def legitimate_burst(b: Breach) -> None:
    """More real traffic from the tenant's many clients: a few percent rejected, at random times."""
    t, rng = b.tenant, b.rng
    factor = rng.uniform(1.3, 2.5)
    share = rng.uniform(0.04, 0.06) if rng.random() < 0.45 else rng.uniform(0.06, 0.3)
    if share * factor * t.ingest_at(0) > MAX_QUOTA_RPS:
        rescale_ingest(t, MAX_QUOTA_RPS / share / factor)
    burst = t.ingest_at(0) * factor
    step(t.traffic.ingest, b.onset_s, round(burst, 3))
    rps = share * burst
    _rejections(b, rps)
    before = b.sli("escalations")
    clients = addresses(rng, f"172.{rng.randint(16, 31)}.", rng.randint(10, 16))
    t.add_log(
        "quota exceeded", rps * 60, b.onset_s, cap=False, level="warn", sources=clients, fields={"limit": "burst_rate"}
    )
    b.variant.append(f"rejections {rps / burst:.1%} of ingest from {len(clients)} clients")
    b.finish(
        "legitimate_burst", {"action": "quota", "recovers_to": {"quota_exceeded_rps": 0, "escalation_ratio": before}}
    )


def retry_storm(b: Breach) -> None:
    """A client retrying in a loop: few sources, each at a steady short interval."""
    t, rng = b.tenant, b.rng
    clients = rng.sample(t.agents, rng.randint(1, min(4, len(t.agents))))
    interval = max(rng.uniform(0.5, 4.0), len(clients) / MAX_QUOTA_RPS)
    rps = len(clients) / interval
    rescale_ingest(t, min(max(rps / rng.uniform(0.08, 1.0), 3.0), 200.0))
    _rejections(b, rps)
    before = b.sli("escalations")
    jitter = round(rng.uniform(0.02, 0.2), 3) if rng.random() < 0.5 else 0.0
    extra = {"jitter": jitter} if jitter else {}
    t.add_log(
        "quota exceeded",
        rps * 60,
        b.onset_s,
        cap=False,
        level="warn",
        timing="fixed",
        sources=clients,
        fields={"limit": "token_rate"},
        **extra,
    )
    b.variant.append(f"{len(clients)} source(s) every {interval:.2g} s" + (f", jitter {jitter:g}" if jitter else ""))
    b.finish("retry_storm", {"action": "quota", "recovers_to": {"quota_exceeded_rps": 0, "escalation_ratio": before}})


def attack(b: Breach) -> None:
    """Sudden hostile traffic: a few outside addresses carry most rejections (or a botnet of many)."""
    t, rng = b.tenant, b.rng
    rps = rng.uniform(1.5, MAX_QUOTA_RPS)
    rescale_ingest(t, min(max(rps / rng.uniform(0.2, 3.0), 3.0), 200.0))
    _rejections(b, rps)
    before = b.sli("escalations")
    fields = {"limit": "token_rate"}
    remedy = None
    if rng.random() < 0.7:
        attackers = addresses(rng, rng.choice(("198.51.100.", "203.0.113.", "192.0.2.")), rng.randint(2, 5))
        carried = rng.uniform(0.8, 0.97)
        clients = addresses(rng, f"172.{rng.randint(16, 31)}.", rng.randint(3, 8))
        t.add_log(
            "quota exceeded", rps * carried * 60, b.onset_s, cap=False, level="warn", sources=attackers, fields=fields
        )
        t.add_log(
            "quota exceeded",
            rps * (1 - carried) * 60,
            b.onset_s,
            cap=False,
            level="warn",
            sources=clients,
            fields=fields,
        )
        b.variant.append(f"{len(attackers)} sources carry {carried:.0%}")
        # Denied at the ingress, the attackers' requests never reach the backend: what is left is
        # the clients' own share of rejections.
        left = {"quota_exceeded_rps": round(rps * (1 - carried), 3), "escalation_ratio": before}
        remedy = {"action": "ip-block", "sources": attackers, "recovers_to": left}
    else:
        bots = [ip for prefix in ("198.51.100.", "203.0.113.", "100.64.") for ip in addresses(rng, prefix, 12)]
        bots = rng.sample(bots, rng.randint(25, len(bots)))
        t.add_log("quota exceeded", rps * 60, b.onset_s, cap=False, level="warn", sources=bots, fields=fields)
        b.variant.append(f"distributed over {len(bots)} sources")
    b.finish("attack", remedy)


# -- D · policy -----------------------------------------------------------------------------------


def tighter(rng: random.Random, thresholds: dict[str, str]) -> dict[str, str]:
    tight = {"tol_D": f"{max(float(thresholds['tol_D']) - rng.uniform(0.15, 0.45), 0.9):.2f}"}
    if rng.random() < 0.5:
        tight["tol_coh"] = f"{min(float(thresholds['tol_coh']) + rng.uniform(0.04, 0.12), 0.95):.2f}"
    return tight


def bad_thresholds(b: Breach) -> None:
    """A new policy version whose thresholds do not suit the tenant, promoted just before the breach."""
    t, rng = b.tenant, b.rng
    # What the tenant ran before: the sandbox runs the version registered just before this one.
    old_d = float(b.world.base.thresholds["tol_D"])
    if b.shared and b.shared.version:
        version = b.shared.version
    else:
        version = b.world.version(b.onset_s + rng.uniform(0, 720), b.world.base.thresholds, b.person())
        version.overrides[t.name] = tighter(rng, b.world.base.thresholds)
    t.version = version
    author = version.author.split(" <")[0]
    t.event(
        "policy-configmap",
        "PolicyPromoted",
        f"policy {{version}} promoted for {t.name} by {author}",
        version.created_s,
        version=version,
    )
    if rng.random() < 0.7:
        t.commit(
            "promote policy {version}",
            version.created_s + rng.uniform(30, 300),
            {"policy_version": "{version}"},
            version.author,
            version=version,
        )
    # The tenant's data did not change; what escalates now lies between the new and the old tol_D.
    t.worm["escalated"]["D_hat"]["mean"] = round((t.tol_d + old_d) / 2, 3)
    before = b.sli("escalations")
    b.variant.append(f"promoted {(version.created_s - b.onset_s) / 60:.0f} min before the breach")
    b.escalation_lines("coh_star_below_tol" if "tol_coh" in version.overrides.get(t.name, {}) else "D_hat_above_tol")
    b.finish("bad_thresholds", {"action": "rollback-policy", "recovers_to": {"escalation_ratio": before}})


def feature_flag(b: Breach) -> None:
    """A flag flipped for the tenant just before the breach; no policy change."""
    t, rng = b.tenant, b.rng
    flag = rng.choice(FLAGS)
    general = b.world.flags["global"].get(flag)
    mine = b.world.flags.setdefault(t.name, {})
    previous = mine.get(flag, general)
    value = not previous if isinstance(previous, bool) else True
    mine[flag] = value
    changed_s = b.onset_s + rng.uniform(0, 300)
    author = b.person()
    b.world.flag_changes.append(
        {
            "scope": t.name,
            "flag": flag,
            "value": value,
            "previous": previous,
            "at": offset(changed_s),
            "author": author,
            "_ago": changed_s,
        }
    )
    # The backend logs the reload once: a fixed-timing line at the start of a one-minute window.
    t.add_log(
        "feature flags reloaded",
        1,
        changed_s,
        until_s=changed_s - 60,
        timing="fixed",
        sources=t.agents[:1],
        fields={"flag": flag, "value": str(value).lower()},
    )
    if rng.random() < 0.4:
        t.commit(f"set {flag}={str(value).lower()}", changed_s + 60, {f"flag_{flag}": str(value).lower()}, author)
    t.worm["reasons"] = [f"{flag} check failed", "D_hat above tol_D"]
    b.sli("escalations")
    b.variant.append(f"{flag} {previous} -> {value}")
    b.escalation_lines(flag)
    b.finish("feature_flag")


BUILDERS: dict[Cause, Callable[[Breach], None]] = {
    "wrong_key": wrong_key,
    "rotation_not_synchronised": rotation_not_synchronised,
    "clock_skew": clock_skew,
    "distribution_shift": distribution_shift,
    "policy_too_strict": policy_too_strict,
    "upstream_corruption": upstream_corruption,
    "legitimate_burst": legitimate_burst,
    "retry_storm": retry_storm,
    "attack": attack,
    "bad_thresholds": bad_thresholds,
    "feature_flag": feature_flag,
}
# The cause's log volume grows with the breach's age: quota rejections are logged one line each.
LONGEST_ONSET_S: dict[Cause, float] = {"legitimate_burst": 2.5 * 3600, "retry_storm": 2 * 3600, "attack": 2.5 * 3600}
