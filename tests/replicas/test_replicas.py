"""Two real `flk serve` processes on one PostgreSQL database behind one URL (HTTP mode):
commands, alerts and button clicks are handled once, whichever replica gets them and however
often Slack or Alertmanager deliver them; scheduled checks fire once; one replica leads."""

from __future__ import annotations

import asyncio
import re
import time

from tests.replicas.cluster import Cluster
from tests.replicas.slack_view import (
    CHANNEL,
    checklists,
    containing,
    firing,
    kube_patches,
    parents,
    send_webhook,
    summaries,
    thread_ts,
    until,
)

SETTLE_S = 2.0  # a duplicate (a second outbox run, a second check) would have shown by then


async def test_exactly_one_replica_leads(cluster: Cluster) -> None:
    leader = await cluster.wait_single_leader()
    follower = next(b for b in cluster.replicas if b is not leader)
    assert not await cluster.is_leader(follower)


async def test_commands_and_alerts_delivered_twice_run_once(cluster: Cluster) -> None:
    since = time.time()
    alerted, asked = ["orbit", "halcyon"], ["zephyr-9", "tundra-3"]
    body = firing(*alerted)
    # The same notification to each replica at once (an Alertmanager HA pair notifies twice),
    # and once more through the front.
    urls = [b.url for b in cluster.replicas] + [cluster.front.url]
    assert await asyncio.gather(*(send_webhook(cluster, url, body) for url in urls)) == [200, 200, 200]
    assert cluster.driver is not None
    for tenant in asked:
        first = await cluster.driver.slash(f"triage {tenant}")
        # Slack did not see the ack in time and retries: the front hands it to the other replica.
        retry = await cluster.driver.resend_last()
        assert first.status == retry.status == 200
    for tenant in alerted + asked:
        ts = await thread_ts(cluster, tenant)
        await until(lambda t=tenant, s=ts: summaries(cluster, s, t), 40, f"the triage summary of {tenant}", cluster)
    await asyncio.sleep(SETTLE_S)
    for tenant in alerted + asked:
        ts = await thread_ts(cluster, tenant)
        assert len(parents(cluster, tenant, since)) == 1, tenant
        assert len(summaries(cluster, ts, tenant)) == 1, tenant
        # A triage asked while the tenant had no incident ran in the channel: its checklist
        # became the incident's parent. Any checklist left in the thread is finished.
        shown = checklists(cluster, ts, tenant)
        assert len(shown) <= 1 and all(done == of > 0 for _, done, of in shown), tenant
        assert shown or tenant in asked, tenant
    # Both replicas took part.
    assert sorted(cluster.front.served) == sorted(b.url for b in cluster.replicas)


async def test_confirm_clicked_on_both_replicas_applies_once_and_each_check_fires_once(cluster: Cluster) -> None:
    tenant, name = "zephyr-9", "tenant-zephyr-9"
    patches_before = kube_patches(cluster, name)
    assert cluster.driver is not None
    assert (await cluster.driver.slash(f"mitigate {tenant} key-window")).status == 200
    ts = await thread_ts(cluster, tenant)
    [plan] = await until(lambda: containing(cluster, ts, "dry run"), 20, "the plan", cluster)
    plan_id = re.search(r"Plan `([^`]+)`", plan.all_text()).group(1)  # type: ignore[union-attr]
    # The on-call presses Confirm twice, the clicks land on different replicas, and Slack
    # retries one of them through the front.
    first, second = (cluster.driver_for(b) for b in cluster.replicas)
    clicks = await asyncio.gather(
        first.click("flk_confirm", channel=CHANNEL, ts=plan.ts),
        second.click("flk_confirm", channel=CHANNEL, ts=plan.ts),
    )
    retry = await first.resend_last()
    assert [c.status for c in clicks] + [retry.status] == [200, 200, 200]
    await until(lambda: containing(cluster, ts, "Applied `key-window`"), 20, "the applied message", cluster)
    # verify_delays_s [4, 8]: both checks, each posted once.
    await until(lambda: containing(cluster, ts, "SLO check 2/2"), 30, "the second check", cluster)
    await asyncio.sleep(SETTLE_S)
    assert kube_patches(cluster, name) == patches_before + 1
    assert len(containing(cluster, ts, "Applied `key-window`")) == 1
    assert len(containing(cluster, ts, "SLO check 1/2")) == len(containing(cluster, ts, "SLO check 2/2")) == 1
    assert cluster.store is not None
    incident = await cluster.store.find_open(tenant)
    assert incident is not None
    jobs = await cluster.store.jobs.for_incident(incident.id, ops=["slo_check"])
    checks = [c for c in jobs if c.payload.get("plan_id") == plan_id]
    assert [(c.state, c.attempts) for c in checks] == [("done", 1), ("done", 1)]
