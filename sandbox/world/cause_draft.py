"""What a cause builder (``sandbox/world/causes.py``) works on: the tenant's draft with its
breach (``Breach``), the parts an isolation breach's tenants share (``Shared``), and the names
and limits the builders draw from."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sandbox.world.draft import (
    SLO_ESCALATIONS,
    SLO_SIGNATURES,
    Tenant,
    Version,
    WorldDraft,
    at,
    step,
)
from sandbox.world.truth import Cause, breach

PEOPLE = ("jdoe", "mlopez", "akim", "rpatel", "sven", "olu", "tchen", "ibarra")
FLAGS = ("strict_schema", "fast_path_v2", "coh_star_v2", "dhat_estimator_v3", "batch_verify", "legacy_sig_mode")
VERDICTS: dict[Cause, str] = {
    "wrong_key": "key mismatch",
    "rotation_not_synchronised": "rotation not synchronised",
    "clock_skew": "clock skew",
    "distribution_shift": "data distribution shifted",
    "policy_too_strict": "policy too strict",
    "upstream_corruption": "upstream corruption",
    "legitimate_burst": "legitimate burst",
    "retry_storm": "retry storm",
    "attack": "attack",
    "bad_thresholds": "bad policy version",
    "feature_flag": "feature flag misconfigured",
}
# Quota rejections are logged one line each (their timing is the evidence): at most this many a second.
MAX_QUOTA_RPS = 4.0


@dataclass
class Shared:
    """What the tenants of one isolation breach share."""

    label: str  # e.g. "region eu-west-1"; a policy group's is completed once versions have names
    skew_s: float = 0.0
    malformed_share: float = 0.0
    version: Version | None = None


@dataclass
class Breach:
    world: WorldDraft
    tenant: Tenant
    magnitude: float
    onset_s: float
    shared: Shared | None = None
    variant: list[str] = field(default_factory=list)

    @property
    def rng(self) -> random.Random:
        return self.world.rng

    def person(self) -> str:
        name = self.rng.choice(PEOPLE)
        return f"{name} <{name}@fractal-lba.example>"

    def sli(self, which: str) -> float:
        """The breaching SLI's series steps up at the onset; returns its healthy value before."""
        t = self.tenant.traffic
        series, slo = (t.signatures, SLO_SIGNATURES) if which == "signatures" else (t.escalations, SLO_ESCALATIONS)
        before = at(series, self.onset_s + 1)
        step(series, self.onset_s, self.magnitude * slo)
        return round(before, 6)

    def escalation_lines(self, reason: str) -> None:
        """``pcs escalated`` lines from the onset, most of the time (not every backend logs them)."""
        if self.rng.random() < 0.8:
            t = self.tenant
            per_min = t.ingest_at(0) * self.magnitude * SLO_ESCALATIONS * 60
            t.add_log("pcs escalated", per_min, self.onset_s, sources=t.agents, fields={"reason": reason})

    def finish(self, cause: Cause, remedy: dict[str, Any] | None = None) -> None:
        self.tenant.truth = breach(
            cause,
            round(self.magnitude, 3),
            round(self.onset_s),
            ", ".join(self.variant),
            self.shared and self.shared.label,
        )
        self.tenant.verdict = VERDICTS[cause]
        self.tenant.remedy = remedy


def rescale_ingest(tenant: Tenant, level: float) -> None:
    """The same day's shape of traffic around a new current level."""
    factor = level / tenant.ingest_at(0)
    tenant.traffic.ingest = {ago: round(v * factor, 3) for ago, v in tenant.traffic.ingest.items()}


def rejection_log(b: Breach, per_min: float, sources: list[str], fields: dict[str, str], **extra: Any) -> None:
    b.tenant.add_log(
        "signature verification failed", per_min, b.onset_s, level="warn", sources=sources, fields=fields, **extra
    )
