"""A backend that fails costs only its own findings: each ends `error` (or `unknown`) with a
short reason and the rest of the diagnosis completes. Every fault is undone before the test
ends, since the sandbox is shared."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.context import Context
from commands.diagnose import DiagnosisReport, run_diagnose
from commands.models import Status
from integrations.prometheus import Prometheus
from integrations.worm import WormScanner
from sandbox.prom.process import free_port
from sandbox.up import Sandbox

ADMIN_PROBES = {"quota.config", "policy.flags"}


@pytest.fixture(scope="module")
async def ctx(sandbox: Sandbox) -> AsyncIterator[Context]:
    settings, config = load_settings(sandbox.env)
    context = await build_context(settings, config)
    try:
        yield context
    finally:
        await context.close()


def only_errors(report: DiagnosisReport, expected: set[str]) -> dict[str, str]:
    errors = {f.key: f.summary for f in report.findings if f.status is Status.ERROR}
    assert set(errors) == expected, errors
    return errors


def first_tenant(sandbox: Sandbox, scenario: str) -> str:
    tenants = sandbox.live.world.tenants_in(scenario)  # type: ignore[arg-type]
    assert tenants, f"the world has no {scenario} tenant"
    return tenants[0]


@pytest.mark.parametrize(("fault", "reason"), [("500", "answered HTTP 500"), ("garbage", "not JSON")])
async def test_admin_api_down_or_garbage(sandbox: Sandbox, ctx: Context, fault: str, reason: str) -> None:
    tenant = first_tenant(sandbox, "quota")
    sandbox.backend.faults["admin"] = fault
    try:
        report = await run_diagnose(ctx, tenant, "all")
    finally:
        sandbox.backend.faults["admin"] = None
    errors = only_errors(report, ADMIN_PROBES)
    assert all(summary.startswith("admin API: ") and reason in summary for summary in errors.values())
    assert report.verdict is not None
    # The request pattern comes from the logs and Prometheus, so the verdict still stands.
    assert report.verdict.headline == sandbox.live.world.tenants[tenant].verdict


async def test_secret_not_readable_under_rbac(sandbox: Sandbox, ctx: Context) -> None:
    tenant = first_tenant(sandbox, "signatures")
    sandbox.kube.rbac.deny("get", "secrets")
    try:
        report = await run_diagnose(ctx, tenant, "signatures")
    finally:
        sandbox.kube.rbac.allow("get", "secrets")
    errors = only_errors(report, {"signatures.keys"})
    assert "forbidden" in errors["signatures.keys"] and "RBAC" in errors["signatures.keys"]
    assert report.verdict is not None
    assert report.verdict.headline == sandbox.live.world.tenants[tenant].verdict


async def test_backend_logs_not_readable_under_rbac(sandbox: Sandbox, ctx: Context) -> None:
    tenant = first_tenant(sandbox, "quota")
    sandbox.kube.rbac.deny("get", "pods/log")
    try:
        report = await run_diagnose(ctx, tenant, "all")
    finally:
        sandbox.kube.rbac.allow("get", "pods/log")
    errors = only_errors(report, {"signatures.rejections", "quota.logs", "quota.pattern"})
    assert all("forbidden" in summary and "pods/log" in summary for summary in errors.values())
    # The active policy version falls back to the tenant's configmap.
    active = report.finding("policy.active")
    assert active is not None and "from the configmap" in active.summary
    assert report.verdict is not None
    assert (report.verdict.scenario, report.verdict.headline) == ("quota", "cause not determined")


async def test_worm_root_missing(sandbox: Sandbox, ctx: Context, tmp_path: Path) -> None:
    tenant = first_tenant(sandbox, "escalations")
    missing = dataclasses.replace(ctx, worm=WormScanner(tmp_path / "no-such-root"))
    report = await run_diagnose(missing, tenant, "escalations")
    only_errors(report, set())
    sample = report.finding("escalations.sample")
    assert sample is not None and sample.status is Status.UNKNOWN and "WORM root missing" in sample.summary
    assert report.verdict is not None
    assert report.verdict.headline == "cause not determined"
    assert report.verdict.next_steps == [f"export {tenant} escalations"]


async def test_worm_not_configured(sandbox: Sandbox, ctx: Context) -> None:
    tenant = first_tenant(sandbox, "escalations")
    report = await run_diagnose(dataclasses.replace(ctx, worm=None), tenant, "escalations")
    errors = only_errors(report, {"escalations.sample", "escalations.distribution", "escalations.proposal"})
    assert all("FLK_WORM_ROOT" in summary for summary in errors.values())
    assert report.finding("escalations.ratio").status is Status.BREACH  # type: ignore[union-attr]


async def test_prometheus_down(sandbox: Sandbox, ctx: Context) -> None:
    tenant = first_tenant(sandbox, "signatures")
    dead = dataclasses.replace(ctx, prometheus=Prometheus(f"http://127.0.0.1:{free_port()}", 2.0))
    report = await run_diagnose(dead, tenant, "all")
    errors = only_errors(report, {"signatures.ratio", "escalations.ratio", "quota.hits", "policy.timing"})
    assert all(summary.startswith("prometheus: cannot connect") for summary in errors.values()), errors
    # Without the SLIs nothing can be ruled out: not "nothing wrong".
    assert report.verdict is not None
    assert (report.verdict.scenario, report.verdict.headline) == (None, "cannot tell")
    # The WORM part falls back to the last hour when the breach's start is unknown.
    distribution = report.finding("escalations.distribution")
    assert distribution is not None and distribution.data["window"] == "in the last hour"
