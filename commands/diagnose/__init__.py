"""`/flk diagnose <tenant> [signatures|escalations|quota|policy|all]`: the runbook's §4 root-cause
analysis, every probe concurrent, each scenario ending in a verdict with the runbook's resolution
as next commands.

Without a scenario, the scenarios the tenant's triage left plausible run (``Lead``): all four
when there is no triage, it was inconclusive or it is older than a few minutes. A diagnosis
whose verdict names another scenario than triage's says it overturns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from commands.context import Context
from commands.diagnose import escalations, policy, quota, signatures
from commands.diagnose.common import Inputs, Outcome
from commands.diagnose.offers import offer_ip_block
from commands.models import (
    SCENARIO_LETTER,
    SCENARIO_TITLE,
    Confidence,
    Probe,
    Report,
    Scenario,
    Status,
    Verdict,
)
from commands.registry import UsageError, Verb, register, tenant_arg
from commands.runner import OnFinding, ProbeSpec, run_probes

SCENARIOS: dict[str, ModuleType] = {
    "signatures": signatures,
    "escalations": escalations,
    "quota": quota,
    "policy": policy,
}
_ALIASES = {letter.lower(): name for name, letter in SCENARIO_LETTER.items()}
# When several scenarios fire, the headline follows triage's order of evidence.
PRIORITY = ("signatures", "quota", "policy", "escalations")


def _scenario(word: str) -> str:
    name = word.lower()
    name = _ALIASES.get(name, name)
    if name != "all" and name not in SCENARIOS:
        raise UsageError(f"unknown scenario `{word[:40]}`: expected {', '.join(SCENARIOS)} or all")
    return name


def _scenarios(word: str) -> str | tuple[str, ...]:
    """One scenario, ``all``, or several joined by commas (``quota,escalations``)."""
    names = tuple(dict.fromkeys(_scenario(part) for part in word.split(",") if part))
    if not names:
        raise UsageError("which scenario?")
    if "all" in names:
        return "all"
    return names[0] if len(names) == 1 else names


def parse_args(args: list[str]) -> dict[str, Any]:
    if not args:
        raise UsageError("which tenant?")
    if len(args) > 2:
        raise UsageError("too many arguments")
    return {"tenant": tenant_arg(args[0]), "scenario": _scenarios(args[1]) if len(args) == 2 else None}


VERB = register(
    Verb(
        "diagnose",
        "diagnose <tenant> [signatures|escalations|quota|policy|all]",
        "runbook §4: root cause (A signatures, B escalations, C quota, D policy) and what to do about it",
        parse_args,
        examples=("diagnose acme", "diagnose acme escalations", "diagnose acme all"),
    )
)


Selection = str | Sequence[str] | None


def selected(scenario: Selection) -> list[str]:
    """The scenarios to run: one, several, or all four for ``None`` / ``all``."""
    if scenario is None or scenario == "all":
        return list(SCENARIOS)
    if isinstance(scenario, str):
        return [_scenario(scenario)]
    return [name for name in SCENARIOS if name in {_scenario(s) for s in scenario}] or list(SCENARIOS)


@dataclass(frozen=True)
class Lead:
    """What the tenant's latest triage said, as a diagnosis without a scenario is steered by it."""

    scenario: Scenario | None
    at: datetime
    confidence: Confidence | None = None
    runner_up: Scenario | None = None
    inconclusive: tuple[Scenario, ...] = ()

    @classmethod
    def of(cls, verdict: Verdict, at: datetime) -> Lead:
        return cls(verdict.scenario, at, verdict.confidence, verdict.runner_up, verdict.inconclusive)

    def plausible(self, now: datetime, max_age_s: float) -> list[str]:
        """Triage's scenario alone when it was sure; with its runner-up at low confidence; all
        four when it was inconclusive, named none, or is too old to trust."""
        if self.scenario is None or len(self.inconclusive) >= 2 or (now - self.at).total_seconds() > max_age_s:
            return list(SCENARIOS)
        if self.confidence == "low" and self.runner_up:
            return selected((self.scenario, self.runner_up))
        return [self.scenario]


def probes(scenario: Selection) -> list[Probe]:
    return [Probe(key, title) for name in selected(scenario) for key, title, _ in SCENARIOS[name].PROBES]


@dataclass
class DiagnosisReport(Report):
    # One verdict per scenario run alone; for all four, one per scenario that fired.
    verdicts: list[Verdict] = field(default_factory=list)


def combine(outcomes: dict[str, Outcome]) -> tuple[Verdict, list[Verdict]]:
    """The report's verdict and the verdicts to show: one scenario's as it is; for several, the
    first that fired (in PRIORITY order) heads, the others are listed after it."""
    if len(outcomes) == 1:
        only = next(iter(outcomes.values()))
        return only.verdict, [only.verdict]
    fired = [outcomes[name].verdict for name in PRIORITY if name in outcomes and outcomes[name].fired]
    if not fired:
        evidence = [
            f"{SCENARIO_TITLE[n]}: {', '.join([o.verdict.headline, *o.verdict.evidence])}" for n, o in outcomes.items()
        ]
        sure = all(o.known for o in outcomes.values())
        return Verdict(None, "nothing wrong found" if sure else "cannot tell", evidence), []
    first = fired[0]
    others = [f"also {SCENARIO_TITLE[v.scenario]}: {v.headline}" for v in fired[1:] if v.scenario]
    runner_up = fired[1].scenario if len(fired) > 1 else None
    return replace(first, evidence=first.evidence + others, runner_up=runner_up), fired


def _overturn(verdict: Verdict, lead: Lead | None) -> Verdict:
    """Say so when the diagnosis names another scenario than the triage that steered it."""
    if lead is None or lead.scenario is None or verdict.scenario in (None, lead.scenario):
        return verdict
    assert verdict.scenario is not None
    line = (
        f"overturns triage's {SCENARIO_TITLE[lead.scenario]} ({lead.confidence or 'unrated'} confidence): "
        f"the evidence here points to {SCENARIO_TITLE[verdict.scenario]}"
    )
    return replace(verdict, evidence=[*verdict.evidence, line], overturns=lead.scenario)


def _cited(findings: list, outcomes: dict[str, Outcome], verdict: Verdict) -> None:
    """Evidence a verdict rests on is never shown as healthy: its OK findings become WARN."""
    cites = {key for o in outcomes.values() if o.fired and o.verdict.scenario == verdict.scenario for key in o.cites}
    for f in findings:
        if f.key in cites and f.status is Status.OK:
            f.status = Status.WARN


async def run_diagnose(
    ctx: Context,
    tenant: str,
    scenario: Selection,
    on_finding: OnFinding | None = None,
    *,
    lead: Lead | None = None,
) -> DiagnosisReport:
    tenant_arg(tenant)
    inputs = Inputs(ctx, tenant)
    if scenario is None and lead is not None:
        names = lead.plausible(inputs.now, ctx.config.diagnosis.triage_max_age_s)
    else:
        names = selected(scenario)
    specs = [
        ProbeSpec(Probe(key, title), (lambda fn=fn: fn(inputs)))  # type: ignore[misc]
        for name in names
        for key, title, fn in SCENARIOS[name].PROBES
    ]
    try:
        report = await run_probes("diagnose", tenant, specs, ctx.config.timeouts.probe_s, on_finding)
    finally:
        inputs.close()
    data = {f.key: f.data for f in report.findings if f.status is not Status.ERROR}
    now = datetime.now(UTC).timestamp()
    outcomes = {name: SCENARIOS[name].decide(data, ctx.config, tenant, now) for name in names}
    verdict, verdicts = combine(outcomes)
    _cited(report.findings, outcomes, verdict)
    verdict = _overturn(verdict, lead)
    offer_ip_block(tenant, [verdict, *verdicts], report.findings, ctx.config)
    return DiagnosisReport(
        step=report.step,
        tenant=tenant,
        findings=report.findings,
        started_at=report.started_at,
        finished_at=report.finished_at,
        verdict=verdict,
        verdicts=verdicts,
    )
