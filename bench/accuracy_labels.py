"""What triage and diagnose said, as labels comparable with a generated world's truth.

Both read typed fields of the verdict, never its text: triage's ``scenario`` and ``inconclusive``
pair, diagnose's ``cause``. A verdict that names a scenario with a confidence said something is
wrong (an alarm); a diagnosis that fired without a cause ("cause not determined") and a verdict
that could not read its evidence are inconclusive.
"""

from __future__ import annotations

from typing import Literal, get_args

from commands.models import Verdict
from sandbox.world.truth import Cause, Scenario

Healthy = Literal["healthy"]
Inconclusive = Literal["inconclusive"]
ScenarioCall = Scenario | Healthy | Inconclusive
CauseCall = Cause | Healthy | Inconclusive
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)


def alarm(verdict: Verdict | None) -> bool:
    """Whether the verdict says something is wrong: a scenario named with a confidence (a
    scenario that found nothing, or could not tell, carries none)."""
    return verdict is not None and verdict.scenario is not None and verdict.confidence is not None


def among(verdict: Verdict | None) -> tuple[str, ...]:
    """The scenarios an inconclusive triage could not tell apart."""
    return tuple(verdict.inconclusive) if verdict is not None and len(verdict.inconclusive) >= 2 else ()


def triage_call(verdict: Verdict | None) -> ScenarioCall:
    if verdict is None or among(verdict) or (verdict.scenario is None and verdict.confidence is None):
        return "inconclusive"
    return verdict.scenario or "healthy"


def diagnose_call(verdict: Verdict | None) -> CauseCall:
    """The cause a diagnosis named, from its typed ``cause``."""
    if verdict is None:
        return "inconclusive"
    if verdict.cause is not None:
        return verdict.cause
    if alarm(verdict) or verdict.headline == "cannot tell":
        return "inconclusive"
    return "healthy"
