"""The fault table's replica and store rows (issue 14): a replica SIGKILLed at each step of an
apply, and the store going down in the middle of one. Real `flk serve` processes on a
PostgreSQL server of this module's own (its restart must not cut other modules' sessions).

One replica (the victim) is taken to a different step of an apply on each of four tenants at
once, held there by the fake servers (the Kubernetes fake stalls a request, the Slack emulator
fails one method), and SIGKILLed once; a new replica (the survivor) finishes all four. Then the
survivor applies a fifth plan while PostgreSQL restarts under it. Each row then asserts what the
thread, the cluster and the audit logs (one per replica) hold: applied once, audited once with
before -> after and the confirmer, one outcome in the thread."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.postgres import Postgres
from sandbox.slack.models import Message
from sandbox.up import Sandbox
from tests.faults.support import PLAN_ID, applied_count, audit_records, of_plan, patched
from tests.replicas.cluster import Cluster
from tests.replicas.slack_view import until

CHANNEL = "C_SRE"
RUNBOOK = """\
mitigations:
  authorised_groups: [S_ONCALL]
  quota_ceiling: 100000000
  burst_ceiling: 100000000
  verify_delays_s: [600]
timeouts: {probe_s: 20}
"""
# tenant -> (the step its apply is at when the victim dies, the mitigation)
STEPS = {
    "polaris": ("intent audited, patch in flight", "quota"),
    "raven-heron-1": ("configmap patched, restart in flight", "degraded-mode"),
    "atlas": ("applied audited, outcome not posted", "quota"),
    "willow": ("outcome posted, plan not edited", "quota"),
    "raven-heron-12": ("store down between the patch and its record", "quota"),
}

# The applies that were cut off before their outcome was recorded: the survivor resumes them.
RESUMED = ("polaris", "raven-heron-1", "raven-heron-12")


@dataclass
class Plan:
    tenant: str
    action: str
    id: str
    ts: str
    thread_ts: str
    before: dict[str, str]


@dataclass
class Ran:
    cluster: Cluster
    plans: dict[str, Plan] = field(default_factory=dict)

    @property
    def sandbox(self) -> Sandbox:
        return self.cluster.sandbox

    def thread(self, plan: Plan) -> list[Message]:
        return self.sandbox.slack.thread(CHANNEL, plan.thread_ts)

    def audit(self) -> list[dict]:
        return audit_records(sorted(self.cluster._folder.glob("audit-*.jsonl")))


async def _plan(ran: Ran, tenant: str, action: str, rate: str | None) -> Plan:
    cluster, sb = ran.cluster, ran.sandbox
    assert cluster.driver is not None and cluster.store is not None
    before = dict(sb.tenant_config(tenant) or {})
    text = f"mitigate {tenant} {action}" + (f" {rate}" if rate else "")
    assert (await cluster.driver.slash(text, channel=CHANNEL)).status == 200
    store = cluster.store

    async def opened() -> str | None:
        incident = await store.find_open(tenant)
        return incident.thread_ts if incident is not None else None

    thread_ts = str(await until(opened, 20, f"{tenant}'s thread", cluster))

    def shown() -> Message | None:
        return next((m for m in sb.slack.thread(CHANNEL, thread_ts) if "flk_confirm" in str(m.blocks)), None)

    await until(shown, 20, f"{tenant}'s plan")
    message = shown()
    assert message is not None
    found = PLAN_ID.search(message.all_text())
    assert found
    return Plan(tenant, action, found.group(1), message.ts, thread_ts, before)


async def _confirm(ran: Ran, plan: Plan) -> None:
    assert ran.cluster.driver is not None
    assert (await ran.cluster.driver.click("flk_confirm", channel=CHANNEL, ts=plan.ts)).status == 200


def _failed_calls(sb: Sandbox, method: str) -> int:
    return sum(1 for c in sb.slack.calls(method) if not c.ok)


@pytest.fixture(scope="module")
async def ran(faults_sandbox: Sandbox) -> AsyncIterator[Ran]:
    sb = faults_sandbox
    folder = Path(tempfile.mkdtemp(prefix="flk-faults-replicas-"))
    (folder / "runbook.yaml").write_text(RUNBOOK)
    async with Postgres() as pg:
        cluster = Cluster(sb, pg.url, {"FLK_CONFIG": str(folder / "runbook.yaml")})
        ran = Ran(cluster)
        try:
            await cluster.start(1)
            [victim] = cluster.replicas
            for tenant, (_, action) in STEPS.items():
                rate = None if action != "quota" else str(int(float(sb.tenant_config(tenant)["token_rate"])) + 7)  # type: ignore[index]
                ran.plans[tenant] = await _plan(ran, tenant, action, rate)
            await _drive_the_victim(ran)
            await cluster.kill(victim)
            await asyncio.sleep(0.3)  # the fake sees the dead replica's connections close
            sb.slack.workspace.failing.clear()
            sb.kube.release()
            await cluster.ensure(1)
            await _store_down_mid_apply(ran, pg)
            yield ran
        finally:
            sb.slack.workspace.failing.clear()
            sb.kube.release()
            await cluster.close()
            _restore(ran)


async def _drive_the_victim(ran: Ran) -> None:
    sb, p = ran.sandbox, ran.plans
    kube = sb.kube
    # willow: the outcome is posted, the plan's edit fails (and is retried) until the kill.
    edits_failed = _failed_calls(sb, "chat.update")
    sb.slack.fail_next("chat.update", 50, "internal_error")
    await _confirm(ran, p["willow"])
    await until(lambda: applied_count(ran.thread(p["willow"]), p["willow"].id, "quota"), 20, "willow's outcome")
    await until(lambda: _failed_calls(sb, "chat.update") > edits_failed, 10, "willow's plan edit failing")
    # atlas: applied and audited; its outcome's post fails (and is retried) until the kill.
    posts_failed = _failed_calls(sb, "chat.postMessage")
    sb.slack.fail_next("chat.postMessage", 50, "internal_error")
    await _confirm(ran, p["atlas"])
    await until(lambda: of_plan(ran.audit(), p["atlas"].id, "mitigation.applied"), 20, "atlas's applied record")
    await until(lambda: _failed_calls(sb, "chat.postMessage") > posts_failed, 10, "atlas's outcome failing")
    # raven-heron-1: the configmap is patched, the rollout restart waits in the API server.
    kube.stall("deployments")
    name = "tenant-raven-heron-1"
    await _confirm(ran, p["raven-heron-1"])
    await until(lambda: patched(kube, name) == 1, 20, "raven-heron-1's configmap patched")
    await until(lambda: any(w.startswith("PATCH") and "deployments" in w for w in kube.waiting), 10, "the restart held")
    # polaris: the intent is audited, the patch waits in the API server.
    kube.stall("configmaps")
    await _confirm(ran, p["polaris"])
    await until(lambda: any(w.endswith("/configmaps/tenant-polaris") for w in kube.waiting), 10, "polaris's patch held")
    assert of_plan(ran.audit(), p["polaris"].id, "mitigation.confirmed")


async def _store_down_mid_apply(ran: Ran, pg: Postgres) -> None:
    """The survivor's patch lands while PostgreSQL is down: nothing can record it until it is back."""
    kube, plan = ran.sandbox.kube, ran.plans["raven-heron-12"]
    kube.stall("configmaps")
    await _confirm(ran, plan)
    await until(lambda: any(w.endswith("/configmaps/tenant-raven-heron-12") for w in kube.waiting), 20, "patch held")
    outage = asyncio.create_task(pg.restart(down_for=2.0))
    await until(lambda: not pg.running, 10, "PostgreSQL stopped")
    kube.release()
    await until(lambda: patched(kube, "tenant-raven-heron-12") == 1, 10, "the patch carried out")
    await outage


def _restore(ran: Ran) -> None:
    sb = ran.sandbox
    namespace = sb.live.world.namespace
    for plan in ran.plans.values():
        with contextlib.suppress(Exception):
            sb.kube_store.patch("configmaps", namespace, f"tenant-{plan.tenant}", {"data": plan.before}, "merge")


@pytest.mark.parametrize("tenant", list(STEPS), ids=[f"{t}: {s}" for t, (s, _) in STEPS.items()])
async def test_killed_or_cut_off_mid_apply_it_is_applied_once_and_audited_once(ran: Ran, tenant: str) -> None:
    plan, sb = ran.plans[tenant], ran.sandbox
    assert ran.cluster.store is not None
    store = ran.cluster.store

    async def applied() -> bool:
        return (await store.plans.get(plan.id)).state == "applied"

    await until(applied, 45, f"{tenant}'s plan applied", ran.cluster)
    await until(lambda: applied_count(ran.thread(plan), plan.id, plan.action), 20, f"{tenant}'s outcome", ran.cluster)
    await asyncio.sleep(0.5)
    # The cluster: changed once, to the plan's values.
    name = f"tenant-{tenant}"
    assert patched(sb.kube, name) == 1
    record = await store.plans.get(plan.id)
    assert record.applied is not None
    [change] = [c for o in record.applied["objects"] for c in o["changes"]]
    assert (sb.tenant_config(tenant) or {})[change["key"]] == change["after"]
    # The thread: one outcome, and the plan's message edited to say it was applied.
    assert applied_count(ran.thread(plan), plan.id, plan.action) == 1
    await until(
        lambda: "applied by" in (sb.slack.message(CHANNEL, plan.ts) or Message("", "", "", "")).all_text(),
        20,
        f"{tenant}'s plan edited",
    )
    # The audit logs (one per replica): the intent once, before -> after and the confirmer once.
    records = ran.audit()
    confirmed = of_plan(records, plan.id, "mitigation.confirmed")
    done = of_plan(records, plan.id, "mitigation.applied")
    assert len(confirmed) == 1 and len(done) == 1, (confirmed, done)
    [audited] = done[0]["details"]["changes"]
    assert (audited["before"], audited["after"]) == (plan.before[audited["key"]], change["after"])
    assert done[0]["details"]["confirmed_by"] == "U_ALICE"
    # An apply cut off part-way is said to be resumed, once; a finished one is not resumed.
    resumed = sum("stopped part-way" in m.all_text() for m in ran.thread(plan))
    assert resumed == (1 if tenant in RESUMED else 0)
    if plan.action == "degraded-mode":
        deployment = sb.kube_store.get("deployments", sb.live.world.namespace, sb.live.world.backend.deployment)
        assert deployment is not None
        assert deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
