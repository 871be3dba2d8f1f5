"""A generated world while it is being built: tenants, policy versions and flags as plain data,
with the numbers the causes need (tolerances, rates, agent addresses) kept beside them, turned
into a world-spec mapping at the end.

Times are seconds before the world's start ("ago"); a series is ``{ago: value}``, a step
function like the spec's.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.world.truth import Truth, healthy

SLO_ESCALATIONS = 0.02
SLO_SIGNATURES = 0.01
DAY_S = 24 * 3600.0
# Pattern log lines per minute are capped (as a backend samples its logs), except where the
# timing of every line is the evidence (quota rejections).
LOG_CAP_PER_MIN = 90.0

Series = dict[float, float]


def offset(ago: float) -> str:
    """Seconds before the start as a spec offset: 7530 -> "-2h5m30s"."""
    s = round(ago)
    if s <= 0:
        return "0"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return "-" + (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")


def at(series: Series, ago: float) -> float:
    """The series' value ``ago`` seconds before the start."""
    value = series[max(series)]
    for start in sorted(series, reverse=True):
        if start >= ago:
            value = series[start]
    return value


def step(series: Series, ago: float, value: float) -> None:
    """From ``ago`` on, the series holds ``value`` (later steps are replaced)."""
    for start in [s for s in series if s < ago]:
        del series[start]
    series[ago] = value


def series_spec(series: Series, digits: int = 6) -> float | dict[str, float]:
    values = {offset(ago): round(v, digits) for ago, v in sorted(series.items(), reverse=True)}
    return next(iter(values.values())) if len(values) == 1 else values


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def breach_magnitude(rng: random.Random) -> float:
    """Times the SLO: often just over it, else spread up to 20x."""
    return rng.uniform(1.2, 2.0) if rng.random() < 0.35 else log_uniform(rng, 2.0, 20.0)


def healthy_magnitude(rng: random.Random) -> float:
    """Times the SLO for a tenant within it: some close to it."""
    return rng.uniform(0.75, 0.9) if rng.random() < 0.3 else rng.uniform(0.1, 0.75)


def onset(rng: random.Random, longest_s: float = 6 * 3600) -> float:
    """Minutes to hours ago; never under 8 minutes, so the 5 m SLI window holds the breach."""
    return log_uniform(rng, 8 * 60, longest_s)


def address(rng: random.Random, prefix: str) -> str:
    """A random address under ``prefix`` ("10.", "198.51.100.")."""
    parts = prefix.rstrip(".").split(".")
    while len(parts) < 4:
        parts.append(str(rng.randint(1, 254)))
    return ".".join(parts)


def addresses(rng: random.Random, prefix: str, count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        candidate = address(rng, prefix)
        if candidate not in found:
            found.append(candidate)
    return found


def secret_value(rng: random.Random, tenant: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"{tenant[:2]}-" + "".join(rng.choice(alphabet) for _ in range(28))


def _number(key: str) -> int:
    match = re.search(r"(\d+)$", key)
    return int(match.group(1)) if match else -1


def newest_key(keys: dict[str, str]) -> str:
    """The key id with the highest trailing number ("k10" after "k9")."""
    return max(keys, key=lambda k: (_number(k), k))


def next_key(key: str) -> str:
    """The key id a rotation of ``key`` adds: its trailing number plus one ("k9" -> "k10")."""
    match = re.search(r"(\d+)$", key)
    if not match:
        return f"{key}-2"
    digits = match.group(1)
    return f"{key[: match.start()]}{int(digits) + 1:0{len(digits)}d}"


def key_names(rng: random.Random, count: int) -> list[str]:
    """``count`` consecutive signing-key ids in one naming style."""
    start = rng.randint(1, 11)
    style = rng.choice(("key-2026-{:02d}", "k{}", "sig-v{}"))
    return [style.format(i) for i in range(start, start + count)]


@dataclass(eq=False)
class Version:
    """A policy version; named (``v<n>``, ascending with creation time) when the world is done."""

    created_s: float
    thresholds: dict[str, str]
    author: str = "policy-bot"
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    name: str = ""


@dataclass
class Traffic:
    ingest: Series
    escalations: Series
    signatures: Series
    quota: Series
    p95_ms: float
    p99_ms: float

    def spec(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ingest_rps": series_spec(self.ingest, 3),
            "escalation_ratio": series_spec(self.escalations),
            "signature_error_ratio": series_spec(self.signatures),
        }
        if any(self.quota.values()):
            body["quota_exceeded_rps"] = series_spec(self.quota, 3)
        body["latency_p95_ms"] = round(self.p95_ms)
        body["latency_p99_ms"] = round(self.p99_ms)
        return body


@dataclass
class Tenant:
    name: str
    region: str
    version: Version
    config: dict[str, str]  # the tenant configmap without policy_version (set from ``version``)
    keys: dict[str, str]
    agents: list[str]  # the tenant's own agents' addresses
    traffic: Traffic
    worm: dict[str, Any]
    truth: Truth
    logs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    remedy: dict[str, Any] | None = None
    verdict: str = ""

    @property
    def thresholds(self) -> dict[str, str]:
        return {**self.version.thresholds, **self.version.overrides.get(self.name, {})}

    @property
    def tol_d(self) -> float:
        return float(self.thresholds["tol_D"])

    @property
    def tol_coh(self) -> float:
        return float(self.thresholds["tol_coh"])

    def ingest_at(self, ago: float) -> float:
        return at(self.traffic.ingest, ago)

    def add_log(self, message: str, per_min: float, since_s: float, *, cap: bool = True, **extra: Any) -> None:
        """A log pattern from ``since_s`` ago until now (``until_s`` ago when given)."""
        rate = min(per_min, LOG_CAP_PER_MIN) if cap else per_min
        pattern: dict[str, Any] = {"message": message, "per_min": round(max(rate, 0.05), 3), "since": offset(since_s)}
        until_s = extra.pop("until_s", None)
        if until_s is not None:
            pattern["until"] = offset(until_s)
        pattern.update(extra)
        self.logs.append(pattern)

    def spec(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "region": self.region,
            "scenario": self.truth.scenario or "none",
        }
        if self.verdict:
            body["verdict"] = self.verdict
        body["config"] = {**self.config, "policy_version": self.version.name}
        body["policy"] = dict(self.thresholds)
        body["signing_keys"] = dict(self.keys)
        if self.events:
            body["events"] = [_named(e) for e in sorted(self.events, key=lambda e: -e["_ago"])]
        body["traffic"] = self.traffic.spec()
        if self.logs:
            body["logs"] = self.logs
        body["worm"] = self.worm
        if self.commits:
            body["git_history"] = [_named(c) for c in sorted(self.commits, key=lambda c: -c["_ago"])]
        if self.remedy:
            body["remedy"] = self.remedy
        return body

    def event(
        self, obj: str, reason: str, message: str, ago: float, kind: str = "Normal", version: Version | None = None
    ) -> None:
        """A Kubernetes event; ``{version}`` in the message is the version's name once it has one."""
        self.events.append(
            {
                "object": obj,
                "reason": reason,
                "message": message,
                "at": offset(ago),
                "type": kind,
                "_ago": ago,
                "_version": version,
            }
        )

    def commit(
        self,
        message: str,
        ago: float,
        changes: dict[str, str],
        author: str | None = None,
        version: Version | None = None,
    ) -> None:
        """A config commit; ``{version}`` in the message and values is the version's name."""
        entry: dict[str, Any] = {
            "at": offset(ago),
            "message": f"{self.name}: {message}",
            "set": changes,
            "_ago": ago,
            "_version": version,
        }
        if author:
            entry["author"] = author
        self.commits.append(entry)


def _named(entry: dict[str, Any]) -> dict[str, Any]:
    """An event or commit with its draft-only keys gone and its version named."""
    version: Version | None = entry.get("_version")
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    if version is not None:
        out["message"] = out["message"].format(version=version.name)
        if "set" in out:
            out["set"] = {k: v.format(version=version.name) for k, v in out["set"].items()}
    return out


def new_tenant(rng: random.Random, name: str, region: str, version: Version) -> Tenant:
    """A healthy tenant: steady SLIs within the SLO, WORM values well inside its tolerances."""
    token_rate = rng.choice((20, 40, 60, 80, 100, 150, 200, 300))
    config = {
        "strict_mode": rng.choice(("true", "true", "false")),
        "token_rate": str(token_rate),
        "burst_rate": str(token_rate * rng.choice((1, 2, 3))),
        "daily_quota": str(rng.choice((1, 2, 4, 5, 8, 12, 20)) * 1_000_000),
    }
    keys = {key: secret_value(rng, name) for key in key_names(rng, rng.randint(1, 2))}
    base = log_uniform(rng, 4, 150)
    ingest = {DAY_S - 4 * 3600 * i: round(base * rng.uniform(0.8, 1.2), 3) for i in range(6)}
    esc, sig = healthy_magnitude(rng), healthy_magnitude(rng)
    p95 = rng.uniform(60, 250)
    traffic = Traffic(
        ingest=ingest,
        escalations={DAY_S: esc * SLO_ESCALATIONS},
        signatures={DAY_S: sig * SLO_SIGNATURES},
        quota={DAY_S: 0.0},
        p95_ms=p95,
        p99_ms=p95 * rng.uniform(1.5, 3.0),
    )
    agents = addresses(rng, f"10.{rng.randint(1, 250)}.", rng.randint(2, 5))
    tenant = Tenant(
        name, region, version, config, keys, agents, traffic, worm={}, truth=healthy(round(max(esc, sig), 4))
    )
    tenant.worm = healthy_worm(rng, tenant)
    return tenant


def healthy_worm(rng: random.Random, tenant: Tenant, margin: tuple[float, float] = (0.25, 0.45)) -> dict[str, Any]:
    """Accepted records ``margin`` below tol_D and above tol_coh; escalations just beyond them."""
    d, coh = tenant.tol_d, tenant.tol_coh
    return {
        "per_min": rng.randint(3, 9),
        "accepted": {
            "D_hat": {"mean": round(d - rng.uniform(*margin), 3), "sd": round(rng.uniform(0.05, 0.1), 3)},
            "coh_star": {
                "mean": round(min(coh + rng.uniform(0.1, 0.16), 0.95), 3),
                "sd": round(rng.uniform(0.02, 0.04), 3),
            },
        },
        "escalated": {
            "D_hat": {"mean": round(d + rng.uniform(0.04, 0.15), 3), "sd": round(rng.uniform(0.03, 0.06), 3)},
            "coh_star": {"mean": round(coh - rng.uniform(0.01, 0.05), 3), "sd": 0.02},
        },
        "reasons": ["D_hat above tol_D", "coh_star below tol_coh"],
    }


@dataclass
class WorldDraft:
    rng: random.Random
    base: Version  # the version most tenants run
    versions: list[Version]
    flags: dict[str, dict[str, Any]]
    flag_changes: list[dict[str, Any]] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)

    def version(self, created_s: float, thresholds: dict[str, str], author: str = "policy-bot") -> Version:
        made = Version(created_s, dict(thresholds), author)
        self.versions.append(made)
        return made

    def name_versions(self, first: int) -> None:
        """``v<first>``, ``v<first+1>``, ... in creation order: a later version has a higher number."""
        for i, version in enumerate(sorted(self.versions, key=lambda v: -v.created_s)):
            version.name = f"v{first + i}"

    def registry_spec(self) -> list[dict[str, Any]]:
        out = []
        for v in sorted(self.versions, key=lambda v: -v.created_s):
            entry: dict[str, Any] = {
                "version": v.name,
                "created_at": offset(v.created_s),
                "author": v.author,
                "thresholds": dict(v.thresholds),
            }
            if v.overrides:
                entry["tenants"] = {t: dict(o) for t, o in v.overrides.items()}
            out.append(entry)
        return out
