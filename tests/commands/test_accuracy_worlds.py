"""Triage and diagnose on worlds nobody tuned for: a hand-written one (its own names, numbers
and sub-causes) and a few generated seeds, checked against what each world really has wrong.

The issue's case: a quota tenant rejecting 5% of its ingest, from a dozen clients at random,
from the minute its escalations rose, is triaged as C (or "B or C") and diagnosed as a
legitimate burst, not "policy too strict".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import yaml

from bench.accuracy_labels import diagnose_call, triage_call
from bench.accuracy_run import bench_config, sandbox_context
from commands.context import Context
from commands.diagnose import DiagnosisReport, Lead, run_diagnose
from commands.models import Report, Status
from commands.triage import run_triage
from sandbox.world.generate import generate
from tests.conftest import StartSandbox

CLIENTS = ", ".join(f"192.168.{40 + i % 3}.{17 + 11 * i}" for i in range(12))
WORLD = f"""
namespace: lba-accuracy
seed: 4242
backend: {{pods: 2, baseline_log_per_min: 3}}
policy_registry:
- version: v7
  created_at: -400h
  author: policy-bot
  thresholds: {{tol_D: '1.55', tol_coh: '0.70', min_samples: '32'}}
feature_flags:
  global: {{fast_path_v2: false, batch_verify: true}}
  osprey-2: {{fast_path_v2: true}}
flag_changes:
- {{scope: osprey-2, flag: fast_path_v2, value: true, previous: false, at: -43m, author: ibarra}}
tenants:
  kestrel:
    region: eu-north-1
    scenario: quota
    config: {{strict_mode: 'true', token_rate: '120', burst_rate: '140', daily_quota: '40000000', policy_version: v7}}
    policy: {{tol_D: '1.55', tol_coh: '0.70', min_samples: '32'}}
    signing_keys: {{ks-1: ke-q2mXb7T0cYwRk1LhA9uPzN3dVfE5sG}}
    traffic:
      ingest_rps: {{-24h: 96.0, -12h: 104.0, -14m: 140.0}}
      escalation_ratio: {{-24h: 0.006, -14m: 0.052}}
      signature_error_ratio: 0.002
      quota_exceeded_rps: {{-24h: 0.0, -14m: 7.0}}
      latency_p95_ms: 140
      latency_p99_ms: 310
    logs:
    - message: quota exceeded
      per_min: 420
      since: -14m
      level: warn
      sources: [{CLIENTS}]
      fields: {{limit: burst_rate}}
    worm:
      per_min: 6
      accepted:
        D_hat: {{mean: 1.2, sd: 0.07}}
        coh_star: {{mean: 0.83, sd: 0.03}}
      escalated:
        D_hat: {{mean: 1.63, sd: 0.04}}
        coh_star: {{mean: 0.67, sd: 0.02}}
  pelican:
    region: eu-north-1
    scenario: none
    config: {{strict_mode: 'false', token_rate: '50', burst_rate: '100', daily_quota: '8000000', policy_version: v7}}
    policy: {{tol_D: '1.55', tol_coh: '0.70', min_samples: '32'}}
    signing_keys: {{pk-3: pe-Vn4r8Wq1Zt6Yh2Jm5Kc9Lx3Bs7Dg0F}}
    traffic:
      ingest_rps: 30.0
      escalation_ratio: 0.017
      signature_error_ratio: 0.004
      quota_exceeded_rps: 0.09
      latency_p95_ms: 90
      latency_p99_ms: 200
    logs:
    - message: quota exceeded
      per_min: 5.4
      since: -24h
      level: warn
      sources: [10.9.0.4, 10.9.0.5]
      fields: {{limit: burst_rate}}
    worm:
      per_min: 4
      accepted:
        D_hat: {{mean: 1.2, sd: 0.07}}
        coh_star: {{mean: 0.83, sd: 0.03}}
      escalated:
        D_hat: {{mean: 1.63, sd: 0.04}}
        coh_star: {{mean: 0.67, sd: 0.02}}
  osprey-2:
    region: ca-central-1
    scenario: policy
    config: {{strict_mode: 'true', token_rate: '80', burst_rate: '160', daily_quota: '12000000', policy_version: v7}}
    policy: {{tol_D: '1.55', tol_coh: '0.70', min_samples: '32'}}
    signing_keys: {{ok-9: os-Hc2Nw8Qe4Rt6Yu1Io3Pa5Sd7Fg9Jk0L}}
    traffic:
      ingest_rps: 45.0
      escalation_ratio: {{-24h: 0.005, -41m: 0.11}}
      signature_error_ratio: 0.001
      latency_p95_ms: 120
      latency_p99_ms: 260
    worm:
      per_min: 6
      accepted:
        D_hat: {{mean: 1.2, sd: 0.07}}
        coh_star: {{mean: 0.83, sd: 0.03}}
      escalated:
        D_hat: {{mean: 1.63, sd: 0.04}}
        coh_star: {{mean: 0.67, sd: 0.02}}
"""
# What a right triage and diagnosis name in WORLD.
TRUTH = {"kestrel": ("quota", "legitimate_burst"), "pelican": (None, None), "osprey-2": ("policy", "feature_flag")}
# A generated world checked against its truth (the benchmark scores hundreds); the one
# tests/bench/test_accuracy.py runs too, so that the session starts its sandbox once.
# Seed 28 has an attack from a few sources whose IP block is the remedy.
SEEDS = (6, 28)


@dataclass
class Steps:
    triage: Report
    steered: DiagnosisReport  # diagnose without a scenario, steered by that triage


async def steps_for(ctx: Context, tenant: str) -> Steps:
    triage = await run_triage(ctx, tenant)
    assert triage.verdict is not None
    steered = await run_diagnose(ctx, tenant, None, lead=Lead.of(triage.verdict, triage.finished_at))
    return Steps(triage, steered)


async def run_world(start_sandbox: StartSandbox, text: str, tenants: list[str]) -> dict[str, Steps]:
    ctx = await sandbox_context(await start_sandbox(text), bench_config())
    try:
        done = await asyncio.gather(*(steps_for(ctx, t) for t in tenants))
        return dict(zip(tenants, done, strict=True))
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
async def own_world(start_sandbox: StartSandbox) -> AsyncIterator[dict[str, Steps]]:
    yield await run_world(start_sandbox, WORLD, list(TRUTH))


def test_a_quota_tenant_at_five_percent_whose_rejections_start_with_the_breach(own_world: dict[str, Steps]) -> None:
    steps = own_world["kestrel"]
    verdict = steps.triage.verdict
    assert verdict is not None
    assert verdict.scenario == "quota" or set(verdict.inconclusive) == {"escalations", "quota"}, verdict
    assert verdict.confidence is not None and verdict.rule
    assert any("with the breach" in e for e in verdict.evidence)
    diagnosed = steps.steered.verdict
    assert diagnosed is not None and diagnosed.cause == "legitimate_burst", diagnosed
    # The rejection finding the verdicts cite is shown as breaching or suspicious, never as healthy.
    for report, key in ((steps.triage, "health.quota"), (steps.steered, "quota.hits")):
        finding = report.finding(key)
        assert finding is not None and finding.status in (Status.BREACH, Status.WARN), finding


def test_a_healthy_tenant_with_a_trickle_of_rejections_is_not_breaching(own_world: dict[str, Steps]) -> None:
    steps = own_world["pelican"]
    assert steps.triage.verdict is not None and steps.triage.verdict.scenario is None
    assert steps.triage.status is not Status.BREACH
    assert diagnose_call(steps.steered.verdict) == "healthy", steps.steered.verdict


def test_a_flag_flipped_before_the_breach_is_named(own_world: dict[str, Steps]) -> None:
    steps = own_world["osprey-2"]
    assert triage_call(steps.triage.verdict) == "policy"
    verdict = steps.steered.verdict
    assert verdict is not None and verdict.cause == "feature_flag"
    assert any("fast_path_v2" in e and "ibarra" in e for e in verdict.evidence)


@pytest.mark.parametrize("seed", SEEDS)
async def test_generated_worlds_get_their_scenarios_and_causes(start_sandbox: StartSandbox, seed: int) -> None:
    world = generate(seed)
    remedies = {name: t.get("remedy") or {} for name, t in yaml.safe_load(world.yaml_text)["tenants"].items()}
    done = await run_world(start_sandbox, world.yaml_text, list(world.truth))
    for tenant, truth in world.truth.items():
        triage, diagnosed = done[tenant].triage.verdict, done[tenant].steered.verdict
        assert triage is not None and diagnosed is not None
        if truth.healthy:
            assert triage.scenario is None and diagnose_call(diagnosed) == "healthy", (tenant, triage, diagnosed)
            continue
        assert truth.scenario == triage.scenario or truth.scenario in triage.inconclusive, (tenant, truth, triage)
        assert diagnosed.cause == truth.cause, (tenant, truth, diagnosed)
        if diagnosed.scenario != triage.scenario:
            assert diagnosed.overturns == triage.scenario
        # An attack an IP block ends is offered that block of exactly its sources, first.
        blocks = [s for s in diagnosed.next_steps if " ip-block " in s]
        if remedies[tenant].get("action") == "ip-block":
            ips = sorted(remedies[tenant]["sources"])
            assert blocks and blocks[0] == diagnosed.next_steps[0], (tenant, diagnosed.next_steps)
            offered = sorted(r.removesuffix("/32") for r in blocks[0].split(" ip-block ")[1].split(","))
            assert offered == ips, (tenant, offered, ips)
        else:
            assert not blocks, (tenant, diagnosed.next_steps)
