"""A replica SIGKILLed at the worst moments: while it leads the scheduler, in the middle of a
triage, between posting a plan and its confirmation, and half-way through applying a confirmed
plan. The survivor carries on: it takes over the scheduling within 15 s, finishes the triage in
the message the dead one started, applies the plan once, and finishes a half-applied one from
what the cluster shows."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.replicas.cluster import Cluster
from tests.replicas.slack_view import (
    CHANNEL,
    checklists,
    containing,
    kube_patches,
    summaries,
    thread_ts,
    until,
)

TAKEOVER_GOAL_S = 15.0
SETTLE_S = 2.0


@pytest.fixture(autouse=True)
async def two_replicas(cluster: Cluster) -> None:
    """Each test starts with two replicas (the one before may have killed one)."""
    await cluster.ensure(2)


async def test_the_survivor_takes_over_scheduling_when_the_leader_is_killed(cluster: Cluster) -> None:
    assert cluster.store is not None
    leader = await cluster.wait_single_leader()
    survivor = next(b for b in cluster.replicas if b is not leader)
    tenant = "meridian"
    # The check is queued through the leader: only the leader has a wake-up timer for it, so after
    # the kill it runs only because the survivor's worker finds it due in the job queue.
    assert (await cluster.driver_for(leader).slash(f"verify {tenant} in 6s")).status == 200
    ts = await thread_ts(cluster, tenant)
    incident = await cluster.store.find_open(tenant)
    assert incident is not None
    await until(lambda: cluster.store.jobs.for_incident(incident.id, ops=["slo_check"]), 5, "the check in the store")  # type: ignore[union-attr]
    killed_at = await cluster.kill(leader)
    await until(lambda: cluster.is_leader(survivor), TAKEOVER_GOAL_S, "the survivor leading", cluster)
    takeover_s = time.monotonic() - killed_at
    assert takeover_s <= TAKEOVER_GOAL_S
    await until(lambda: containing(cluster, ts, "SLO check 1/1"), 20, "the check's result", cluster)
    await asyncio.sleep(SETTLE_S)
    assert len(containing(cluster, ts, "SLO check 1/1")) == 1
    [check] = await cluster.store.jobs.for_incident(incident.id, ops=["slo_check"])
    assert (check.state, check.attempts) == ("done", 1)


async def test_a_triage_whose_replica_is_killed_is_finished_by_the_other(cluster: Cluster) -> None:
    assert cluster.store is not None and cluster.driver is not None
    store, tenant = cluster.store, "orbit"
    # A first triage opens the incident (or joins the one open): the one killed runs in its thread.
    assert (await cluster.driver.slash(f"triage {tenant}")).status == 200
    ts = await thread_ts(cluster, tenant)
    await until(lambda: summaries(cluster, ts, tenant), 30, "the first triage summary", cluster)
    # An alert's triage of the same incident (another test's) may still be landing: let it settle.
    before = -1
    while before != len(summaries(cluster, ts, tenant)):
        before = len(summaries(cluster, ts, tenant))
        await asyncio.sleep(SETTLE_S)
    # The backend's admin API hangs: the triage waits on that probe's timeout, long enough to
    # kill its replica in the middle of it.
    cluster.sandbox.backend.faults["admin"] = "hang"
    try:
        assert (await cluster.driver.slash(f"triage {tenant}")).status == 200
        incident = await store.find_open(tenant)
        assert incident is not None
        item_id, victim = await until(lambda: cluster.holder("triage", incident.id), 10, "a replica on the triage")

        async def checklist_recorded() -> str | None:
            progress = await store.keys.result(f"progress:{item_id}")
            return progress.get("ts") if progress else None

        checklist_ts = await until(checklist_recorded, 10, "the checklist posted", cluster)
        assert len(summaries(cluster, ts, tenant)) == before
        await cluster.kill(victim)
    finally:
        cluster.sandbox.backend.faults["admin"] = None
    # The dead replica's claim lapses (15 s lease, no longer renewed); the survivor runs the item again.
    survivor = "the triage summary from the survivor"
    await until(lambda: len(summaries(cluster, ts, tenant)) > before, 40, survivor, cluster)
    await asyncio.sleep(SETTLE_S)
    assert len(summaries(cluster, ts, tenant)) == before + 1
    # One checklist for it: the one the dead replica posted, finished by the survivor.
    [(_, done, of)] = [c for c in checklists(cluster, ts, tenant) if c[0].ts == checklist_ts]
    assert done == of > 0
    assert not [c for c in checklists(cluster, ts, tenant) if c[1] < c[2]], "a checklist left unfinished"


async def test_a_plan_posted_before_its_replica_died_is_confirmed_once_on_the_survivor(cluster: Cluster) -> None:
    assert cluster.driver is not None
    tenant, name = "halcyon", "tenant-halcyon"
    patches_before = kube_patches(cluster, name)
    assert (await cluster.driver.slash(f"mitigate {tenant} quota")).status == 200
    ts = await thread_ts(cluster, tenant)
    [plan] = await until(lambda: containing(cluster, ts, "dry run"), 20, "the plan", cluster)
    await cluster.kill(cluster.replicas[0])
    # A double click: both land on the survivor, through the front.
    clicks = await asyncio.gather(*(cluster.driver.click("flk_confirm", channel=CHANNEL, ts=plan.ts) for _ in "ab"))
    assert [c.status for c in clicks] == [200, 200]
    await until(lambda: containing(cluster, ts, "Applied `quota`"), 20, "the applied message", cluster)
    await asyncio.sleep(SETTLE_S)
    assert len(containing(cluster, ts, "Applied `quota`")) == 1
    assert kube_patches(cluster, name) == patches_before + 1


async def test_a_plan_whose_replica_is_killed_while_applying_is_finished_once_by_the_other(cluster: Cluster) -> None:
    assert cluster.driver is not None
    sandbox = cluster.sandbox
    tenant, name = "orbit", "tenant-orbit"
    namespace = sandbox.live.world.namespace
    patches_before = kube_patches(cluster, name)
    assert (await cluster.driver.slash(f"mitigate {tenant} degraded-mode")).status == 200
    ts = await thread_ts(cluster, tenant)
    [plan] = await until(lambda: containing(cluster, ts, "dry run"), 20, "the plan", cluster)
    # The API server stalls the rollout restart: the configmap is patched, the restart is not.
    sandbox.kube.stall("deployments")
    try:
        assert (await cluster.driver.click("flk_confirm", channel=CHANNEL, ts=plan.ts)).status == 200
        await until(lambda: kube_patches(cluster, name) > patches_before, 20, "the configmap patch", cluster)
        _, victim = await until(lambda: cluster.holder("apply_plan", None), 10, "a replica applying", cluster)
        await cluster.kill(victim)
    finally:
        sandbox.kube.release()
    try:
        # Within the dead replica's 15 s lease the survivor takes the item over and finishes it.
        await until(lambda: containing(cluster, ts, "Applied `degraded-mode`"), 40, "the applied message", cluster)
        await asyncio.sleep(SETTLE_S)
        assert len(containing(cluster, ts, "Applied `degraded-mode`")) == 1
        assert len(containing(cluster, ts, "stopped part-way")) == 1
        # The configmap was patched once (by the dead replica) and kept; the survivor restarted.
        assert kube_patches(cluster, name) == patches_before + 1
        assert sandbox.tenant_config(tenant)["strict_mode"] == "false"
        deployment = sandbox.kube_store.get("deployments", namespace, sandbox.live.world.backend.deployment)
        assert deployment is not None
        assert deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        # The plan message says it was applied: its buttons are gone.
        [message] = [m for m in containing(cluster, ts, "dry run") if m.ts == plan.ts]
        assert "applied by" in str(message.blocks) and "flk_confirm" not in str(message.blocks)
    finally:
        sandbox.kube_store.patch("configmaps", namespace, name, {"data": {"strict_mode": "true"}})
