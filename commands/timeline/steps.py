"""A runbook step's report as the timeline's ``VerdictReached``: the verdict, every finding, and
the SLIs the step measured (triage's ``sli.*`` probes, ``commands/triage/identify.sli``)."""

from __future__ import annotations

from typing import Literal

from commands.models import Report, Status
from commands.timeline.events import FindingRef, Sli, SliValue, VerdictReached

# The probes that measure an SLI, and the SLI they measure.
SLI_PROBES: dict[str, Sli] = {"sli.escalations": "escalations", "sli.signatures": "signature_errors"}
_STEPS: dict[str, Literal["triage", "diagnose", "isolation"]] = {
    "triage": "triage",
    "diagnose": "diagnose",
    "isolation triage": "isolation",
}


def measured_slis(report: Report) -> tuple[SliValue, ...]:
    """Each SLI a probe of the report read (a probe that could not read it measured nothing)."""
    found = []
    for key, sli in SLI_PROBES.items():
        finding = report.finding(key)
        if finding is not None and "ratio" in finding.data and "slo" in finding.data:
            found.append(SliValue(sli=sli, value=finding.data["ratio"], slo=finding.data["slo"]))
    return tuple(found)


def verdict_reached(report: Report) -> VerdictReached:
    verdict = report.verdict
    step = _STEPS.get(report.step, "triage")
    return VerdictReached(
        step=step,
        scenario=verdict.scenario if verdict else None,
        headline=verdict.headline if verdict else report.status.value,
        cause=verdict.cause if verdict else None,
        evidence=tuple(verdict.evidence) if verdict else (),
        confidence=verdict.confidence if verdict else None,
        runner_up=verdict.runner_up if verdict else None,
        inconclusive=verdict.inconclusive if verdict else (),
        overturns=verdict.overturns if verdict else None,
        slis=measured_slis(report),
        findings=tuple(
            FindingRef(key=f.key, title=f.title, status=f.status.value, summary=f.summary) for f in report.findings
        ),
        breach=report.status is Status.BREACH,
        tenant=None if step == "isolation" else report.tenant,
    )
