"""`run_diagnose` against running worlds: every scenario tenant gets the verdict its world spec
intends, with the spec's own evidence and remedy; the healthy tenant gets nothing wrong.

Everything expected is read from the world spec, so the default world and the second one
(other names, numbers and times) are checked by the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.context import Context
from commands.diagnose import DiagnosisReport, probes, run_diagnose
from commands.models import Status
from sandbox.up import Sandbox
from sandbox.world.spec import World

BAD = (Status.BREACH, Status.WARN, Status.ERROR)


@dataclass
class Diagnosed:
    world: World
    ctx: Context
    # tenant -> the diagnosis without a scenario (all four)
    reports: dict[str, DiagnosisReport]


@contextlib.asynccontextmanager
async def diagnose_world(sandbox: Sandbox) -> AsyncIterator[Diagnosed]:
    """One Context per world, and every tenant diagnosed once (all four scenarios), concurrently."""
    settings, config = load_settings(sandbox.env)
    ctx = await build_context(settings, config)
    try:
        tenants = list(sandbox.live.world.tenants)
        reports = await asyncio.gather(*(run_diagnose(ctx, t, None) for t in tenants))
        yield Diagnosed(sandbox.live.world, ctx, dict(zip(tenants, reports, strict=True)))
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
async def default_world(sandbox: Sandbox) -> AsyncIterator[Diagnosed]:
    async with diagnose_world(sandbox) as diagnosed:
        yield diagnosed


@pytest.fixture(scope="module")
async def second_world(second_sandbox: Sandbox) -> AsyncIterator[Diagnosed]:
    async with diagnose_world(second_sandbox) as diagnosed:
        yield diagnosed


@pytest.fixture(params=["default", "second"])
def diagnosed(request: pytest.FixtureRequest) -> Diagnosed:
    return request.getfixturevalue(f"{request.param}_world")


def evidence_text(report: DiagnosisReport) -> str:
    assert report.verdict is not None
    return "\n".join(report.verdict.evidence)


def check_scenario_evidence(world: World, tenant: str, report: DiagnosisReport) -> None:
    """The facts of the spec that made the scenario are named in the verdict's evidence."""
    spec = world.tenants[tenant]
    text = evidence_text(report)
    if spec.scenario == "signatures":
        for pattern in spec.logs:
            if "key_id" in pattern.fields:
                assert f"`{pattern.fields['key_id']}`" in text
        for event in spec.events:
            if event.object == "secret":
                assert event.message in text
    elif spec.scenario == "quota":
        for pattern in spec.logs:
            for source in pattern.sources:
                assert source in text
    elif spec.scenario == "policy":
        versions = sorted(world.policy_registry, key=lambda p: p.created_at)
        active = next(i for i, p in enumerate(versions) if p.version == spec.config["policy_version"])
        previous = versions[active - 1].version
        assert f"mitigate {tenant} rollback-policy {previous}" in report.verdict.next_steps
        before = {**versions[active - 1].thresholds, **versions[active - 1].tenants.get(tenant, {})}
        for key, value in versions[active].tenants[tenant].items():
            assert f"{key}: {before[key]} → {value}" in text
    elif spec.scenario == "escalations":
        assert "for the §7 policy review: tol_D" in text
        assert f"export {tenant} escalations" in report.verdict.next_steps


def test_each_scenario_tenant_gets_its_verdict(diagnosed: Diagnosed) -> None:
    for tenant, spec in diagnosed.world.tenants.items():
        if spec.scenario == "none":
            continue
        report = diagnosed.reports[tenant]
        assert report.verdict is not None
        assert (report.verdict.scenario, report.verdict.headline) == (spec.scenario, spec.verdict), tenant
        assert report.verdicts[0] is not None and report.verdicts[0].headline == spec.verdict
        assert spec.remedy is not None
        assert any(step.startswith(f"mitigate {tenant} {spec.remedy.action}") for step in report.verdict.next_steps)
        errors = [f"{f.key}: {f.summary}" for f in report.findings if f.status is Status.ERROR]
        assert not errors, (tenant, errors)
        check_scenario_evidence(diagnosed.world, tenant, report)


def test_the_healthy_tenant_has_nothing_wrong(diagnosed: Diagnosed) -> None:
    healthy = diagnosed.world.tenants_in("none")
    assert healthy
    for tenant in healthy:
        report = diagnosed.reports[tenant]
        assert report.verdict is not None
        assert report.verdict.scenario is None
        assert report.verdict.headline == "nothing wrong found"
        assert report.verdicts == []
        assert [f.key for f in report.findings if f.status in BAD] == []
        assert [f.key for f in report.findings] == [p.key for p in probes(None)]


async def test_one_scenario_alone_gives_the_same_verdict(diagnosed: Diagnosed) -> None:
    scenario_tenants = [(t, s) for t, s in diagnosed.world.tenants.items() if s.scenario != "none"]
    reports = await asyncio.gather(*(run_diagnose(diagnosed.ctx, t, s.scenario) for t, s in scenario_tenants))
    for (tenant, spec), report in zip(scenario_tenants, reports, strict=True):
        assert report.verdict is not None
        assert report.verdict.headline == spec.verdict, tenant
        assert report.verdicts == [report.verdict]
        assert {f.key.split(".")[0] for f in report.findings} == {spec.scenario}


async def test_the_healthy_tenant_alone_per_scenario_fires_nothing(diagnosed: Diagnosed) -> None:
    tenant = diagnosed.world.tenants_in("none")[0]
    headlines = {}
    for scenario in ("signatures", "escalations", "quota", "policy"):
        report = await run_diagnose(diagnosed.ctx, tenant, scenario)
        assert report.verdict is not None
        headlines[scenario] = report.verdict.headline
    assert headlines == {
        "signatures": "no signature problem",
        "escalations": "escalations within SLO",
        "quota": "no quota problem",
        "policy": "not policy",
    }


def test_findings_carry_chart_series_and_markers(diagnosed: Diagnosed) -> None:
    for tenant, spec in diagnosed.world.tenants.items():
        report = diagnosed.reports[tenant]
        trend = report.finding("escalations.ratio")
        assert trend is not None and len(trend.series["escalations"]) > 600  # 24 h at a 2 min step
        rotations = report.finding("signatures.rotations")
        assert rotations is not None
        secret_events = [e for e in spec.events if e.object == "secret"]
        assert len(rotations.data["markers"]) == len(secret_events)
