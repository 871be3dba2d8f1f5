"""The bot's own /metrics, scraped over HTTP from the running bot after driving it through signed
Slack requests: each counter moves by exactly what was done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError

from bot.slack.sender import ChannelLimiter
from sandbox.slack import SlackDriver
from sandbox.slack.config import RateLimit
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, healthy_tenant, start_bot, triage_once

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(h: Harness) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{h.bot.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def scraped_until(h: Harness, done: Callable[[Samples], bool], wait_s: float = 30) -> Samples:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        samples = await scrape(h)
        if done(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the metrics never reached the expected values")
        await asyncio.sleep(0.1)


async def test_commands_are_counted_by_verb_and_outcome_and_each_ack_is_timed(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)
    before = await scrape(harness)
    await triage_once(harness, tenant)  # ok
    assert (await harness.driver.slash("triage no-such-tenant-metrics")).status == 200  # usage: unknown tenant
    assert (await harness.driver.slash("launch the rockets")).status == 200  # usage: no such verb, at the ack
    # Nobody is in an authorised group in the default config: refused, and nothing changes.
    assert (await harness.driver.slash(f"mitigate {tenant} degraded-mode", user="U_CAROL")).status == 200

    def settled(s: Samples) -> bool:
        # The triage's outbox item ends after its summary: the chart is rendered and uploaded last.
        return all(
            delta(before, s, name, **labels) >= 1
            for name, labels in [
                ("flk_bot_commands_total", {"verb": "mitigate", "outcome": "refused"}),
                ("flk_bot_commands_total", {"verb": "triage", "outcome": "usage"}),
                ("flk_bot_outbox_items_total", {"op": "triage", "outcome": "done"}),
            ]
        )

    after = await scraped_until(harness, settled)
    await asyncio.sleep(0.5)  # nothing more is counted late
    after = await scrape(harness)
    assert delta(before, after, "flk_bot_commands_total", verb="triage", outcome="ok") == 1
    assert delta(before, after, "flk_bot_commands_total", verb="triage", outcome="usage") == 1
    assert delta(before, after, "flk_bot_commands_total", verb="?", outcome="usage") == 1
    assert delta(before, after, "flk_bot_commands_total", verb="mitigate", outcome="refused") == 1
    assert delta(before, after, "flk_bot_commands_total", verb="mitigate", outcome="ok") == 0
    # Four requests to /slack/events, four acks timed; each within Slack's 3 s.
    assert delta(before, after, "flk_bot_slack_request_seconds_count") == 4
    assert delta(before, after, "flk_bot_slack_request_seconds_bucket", le="3.0") == 4
    # The triage itself: one step timed, one outbox item done.
    assert delta(before, after, "flk_bot_step_seconds_count", step="triage") == 1
    assert delta(before, after, "flk_bot_step_seconds_sum", step="triage") > 0
    assert delta(before, after, "flk_bot_outbox_items_total", op="triage", outcome="done") == 1


async def test_backend_errors_are_counted_by_system(harness: Harness) -> None:
    tenant = next(t for t, s in harness.sandbox.live.world.tenants.items() if s.scenario != "none")
    store = harness.bot.rt.store  # type: ignore[union-attr]
    await triage_once(harness, tenant)  # the incident thread exists before the counted run
    await harness.thread_ts(tenant, incident=True)
    incident = await store.find_open(tenant)
    assert incident is not None

    async def finished() -> list:
        return [e for e in await store.timeline(incident.id) if e.kind == "verdict" and e.data["step"] == "triage"]

    # Each summary posted is recorded as a verdict a moment later: wait for the earlier ones.
    async def caught_up() -> bool:
        return len(await finished()) >= len(harness.summaries(tenant))

    await eventually(caught_up)
    done_before = len(await finished())
    before = await scrape(harness)
    harness.sandbox.kube.rbac.deny("list", "pods")
    try:
        await triage_once(harness, tenant)
    finally:
        harness.sandbox.kube.rbac.allow("list", "pods")

    async def recorded() -> bool:
        return len(await finished()) > done_before

    # The report is counted just before it is recorded on the timeline, after its summary is posted.
    await eventually(recorded)
    findings = (await finished())[-1].data["findings"]
    failed = [f["summary"] for f in findings if f["status"] == "error"]
    assert failed, "denying pods/list failed no probe"
    after = await scrape(harness)
    kube_failures = sum(1 for s in failed if s.startswith("kubernetes:"))
    assert kube_failures >= 1
    assert delta(before, after, "flk_bot_backend_errors_total", system="kubernetes") == kube_failures
    total = sum(v for (name, _), v in after.items() if name == "flk_bot_backend_errors_total") - sum(
        v for (name, _), v in before.items() if name == "flk_bot_backend_errors_total"
    )
    assert total == len(failed)


async def test_slack_api_errors_by_method_and_code(harness: Harness) -> None:
    io = harness.bot.rt.io  # type: ignore[union-attr]
    before = await scrape(harness)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await io.post("C_NO_SUCH_CHANNEL", "into the void")
    after = await scrape(harness)
    assert (
        delta(before, after, "flk_bot_slack_api_errors_total", method="chat.postMessage", error="channel_not_found")
        == 2
    )


async def test_slack_429s_and_the_channel_limiter_are_counted_as_waits(harness: Harness) -> None:
    slack, io = harness.sandbox.slack, harness.bot.rt.io  # type: ignore[union-attr]
    before = await scrape(harness)
    calls_before = len(slack.calls("chat.postMessage"))
    slack.set_rate_limit("chat.postMessage", RateLimit(per_minute=60, burst=1))
    try:
        for n in range(3):
            await io.post(harness.channel, f"metrics: rate-limited post {n}")
    finally:
        slack.set_rate_limit("chat.postMessage", None)
    limited = [c for c in slack.calls("chat.postMessage")[calls_before:] if c.status == 429]
    assert limited, "the emulator never rate-limited"
    # The bot's own limiter: two sends on one channel at 20/s with no burst, the second waits.
    limiter = ChannelLimiter(rate_per_s=20, burst=1)
    await limiter.wait("C_LIMITED")
    await limiter.wait("C_LIMITED")
    after = await scrape(harness)
    assert delta(before, after, "flk_bot_rate_limit_wait_seconds_count", source="slack_429") == len(limited)
    # slack_sdk sleeps Retry-After (whole seconds, at least 1) plus a random fraction.
    assert delta(before, after, "flk_bot_rate_limit_wait_seconds_sum", source="slack_429") >= len(limited)
    assert delta(before, after, "flk_bot_rate_limit_wait_seconds_count", source="limiter") == 1
    assert delta(before, after, "flk_bot_rate_limit_wait_seconds_sum", source="limiter") == pytest.approx(0.05, 0.2)
    # Retried, not failed: no Slack API error counted for them.
    assert delta(before, after, "flk_bot_slack_api_errors_total", method="chat.postMessage", error="ratelimited") == 0


async def test_scheduled_checks_are_counted_by_outcome(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)

    def posted() -> list[str]:
        return [
            str(c.args.get("text", ""))
            for c in harness.sandbox.slack.calls("chat.postMessage")
            if "SLO check 1/1 asked for by hand" in str(c.args.get("text", ""))
        ]

    before, already = await scrape(harness), len(posted())
    assert (await harness.driver.slash(f"verify {tenant}")).status == 200

    async def ran() -> bool:
        return len(posted()) > already

    await eventually(ran, wait_s=20)
    after = await scraped_until(
        harness,
        lambda s: (
            sum(
                delta(before, s, "flk_bot_scheduled_checks_total", kind="slo", outcome=o)
                for o in ("passed", "failed", "error")
            )
            >= 1
        ),
    )
    passed = posted()[-1].startswith(":white_check_mark:")
    assert delta(before, after, "flk_bot_scheduled_checks_total", kind="slo", outcome="passed") == int(passed)
    assert delta(before, after, "flk_bot_scheduled_checks_total", kind="slo", outcome="failed") == int(not passed)
    assert delta(before, after, "flk_bot_scheduled_checks_total", kind="slo", outcome="error") == 0
    assert delta(before, after, "flk_bot_commands_total", verb="verify", outcome="ok") == 1


async def test_no_label_names_a_tenant_or_a_user(harness: Harness) -> None:
    tenant = healthy_tenant(harness.sandbox)
    await triage_once(harness, tenant)
    samples = await scrape(harness)
    ours = [labels for (name, labels) in samples if name.startswith("flk_bot_")]
    assert ours
    values = {v for labels in ours for _, v in labels}
    assert tenant not in values and "U_ALICE" not in values
    assert not {k for labels in ours for k, _ in labels} & {"tenant", "tenant_id", "user", "incident_id"}


async def test_a_check_whose_backend_fails_counts_the_failure_and_the_system(sandbox: Sandbox) -> None:
    # Prometheus on a port where nothing listens: a real connection failure, not a stub.
    bot = await start_bot(sandbox, FLK_PROMETHEUS_URL="http://127.0.0.1:9")
    driver = SlackDriver(sandbox.slack, f"{bot.url}/slack/events")
    h = Harness(sandbox, bot, driver)
    tenant = healthy_tenant(sandbox)
    try:
        before = await scrape(h)
        assert (await driver.slash(f"verify {tenant}")).status == 200
        after = await scraped_until(
            h, lambda s: delta(before, s, "flk_bot_scheduled_checks_total", kind="slo", outcome="failed") >= 1
        )
        assert delta(before, after, "flk_bot_backend_errors_total", system="prometheus") == 1
        assert delta(before, after, "flk_bot_scheduled_checks_total", kind="slo", outcome="failed") == 1
        assert delta(before, after, "flk_bot_scheduled_checks_total", kind="slo", outcome="passed") == 0
    finally:
        await driver.close()
        await bot.stop()
