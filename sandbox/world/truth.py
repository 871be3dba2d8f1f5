"""What a generated world really has wrong with each tenant: the ground truth a diagnosis is
scored against. The runbook's scenarios (§4 A–D) and, within each, its list of causes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scenario = Literal["signatures", "escalations", "quota", "policy"]
Cause = Literal[
    "wrong_key",
    "rotation_not_synchronised",
    "clock_skew",
    "distribution_shift",
    "policy_too_strict",
    "upstream_corruption",
    "legitimate_burst",
    "retry_storm",
    "attack",
    "bad_thresholds",
    "feature_flag",
]

# The runbook's diagnosis lists, in its order.
CAUSES: dict[Scenario, tuple[Cause, ...]] = {
    "signatures": ("wrong_key", "rotation_not_synchronised", "clock_skew"),
    "escalations": ("distribution_shift", "policy_too_strict", "upstream_corruption"),
    "quota": ("legitimate_burst", "retry_storm", "attack"),
    "policy": ("bad_thresholds", "feature_flag"),
}
SCENARIO_OF: dict[Cause, Scenario] = {cause: scenario for scenario, causes in CAUSES.items() for cause in causes}
ALL_CAUSES: tuple[Cause, ...] = tuple(SCENARIO_OF)


@dataclass(frozen=True)
class Truth:
    """One tenant's truth. ``scenario``/``cause`` are None for a healthy tenant.

    ``magnitude`` is the breaching SLI over its SLO (for a healthy tenant: its worse SLI over
    its SLO, below 1); ``onset_s`` how long before the world's start the breach began;
    ``variant`` names the flavour of the cause (e.g. ``few sources`` for an attack);
    ``group`` is set when the tenant is one of several breaching from one shared cause
    (an isolation breach), e.g. ``region eu-west-1`` or ``policy v43``.
    """

    scenario: Scenario | None
    cause: Cause | None
    magnitude: float
    onset_s: float | None = None
    variant: str = ""
    group: str | None = None

    @property
    def healthy(self) -> bool:
        return self.cause is None


def healthy(magnitude: float) -> Truth:
    return Truth(None, None, magnitude)


def breach(cause: Cause, magnitude: float, onset_s: float, variant: str = "", group: str | None = None) -> Truth:
    return Truth(SCENARIO_OF[cause], cause, magnitude, onset_s, variant, group)
