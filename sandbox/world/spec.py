"""The world spec: fractal-lba in one YAML document.

Every time in a world is an offset from the moment the sandbox starts ("now"):
"-40m", "-24h", "-1d2h", "0". A series maps offsets to values and holds each value
until the next offset (a step function), so "escalations jump from 0.4% to 4.1% at
-40m" is written ``escalation_ratio: {"-24h": 0.004, "-40m": 0.041}``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

TENANT_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
_OFFSET = re.compile(r"^(?P<sign>[-+]?)(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_offset(value: object) -> timedelta:
    """'-40m' → timedelta(minutes=-40). Offsets are relative to the sandbox's start."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    if text in ("0", "now"):
        return timedelta(0)
    match = _OFFSET.match(text)
    if not match or not any(match.group(k) for k in "dhms"):
        raise ValueError(f"expected a time offset like '-40m', '-24h' or '-1d2h', got {text!r}")
    seconds = (
        int(match.group("d") or 0) * 86400
        + int(match.group("h") or 0) * 3600
        + int(match.group("m") or 0) * 60
        + int(match.group("s") or 0)
    )
    return timedelta(seconds=-seconds if match.group("sign") == "-" else seconds)


Offset = Annotated[timedelta, BeforeValidator(parse_offset)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Series(_Strict):
    """A step function of time: each value holds from its offset until the next one."""

    points: tuple[tuple[timedelta, float], ...]

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: object) -> object:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"points": ((timedelta(days=-3650), float(data)),)}
        if isinstance(data, dict) and "points" not in data:
            if not data:
                raise ValueError("expected at least one 'offset: value' pair")
            points = sorted((parse_offset(k), _number(v)) for k, v in data.items())
            return {"points": tuple(points)}
        return data

    def at(self, offset: timedelta) -> float:
        value = self.points[0][1]
        for start, v in self.points:
            if start <= offset:
                value = v
            else:
                break
        return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if value < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return float(value)


class Ratio(Series):
    @model_validator(mode="after")
    def _in_unit_interval(self) -> Ratio:
        for _, v in self.points:
            if v > 1:
                raise ValueError(f"a ratio must lie between 0 and 1, got {v}")
        return self


class Traffic(_Strict):
    """What the backend's metrics say about a tenant over time."""

    ingest_rps: Series
    escalation_ratio: Ratio
    signature_error_ratio: Ratio
    quota_exceeded_rps: Series = Series.model_validate(0)
    latency_p95_ms: Series = Series.model_validate(120)
    latency_p99_ms: Series = Series.model_validate(250)


class LogPattern(_Strict):
    """Backend log lines for one tenant: ``per_min`` lines from ``since`` to ``until``.

    ``timing: fixed`` spaces them evenly (a retry loop), ``poisson`` at random;
    ``jitter`` moves each fixed line by up to that share of the interval either way, as
    retry loops with jittered backoff do. ``skew_s`` makes rejected-signature lines carry a
    signature timestamp that far from the receive time (clock skew evidence).
    """

    message: str
    level: Literal["debug", "info", "warn", "error"] = "info"
    per_min: float = Field(gt=0, le=6000)
    since: Offset = timedelta(hours=-24)
    until: Offset = timedelta(0)
    timing: Literal["poisson", "fixed"] = "poisson"
    jitter: float = Field(default=0.0, ge=0, le=0.5)
    sources: tuple[str, ...] = ("10.0.0.10",)
    fields: dict[str, str] = Field(default_factory=dict)
    skew_s: float = 0.0

    @model_validator(mode="after")
    def _window(self) -> LogPattern:
        if self.since >= self.until:
            raise ValueError("'since' must be before 'until'")
        if self.jitter and self.timing != "fixed":
            raise ValueError("'jitter' applies to 'timing: fixed' only")
        return self


class Distribution(_Strict):
    mean: float
    sd: float = Field(ge=0)


class WormSpec(_Strict):
    """WORM audit records: ``per_min`` records sampled from the verify stream.

    The escalated share follows ``traffic.escalation_ratio``; values are drawn from the
    distributions of the period that the record's time falls in (``shift_at`` onward:
    the ``shifted`` distributions). ``malformed_share`` of escalations carry
    out-of-range values (upstream corruption), from ``malformed_since`` on when it is set.
    """

    per_min: float = Field(default=6, gt=0, le=600)
    accepted: dict[Literal["D_hat", "coh_star"], Distribution]
    escalated: dict[Literal["D_hat", "coh_star"], Distribution]
    shift_at: Offset | None = None
    shifted: dict[Literal["D_hat", "coh_star"], Distribution] | None = None
    malformed_share: float = Field(default=0.0, ge=0, le=1)
    malformed_since: Offset | None = None
    reasons: tuple[str, ...] = ("D_hat above tol_D",)


class KubeEvent(_Strict):
    object: Literal["secret", "tenant-configmap", "policy-configmap", "deployment"]
    reason: str
    message: str
    at: Offset
    type: Literal["Normal", "Warning"] = "Normal"
    count: int = Field(default=1, ge=1)


class Commit(_Strict):
    at: Offset
    author: str = "platform-bot <platform@fractal-lba.example>"
    message: str
    set: dict[str, str] = Field(default_factory=dict)


class Remedy(_Strict):
    """The mitigation that makes this tenant's breach recede (and only that one)."""

    action: Literal["degraded-mode", "quota", "rollback-policy", "key-window", "ip-block"]
    recovers_to: dict[Literal["escalation_ratio", "signature_error_ratio", "quota_exceeded_rps"], float]
    # ip-block: the source addresses ingress-nginx must deny (the tenant Ingress's denylist) to stop the attack.
    sources: tuple[str, ...] = ()


Scenario = Literal["signatures", "escalations", "quota", "policy", "none"]


class Tenant(_Strict):
    region: str = "eu-west-1"
    scenario: Scenario
    verdict: str = ""
    config: dict[str, str]
    policy: dict[str, str]
    signing_keys: dict[str, str]
    events: tuple[KubeEvent, ...] = ()
    traffic: Traffic
    logs: tuple[LogPattern, ...] = ()
    worm: WormSpec
    git_history: tuple[Commit, ...] = ()
    remedy: Remedy | None = None
    notify_channel: str | None = None

    @field_validator("config")
    @classmethod
    def _config_keys(cls, v: dict[str, str]) -> dict[str, str]:
        required = {"strict_mode", "token_rate", "burst_rate", "daily_quota", "policy_version"}
        missing = sorted(required - v.keys())
        if missing:
            raise ValueError(f"missing keys {', '.join(missing)}")
        return v

    @field_validator("policy")
    @classmethod
    def _policy_keys(cls, v: dict[str, str]) -> dict[str, str]:
        missing = sorted({"tol_D", "tol_coh"} - v.keys())
        if missing:
            raise ValueError(f"missing keys {', '.join(missing)}")
        return v


class PolicyVersion(_Strict):
    version: str = Field(pattern=r"^v\d+$")
    created_at: Offset
    author: str = "policy-bot"
    thresholds: dict[str, str]
    tenants: dict[str, dict[str, str]] = Field(default_factory=dict)


class RbacDeny(_Strict):
    verb: Literal["get", "list", "watch", "patch", "update", "create", "delete"]
    resource: str
    name: str | None = None


FlagValue = bool | int | float | str


class FlagChange(_Strict):
    """A feature flag set at ``at``; the admin API lists these so that a flip can be dated."""

    scope: str  # "global" or a tenant id
    flag: str
    value: FlagValue
    previous: FlagValue | None = None  # None: the flag was not set before
    at: Offset
    author: str = "flag-bot"


class Backend(_Strict):
    pods: int = Field(default=3, ge=1, le=20)
    deployment: str = "backend"
    app_label: str = "backend"
    # Healthy background traffic logged by every tenant (lines per minute, per tenant).
    baseline_log_per_min: float = Field(default=6, ge=0, le=600)


class World(_Strict):
    namespace: str = Field(default="fractal-lba", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    seed: int = 1
    backend: Backend = Backend()
    policy_registry: tuple[PolicyVersion, ...]
    feature_flags: dict[str, dict[str, object]] = Field(default_factory=dict)
    flag_changes: tuple[FlagChange, ...] = ()
    rbac_deny: tuple[RbacDeny, ...] = ()
    tenants: dict[str, Tenant]

    @field_validator("tenants")
    @classmethod
    def _tenant_ids(cls, v: dict[str, Tenant]) -> dict[str, Tenant]:
        if not v:
            raise ValueError("a world needs at least one tenant")
        for tid in v:
            if not re.match(TENANT_ID_PATTERN, tid):
                raise ValueError(f"tenant id {tid!r} must match {TENANT_ID_PATTERN}")
        return v

    @model_validator(mode="after")
    def _policy_versions_exist(self) -> World:
        known = {p.version for p in self.policy_registry}
        for tid, tenant in self.tenants.items():
            version = tenant.config["policy_version"]
            if version not in known:
                raise ValueError(f"tenants.{tid}.config.policy_version: {version!r} is not in policy_registry")
        return self

    @model_validator(mode="after")
    def _flag_changes_end_in_the_flags(self) -> World:
        newest: dict[tuple[str, str], FlagChange] = {}
        for i, change in enumerate(self.flag_changes):
            if change.scope != "global" and change.scope not in self.tenants:
                raise ValueError(f"flag_changes.{i}.scope: {change.scope!r} is neither 'global' nor a tenant")
            key = (change.scope, change.flag)
            if key not in newest or change.at >= newest[key].at:
                newest[key] = change
        for (scope, flag), change in newest.items():
            current = self.feature_flags.get(scope, {}).get(flag)
            if current != change.value:
                raise ValueError(
                    f"flag_changes: the newest change of {scope}.{flag} sets {change.value!r}, "
                    f"but feature_flags holds {current!r}"
                )
        return self

    def tenants_in(self, scenario: Scenario) -> list[str]:
        return [tid for tid, t in self.tenants.items() if t.scenario == scenario]
