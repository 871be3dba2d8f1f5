"""`/flk diagnose <tenant> [signatures|escalations|quota|policy|all]`: the runbook's §4 root-cause
analysis, every probe concurrent, each scenario ending in a verdict with the runbook's resolution
as next commands.

Without a scenario the caller passes triage's likely one; ``None`` or ``all`` runs the four.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from commands.context import Context
from commands.diagnose import escalations, policy, quota, signatures
from commands.diagnose.common import Inputs, Outcome
from commands.diagnose.offers import offer_ip_block
from commands.models import SCENARIO_LETTER, SCENARIO_TITLE, Probe, Report, Status, Verdict
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


def parse_args(args: list[str]) -> dict[str, Any]:
    if not args:
        raise UsageError("which tenant?")
    if len(args) > 2:
        raise UsageError("too many arguments")
    return {"tenant": tenant_arg(args[0]), "scenario": _scenario(args[1]) if len(args) == 2 else None}


VERB = register(
    Verb(
        "diagnose",
        "diagnose <tenant> [signatures|escalations|quota|policy|all]",
        "runbook §4: root cause (A signatures, B escalations, C quota, D policy) and what to do about it",
        parse_args,
        examples=("diagnose acme", "diagnose acme escalations", "diagnose acme all"),
    )
)


def selected(scenario: str | None) -> list[str]:
    """The scenarios to run: one, or all four for ``None`` / ``all``."""
    if scenario is None or scenario == "all":
        return list(SCENARIOS)
    return [_scenario(scenario)]


def probes(scenario: str | None) -> list[Probe]:
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
    fired = [outcomes[name].verdict for name in PRIORITY if outcomes[name].fired]
    if not fired:
        evidence = [
            f"{SCENARIO_TITLE[n]}: {', '.join([o.verdict.headline, *o.verdict.evidence])}" for n, o in outcomes.items()
        ]
        sure = all(o.known for o in outcomes.values())
        return Verdict(None, "nothing wrong found" if sure else "cannot tell", evidence), []
    first = fired[0]
    others = [f"also {SCENARIO_TITLE[v.scenario]}: {v.headline}" for v in fired[1:] if v.scenario]
    return Verdict(first.scenario, first.headline, first.evidence + others, first.next_steps), fired


async def run_diagnose(
    ctx: Context, tenant: str, scenario: str | None, on_finding: OnFinding | None = None
) -> DiagnosisReport:
    tenant_arg(tenant)
    names = selected(scenario)
    inputs = Inputs(ctx, tenant)
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
