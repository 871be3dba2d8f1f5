"""What every real world also holds and no cause explains: unrelated log lines, a few quota
rejections and signature failures, routine events and commits, an old flag override, a past
breach that recovered, and a harmless policy rollout shortly before some breaches."""

from __future__ import annotations

import random

from sandbox.world.cause_draft import FLAGS, PEOPLE
from sandbox.world.draft import DAY_S, SLO_ESCALATIONS, Tenant, WorldDraft, newest_key, offset, step

UNRELATED = (
    ("cache refreshed", "debug"),
    ("gc pause", "debug"),
    ("batch flushed", "info"),
    ("config reloaded", "info"),
    ("connection reset by peer", "warn"),
    ("slow upstream response", "warn"),
    ("tls handshake failed", "warn"),
)


def add_noise(world: WorldDraft, t: Tenant) -> None:
    rng = world.rng
    if rng.random() < 0.6:
        for message, level in rng.sample(UNRELATED, rng.randint(1, 2)):
            t.add_log(message, rng.uniform(0.1, 3), DAY_S, level=level, sources=t.agents)
    if t.truth.scenario != "quota" and rng.random() < 0.25:
        _few_quota_rejections(rng, t)
    if t.truth.scenario != "signatures" and rng.random() < 0.35:
        # A sample of the failures the healthy signature-error ratio stands for.
        per_min = min(max(t.ingest_at(0) * t.traffic.signatures[max(t.traffic.signatures)] * 60, 0.1), 3)
        t.add_log(
            "signature verification failed",
            per_min,
            DAY_S,
            level="warn",
            sources=t.agents,
            fields={"key_id": newest_key(t.keys), "reason": "bad_signature"},
        )
    if rng.random() < 0.2:
        t.event("tenant-configmap", "ConfigSynced", f"tenant-{t.name} synced to the backend", rng.uniform(1, 23) * 3600)
    if rng.random() < 0.4:
        key = rng.choice(("daily_quota", "burst_rate", "token_rate"))
        t.commit(f"raise {key}", rng.uniform(1, 23) * 3600, {key: t.config[key]})
    if t.truth.healthy and rng.random() < 0.15:
        _past_breach(rng, t)
    if rng.random() < 0.15:
        _old_flag_override(world, t)


def _few_quota_rejections(rng: random.Random, t: Tenant) -> None:
    """Under 1% of ingest rejected, now and then: the rate limit doing its job."""
    rps = min(rng.uniform(0.01, 0.08), 0.005 * t.ingest_at(0))
    if rng.random() < 0.6:
        since_s, until_s = DAY_S, 0.0
    else:
        since_s = rng.uniform(2, 20) * 3600
        until_s = since_s - rng.uniform(5, 30) * 60
    step(t.traffic.quota, since_s, round(rps, 4))
    if until_s:
        step(t.traffic.quota, until_s, 0.0)
    extra = {"until_s": until_s} if until_s else {}
    t.add_log(
        "quota exceeded", rps * 60, since_s, level="warn", sources=t.agents[:2], fields={"limit": "burst_rate"}, **extra
    )


def _past_breach(rng: random.Random, t: Tenant) -> None:
    """A breach hours ago that is over: the tenant is healthy now."""
    began = rng.uniform(6, 20) * 3600
    ended = began - rng.uniform(20, 60) * 60
    healthy = t.traffic.escalations[max(t.traffic.escalations)]
    t.traffic.escalations[began] = rng.uniform(1.2, 3.0) * SLO_ESCALATIONS
    t.traffic.escalations[ended] = healthy


def _old_flag_override(world: WorldDraft, t: Tenant) -> None:
    rng = world.rng
    mine = world.flags.setdefault(t.name, {})
    unset = [f for f in FLAGS if f not in mine]
    if not unset:
        return
    flag = rng.choice(unset)
    general = world.flags["global"].get(flag)
    value = not general if isinstance(general, bool) else rng.choice((True, False))
    mine[flag] = value
    if rng.random() < 0.5:
        ago = rng.uniform(2, 20) * DAY_S
        person = rng.choice(PEOPLE)
        world.flag_changes.append(
            {
                "scope": t.name,
                "flag": flag,
                "value": value,
                "previous": general,
                "at": offset(ago),
                "author": f"{person} <{person}@fractal-lba.example>",
                "_ago": ago,
            }
        )


def benign_rollout(world: WorldDraft) -> None:
    """A new version with unchanged thresholds, moved to by a few tenants an hour or two ago."""
    rng = world.rng
    movable = [
        t
        for t in world.tenants
        if t.version is world.base and t.name not in world.base.overrides and t.truth.scenario != "policy"
    ]
    if not movable:
        return
    person = rng.choice(PEOPLE)
    version = world.version(
        rng.uniform(15, 150) * 60, world.base.thresholds, f"{person} <{person}@fractal-lba.example>"
    )
    for t in rng.sample(movable, rng.randint(1, min(3, len(movable)))):
        t.version = version
        t.event(
            "policy-configmap",
            "PolicyPromoted",
            f"policy {{version}} promoted for {t.name} by {person}",
            version.created_s,
            version=version,
        )
