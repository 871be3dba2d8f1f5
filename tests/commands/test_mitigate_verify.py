"""The SLO check run after a mitigation (runbook §6), against the running worlds: breaching
tenants are `breach`, the others `ok`, with the numbers Prometheus computes from the world;
no samples is `unknown`, Prometheus down is `error`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.context import Context
from commands.models import Status
from commands.registry import UsageError
from commands.verify import check_slo
from integrations.prometheus import Prometheus
from sandbox.up import Sandbox

ESCALATED, SIGNATURES = "flk_escalated_by_tenant", "flk_signature_errors_by_tenant"


async def _context(sandbox: Sandbox) -> AsyncIterator[tuple[Sandbox, Context]]:
    settings, config = load_settings(sandbox.env)
    ctx = await build_context(settings, config)
    try:
        yield sandbox, ctx
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
async def default_world(sandbox: Sandbox) -> AsyncIterator[tuple[Sandbox, Context]]:
    async for pair in _context(sandbox):
        yield pair


@pytest.fixture(scope="module")
async def second_world(second_sandbox: Sandbox) -> AsyncIterator[tuple[Sandbox, Context]]:
    async for pair in _context(second_sandbox):
        yield pair


@pytest.fixture(params=["default", "second"])
def running(request: pytest.FixtureRequest) -> tuple[Sandbox, Context]:
    return request.getfixturevalue(f"{request.param}_world")


async def test_every_tenant_against_its_slo(running: tuple[Sandbox, Context]) -> None:
    sandbox, ctx = running
    slo = ctx.config.slo
    for tenant in sandbox.live.world.tenants:
        finding = await check_slo(ctx, tenant)
        now = time.time()
        esc = sandbox.live.ratio(tenant, ESCALATED, now)
        err = sandbox.live.ratio(tenant, SIGNATURES, now)
        expected = Status.BREACH if esc > slo.escalation_ratio or err > slo.signature_error_ratio else Status.OK
        assert finding.status is expected, (tenant, finding.summary)
        assert finding.data["escalation_ratio"] == pytest.approx(esc, rel=0.05)
        assert finding.data["signature_error_ratio"] == pytest.approx(err, rel=0.05)
        ingest = sandbox.live.mean_rate(tenant, "flk_ingest_total_by_tenant", now)
        assert finding.data["escalations_per_s"] == pytest.approx(esc * ingest, rel=0.05)
        assert finding.data["window"] == slo.window
        if expected is Status.BREACH:
            assert finding.summary.startswith(f"`{tenant}` still breaches:")
        else:
            assert finding.summary.startswith(f"`{tenant}` is within its SLO")
        assert set(finding.facts) == {
            f"escalations ({slo.window})",
            f"signature errors ({slo.window})",
            f"rate(escalated[{slo.window}])",
        }


async def test_a_shorter_window_and_bad_windows(running: tuple[Sandbox, Context]) -> None:
    sandbox, ctx = running
    tenant = next(iter(sandbox.live.world.tenants))
    finding = await check_slo(ctx, tenant, window="1m")
    assert finding.data["window"] == "1m" and finding.status in (Status.OK, Status.BREACH)
    for window in ("5", "1m] or vector(1", "m"):
        with pytest.raises(UsageError):
            await check_slo(ctx, tenant, window=window)


async def test_no_samples_is_unknown(running: tuple[Sandbox, Context]) -> None:
    _, ctx = running
    finding = await check_slo(ctx, "no-such-tenant")
    assert finding.status is Status.UNKNOWN and "cannot tell" in finding.summary


async def test_prometheus_down_is_an_error_finding(running: tuple[Sandbox, Context]) -> None:
    _, ctx = running
    down = Prometheus("http://127.0.0.1:9/", 1.0)
    try:
        finding = await check_slo(Context(ctx.config, down, ctx.kube, ctx.admin, None, ctx.tenants), "t-1")
    finally:
        down.close()
    assert finding.status is Status.ERROR and finding.summary.startswith("prometheus:")
