"""Triage and diagnose every tenant of generated worlds, one running sandbox per world.

A worker runs its seeds one after another and starts the next world's sandbox while it scores
the current one (a start is mostly Prometheus waiting for its first scrape). Each tenant gets
the bot's own sequence: ``run_triage``, then ``run_diagnose`` steered by that triage (what
``/flk diagnose <tenant>`` does: the scenarios triage left plausible), then ``run_diagnose(..., "all")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.accuracy_labels import CauseCall, ScenarioCall, alarm, among, diagnose_call, triage_call
from commands.config import RunbookConfig
from commands.context import Context
from commands.diagnose import Lead, run_diagnose
from commands.models import Report, Status, Verdict
from commands.tenants import TenantDirectory
from commands.triage import run_triage
from integrations.admin import AdminApi
from integrations.kube import Kube
from integrations.prometheus import Prometheus
from integrations.tenant_repo import TenantRepo
from integrations.worm import WormScanner
from sandbox.testing import sandbox_for
from sandbox.up import Sandbox
from sandbox.world.generate import GeneratedWorld, generate
from sandbox.world.truth import Truth

# Generous: accuracy is measured, not speed; a sandbox starting beside the probes slows them.
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Said:
    scenario: str | None
    headline: str
    call: ScenarioCall | CauseCall
    alarm: bool  # the verdict says something is wrong (``accuracy_labels.alarm``)
    asked: str = ""  # the scenario diagnose was asked for
    among: tuple[str, ...] = ()  # an inconclusive triage's scenarios
    overturns: str | None = None  # the triage scenario a diagnosis overturned


@dataclass(frozen=True)
class TenantResult:
    seed: int
    tenant: str
    truth: Truth
    triage: Said
    diagnose: Said  # with triage's scenario, as the bot does
    diagnose_all: Said
    errors: tuple[str, ...]  # findings that failed: "probe key: reason"


@dataclass(frozen=True)
class WorldResult:
    seed: int
    tenants: tuple[TenantResult, ...]
    start_s: float
    score_s: float


def bench_config() -> RunbookConfig:
    return RunbookConfig.model_validate({"timeouts": {"probe_s": PROBE_TIMEOUT_S}})


async def sandbox_context(sandbox: Sandbox, config: RunbookConfig) -> Context:
    """The Context the bot builds from these settings, without the bot's settings layer."""
    env, timeout = sandbox.env, config.timeouts.probe_s
    prometheus = Prometheus(env["FLK_PROMETHEUS_URL"], timeout)
    kube = await Kube.connect(env["FLK_KUBE_API_URL"], env["FLK_KUBE_TOKEN"], env["FLK_NAMESPACE"], timeout)
    return Context(
        config=config,
        prometheus=prometheus,
        kube=kube,
        admin=AdminApi(env["FLK_ADMIN_URL"], timeout),
        repo=TenantRepo(env["FLK_TENANT_REPO"], timeout),
        tenants=TenantDirectory(prometheus, config.metrics.ingest, config.metrics.tenant_label, 60),
        worm=WormScanner(env["FLK_WORM_ROOT"]),
    )


def _said(verdict: Verdict | None, call: ScenarioCall | CauseCall, asked: str = "") -> Said:
    return Said(
        verdict.scenario if verdict else None,
        verdict.headline if verdict else "",
        call,
        alarm(verdict),
        asked,
        among(verdict),
        verdict.overturns if verdict else None,
    )


def _errors(*reports: Report) -> tuple[str, ...]:
    return tuple(f"{f.key}: {f.summary}" for r in reports for f in r.findings if f.status is Status.ERROR)


async def score_tenant(ctx: Context, seed: int, tenant: str, truth: Truth) -> TenantResult:
    triage = await run_triage(ctx, tenant)
    # What `/flk diagnose <tenant>` does: steered by the triage just made (``Lead.plausible``).
    lead = Lead.of(triage.verdict, triage.finished_at) if triage.verdict else None
    default = await run_diagnose(ctx, tenant, None, lead=lead)
    asked = ",".join(sorted({f.key.split(".")[0] for f in default.findings}))
    every = await run_diagnose(ctx, tenant, "all")
    return TenantResult(
        seed,
        tenant,
        truth,
        _said(triage.verdict, triage_call(triage.verdict)),
        _said(default.verdict, diagnose_call(default.verdict), asked),
        _said(every.verdict, diagnose_call(every.verdict), "all"),
        _errors(triage, default, every),
    )


async def score_world(sandbox: Sandbox, world: GeneratedWorld, config: RunbookConfig) -> list[TenantResult]:
    ctx = await sandbox_context(sandbox, config)
    try:
        return [await score_tenant(ctx, world.seed, name, truth) for name, truth in world.truth.items()]
    finally:
        await ctx.close()


async def _started(stack: contextlib.AsyncExitStack, world: GeneratedWorld) -> tuple[Sandbox, float]:
    began = time.monotonic()
    sandbox = await stack.enter_async_context(sandbox_for(world.yaml_text))
    return sandbox, time.monotonic() - began


async def run_seeds(seeds: Sequence[int], config: RunbookConfig | None = None) -> list[WorldResult]:
    """Every seed's world scored on its own sandbox; the next one starts while this one is scored."""
    config = config or bench_config()
    results: list[WorldResult] = []
    stacks = [contextlib.AsyncExitStack() for _ in seeds]
    worlds = [generate(seed) for seed in seeds]
    pending = asyncio.create_task(_started(stacks[0], worlds[0])) if seeds else None
    try:
        for i, world in enumerate(worlds):
            assert pending is not None
            sandbox, start_s = await pending
            pending = asyncio.create_task(_started(stacks[i + 1], worlds[i + 1])) if i + 1 < len(worlds) else None
            try:
                began = time.monotonic()
                scored = await score_world(sandbox, world, config)
                results.append(WorldResult(world.seed, tuple(scored), start_s, time.monotonic() - began))
            finally:
                await stacks[i].aclose()
            print(
                f"seed {world.seed}: {len(scored)} tenants, start {start_s:.1f} s, scored in "
                f"{results[-1].score_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        for stack in stacks:
            await stack.aclose()
    return results


@dataclass(frozen=True)
class WorkerResult:
    worlds: list[WorldResult]
    cpu_s: float  # this process's CPU time and its finished children's (Prometheus, promtool, git...)


def run_worker(seeds: Sequence[int]) -> WorkerResult:
    """One process's share of the seeds (for a process pool: the sandbox runs in this process)."""
    worlds = asyncio.run(run_seeds(seeds))
    used = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return WorkerResult(worlds, sum(u.ru_utime + u.ru_stime for u in used))
