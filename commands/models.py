"""The models that cross layers: a Finding is one observation, a Report one step's result.

They are plain data, Slack-free: `bot/slack/render.py` turns them into Block Kit and
`bot/terminal/report.py` into a terminal report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Scenario = Literal["signatures", "escalations", "quota", "policy"]
# The runbook's sub-causes, three per scenario (two for D); a diagnosis names one when it can.
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
# How sure a verdict is; ``Verdict.rule`` says which rule set it.
Confidence = Literal["high", "medium", "low"]

SCENARIO_LETTER: dict[str, str] = {"signatures": "A", "escalations": "B", "quota": "C", "policy": "D"}
SCENARIO_TITLE: dict[str, str] = {
    "signatures": "A · signature failures",
    "escalations": "B · escalation spike (data quality)",
    "quota": "C · quota exceeded (rate limit)",
    "policy": "D · per-tenant policy misconfiguration",
}


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    BREACH = "breach"
    ERROR = "error"
    UNKNOWN = "unknown"


# Worst first: a report's overall status is the worst of its findings.
SEVERITY = [Status.BREACH, Status.ERROR, Status.WARN, Status.UNKNOWN, Status.OK]


@dataclass
class Finding:
    key: str
    title: str
    status: Status
    summary: str
    facts: dict[str, str] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    # name -> [(unix time, value)], for charts
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)
    # Machine-readable values that the verdict and later steps use.
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0

    @classmethod
    def error(cls, key: str, title: str, reason: str, system: str = "unknown") -> Finding:
        # ``system`` (the BackendError's, "timeout", "internal") lets the bot count failures by system.
        return cls(key=key, title=title, status=Status.ERROR, summary=reason, data={"system": system})


@dataclass
class Verdict:
    scenario: Scenario | None
    headline: str
    evidence: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    cause: Cause | None = None
    confidence: Confidence | None = None
    rule: str = ""  # the rule that set the confidence, said with it
    runner_up: Scenario | None = None
    # The scenarios the evidence could not tell apart (two or more: the verdict is inconclusive).
    inconclusive: tuple[Scenario, ...] = ()
    # A diagnosis naming another scenario than the triage that steered it: triage's scenario.
    overturns: Scenario | None = None


@dataclass
class Probe:
    """A named unit of work in a step, shown as one line of the progress checklist."""

    key: str
    title: str


@dataclass(frozen=True)
class PastChange:
    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class PastMitigation:
    plan_id: str
    action: str
    changes: tuple[PastChange, ...]
    # The last SLO check after it: True passed, False failed, None: none ran.
    checks_passed: bool | None
    undone: bool


@dataclass(frozen=True)
class PastIncident:
    id: int
    opened_at: datetime
    resolved_at: datetime | None
    scenario: str | None  # the cause found: the latest diagnosis, else the latest triage
    cause: str | None
    mitigations: tuple[PastMitigation, ...]


@dataclass(frozen=True)
class Recurrence:
    """The same cause as an earlier incident; ``fix``: the mitigation whose checks passed then."""

    incident: PastIncident
    fix: PastMitigation | None


@dataclass(frozen=True)
class History:
    """The tenant's earlier incidents (newest first) over the last ``days``, from the store."""

    days: int
    incidents: tuple[PastIncident, ...] = ()
    recurrence: Recurrence | None = None
    error: str | None = None  # the store could not be read


@dataclass
class Report:
    step: str
    tenant: str
    findings: list[Finding]
    started_at: datetime
    finished_at: datetime
    verdict: Verdict | None = None
    # Earlier incidents of the tenant (triage and diagnose), added from the store after the probes.
    history: History | None = None

    @property
    def wall_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000

    def finding(self, key: str) -> Finding | None:
        return next((f for f in self.findings if f.key == key), None)

    @property
    def status(self) -> Status:
        present = {f.status for f in self.findings}
        return next((s for s in SEVERITY if s in present), Status.UNKNOWN)
