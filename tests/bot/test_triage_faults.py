"""Bad input and failing backends during /flk triage: each ends in a clear message, never a gap."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from commands.models import SCENARIO_TITLE
from sandbox.slack import SlackDriver
from sandbox.slack.config import RateLimit
from sandbox.up import Sandbox
from tests.bot.harness import Harness, healthy_tenant, running, start_bot, triage_once


@pytest.mark.parametrize("signature", ["none", "wrong", "stale"])
async def test_unsigned_wrong_or_stale_requests_get_401_and_run_nothing(harness: Harness, signature: str) -> None:
    # A tenant no other test uses: had the request run, the bot would answer "unknown tenant".
    tenant = f"unsigned-{signature}"
    delivery = await harness.driver.slash(f"triage {tenant}", signature=signature)
    assert delivery.status == 401
    await asyncio.sleep(0.5)
    assert not any(tenant in e.all_text() for e in harness.sandbox.slack.ephemerals())
    # The same request, signed, does run (so the silence above means something).
    assert (await harness.driver.slash(f"triage {tenant}")).status == 200
    await harness.sandbox.slack.wait_for(
        lambda: any(f"unknown tenant `{tenant}`" in e.all_text() for e in harness.sandbox.slack.ephemerals())
    )


@pytest.fixture(scope="module")
async def quiet(sandbox: Sandbox) -> AsyncIterator[Harness]:
    """A bot of its own, which no alert and no other test's work reaches: any backend call it
    makes comes from the input under test."""
    async with running(sandbox) as h:
        yield h


@pytest.mark.parametrize(
    "text", ["triage 'acme\"} or vector(1)'", "triage ../x", "triage " + "a" * 300, "triage ''", "launch acme"]
)
async def test_malformed_input_gets_usage_and_touches_no_backend(
    quiet: Harness, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = quiet
    calls: list[str] = []
    ctx = harness.bot.rt.ctx  # type: ignore[union-attr]
    for client in (ctx.prometheus, ctx.kube):
        original = client._call

        async def spy(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(str(args[:1]))
            return await _original(*args, **kwargs)

        monkeypatch.setattr(client, "_call", spy)
    delivery = await harness.driver.slash(text)
    assert delivery.status == 200
    answer = delivery.body
    assert "Usage: `/flk triage [tenant]`" in answer or "Try `/flk help`" in answer
    await asyncio.sleep(0.3)
    assert calls == []


async def test_unknown_tenant_is_refused_ephemerally(harness: Harness) -> None:
    delivery = await harness.driver.slash("triage no-such-tenant")
    assert delivery.status == 200
    await harness.sandbox.slack.wait_for(
        lambda: any("unknown tenant `no-such-tenant`" in e.all_text() for e in harness.sandbox.slack.ephemerals())
    )
    assert await harness.bot.rt.store.find_open("no-such-tenant") is None  # type: ignore[union-attr]


async def test_help_lists_every_verb(harness: Harness) -> None:
    delivery = await harness.driver.slash("help")
    text = str(delivery.json())
    assert "/flk triage [tenant]" in text
    assert "/flk help" in text


async def test_a_slack_retry_does_not_start_a_second_triage(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)
    summary = await triage_once(harness, tenant)
    before = len(harness.summaries(tenant))
    progress_before = len([m for m in harness.thread(tenant) if "probes done" in m.all_text()])
    # The same body (same trigger_id), as Slack resends it, marked as a retry.
    delivery = await harness.driver.resend_last(retry_num=1)
    assert delivery.status == 200
    await asyncio.sleep(1.5)
    assert len(harness.summaries(tenant)) == before
    assert len([m for m in harness.thread(tenant) if "probes done" in m.all_text()]) == progress_before
    assert summary is not None


async def test_kubernetes_403_names_the_missing_permission(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)
    rbac = harness.sandbox.kube.rbac
    rbac.deny("list", "pods")
    try:
        summary = await triage_once(harness, tenant)
    finally:
        rbac.allow("list", "pods")
    namespace = harness.sandbox.live.world.namespace
    assert f"may not list pods in namespace {namespace}" in summary.all_text()


async def test_missing_tenant_configmap_is_named(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)
    store, namespace = harness.sandbox.kube_store, harness.sandbox.live.world.namespace
    saved = copy.deepcopy(store.get("configmaps", namespace, f"policy-{tenant}"))
    store.delete("configmaps", namespace, f"policy-{tenant}")
    try:
        summary = await triage_once(harness, tenant)
    finally:
        saved["metadata"].pop("resourceVersion", None)
        store.create("configmaps", saved, namespace)
    assert f"configmap `policy-{tenant}` is missing in namespace `{namespace}`" in summary.all_text()


async def test_slack_ratelimited_posts_are_retried_and_nothing_is_dropped(harness: Harness) -> None:
    slack = harness.sandbox.slack
    tenant = next(t for t, s in harness.sandbox.live.world.tenants.items() if s.scenario != "none")
    slack.set_rate_limit("chat.postMessage", RateLimit(per_minute=120, burst=1))
    try:
        before = len(slack.calls("chat.postMessage"))
        healthy = healthy_tenant(harness.sandbox)
        summaries, healthy_summaries = len(harness.summaries(tenant)), len(harness.summaries(healthy))
        await harness.driver.slash(f"triage {tenant}")
        await harness.driver.slash(f"triage {healthy}")
        summary = await harness.wait_summary(tenant, count=summaries + 1, wait_s=30)
        await harness.wait_summary(healthy, count=healthy_summaries + 1, wait_s=30)
    finally:
        slack.set_rate_limit("chat.postMessage", None)
    calls = slack.calls("chat.postMessage")[before:]
    assert any(c.error == "ratelimited" for c in calls), "the limit was never hit"
    assert SCENARIO_TITLE[harness.sandbox.live.world.tenants[tenant].scenario] in summary.all_text()


@contextlib.asynccontextmanager
async def slow_server(delay_s: float) -> AsyncIterator[str]:
    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["down", "slow"])
async def test_prometheus_down_or_slow_marks_probes_error_and_the_rest_completes(
    harness: Harness, tmp_path: Path, kind: str
) -> None:
    config = tmp_path / "runbook.yaml"
    config.write_text("timeouts: {probe_s: 1}\n")
    async with contextlib.AsyncExitStack() as stack:
        url = "http://127.0.0.1:9" if kind == "down" else await stack.enter_async_context(slow_server(10))
        bot = await start_bot(harness.sandbox, FLK_PROMETHEUS_URL=url, FLK_CONFIG=str(config))
        stack.push_async_callback(bot.stop)
        driver = SlackDriver(harness.sandbox.slack, f"{bot.url}/slack/events")
        stack.push_async_callback(driver.close)
        other = Harness(harness.sandbox, bot, driver)
        tenant = healthy_tenant(harness.sandbox)
        loop = asyncio.get_running_loop()
        started = loop.time()
        summary = await triage_once(other, tenant)
        elapsed = loop.time() - started
    text = summary.all_text()
    # The client's timeout and the probe's own race; either names the limit.
    reason = r"prometheus: cannot connect to" if kind == "down" else r"(prometheus: )?no answer within 1 s"
    assert re.search(r"Escalation ratio \(5m\)\* · " + reason, text), text
    assert "Cannot tell" in text
    # Kubernetes, the admin API and git still answered.
    assert "Tenant configmaps* · tenant-" in text
    assert "token_rate" in text
    assert elapsed < 8
