"""What triage and diagnose said, as labels comparable with a generated world's truth.

Triage's verdict carries a typed scenario. Diagnose's verdict does not carry a typed cause: the
cause is only in its ``headline`` text (e.g. "retry storm"), so ``CAUSE_OF_HEADLINE`` maps each
(scenario, headline) it can produce to a cause, explicitly. Scenario D has one headline, "bad
policy version", whatever the evidence (a threshold diff, a flag): it maps to ``bad_thresholds``,
and ``feature_flag`` is never said. A headline missing here is labelled ``unmapped`` (and a test
fails), so a new verdict cannot be scored as a silent miss.
"""

from __future__ import annotations

from typing import Literal, get_args

from commands.models import Verdict
from sandbox.world.truth import Cause, Scenario

Healthy = Literal["healthy"]
Inconclusive = Literal["inconclusive"]
ScenarioCall = Scenario | Healthy | Inconclusive
CauseCall = Cause | Healthy | Inconclusive | Literal["unmapped"]

CAUSE_OF_HEADLINE: dict[tuple[Scenario, str], Cause | Inconclusive] = {
    ("signatures", "key mismatch"): "wrong_key",
    ("signatures", "rotation not synchronised"): "rotation_not_synchronised",
    ("signatures", "clock skew"): "clock_skew",
    ("escalations", "data distribution shifted"): "distribution_shift",
    ("escalations", "policy too strict"): "policy_too_strict",
    ("escalations", "upstream corruption"): "upstream_corruption",
    ("escalations", "cause not determined"): "inconclusive",
    ("quota", "legitimate burst"): "legitimate_burst",
    ("quota", "retry storm"): "retry_storm",
    ("quota", "possible attack"): "attack",
    ("quota", "cause not determined"): "inconclusive",
    ("policy", "bad policy version"): "bad_thresholds",
}
# A scenario diagnosed alone that found nothing, and the four together that found nothing.
QUIET_HEADLINES: dict[Scenario | None, str] = {
    "signatures": "no signature problem",
    "escalations": "escalations within SLO",
    "quota": "no quota problem",
    "policy": "not policy",
    None: "nothing wrong found",
}
CANNOT_TELL = "cannot tell"
TRIAGE_CANNOT_TELL = "Cannot tell"
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)


def triage_call(verdict: Verdict | None) -> ScenarioCall:
    if verdict is None or verdict.headline.startswith(TRIAGE_CANNOT_TELL):
        return "inconclusive"
    return verdict.scenario or "healthy"


def alarm(verdict: Verdict | None) -> bool:
    """Whether the verdict says something is wrong: a scenario named (with a cause or not), not
    "nothing found" and not "cannot tell" (triage's "Cannot tell" names no scenario)."""
    if verdict is None or verdict.scenario is None:
        return False
    return verdict.headline not in (CANNOT_TELL, QUIET_HEADLINES[verdict.scenario])


def diagnose_call(verdict: Verdict | None) -> CauseCall:
    """The cause a diagnosis named: its scenario and headline looked up in ``CAUSE_OF_HEADLINE``."""
    if verdict is None or verdict.headline == CANNOT_TELL:
        return "inconclusive"
    if verdict.headline == QUIET_HEADLINES.get(verdict.scenario):
        return "healthy"
    if verdict.scenario is None:
        return "unmapped"
    return CAUSE_OF_HEADLINE.get((verdict.scenario, verdict.headline), "unmapped")
