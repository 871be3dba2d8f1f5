"""The option to stream a step's progress as Slack's native task plan (chat.startStream)."""

from __future__ import annotations

from commands.triage import probes
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import Harness, start_bot, triage_once, verdict_line


async def test_triage_progress_as_a_native_task_plan(sandbox: Sandbox) -> None:
    tenant = next(t for t, s in sandbox.live.world.tenants.items() if s.scenario == "quota")
    bot = await start_bot(sandbox, FLK_SLACK_STREAMING="native")
    driver = SlackDriver(sandbox.slack, f"{bot.url}/slack/events")
    try:
        h = Harness(sandbox, bot, driver)
        # The first triage runs in the channel (Slack streams only into a thread) and opens the
        # incident; the second streams into its thread.
        first = await triage_once(h, tenant)
        assert "scenario C" in verdict_line(first) and not [m for m in h.thread(tenant) if m.chunks]
        await h.thread_ts(tenant, incident=True)
        summary = await triage_once(h, tenant)
        assert "scenario C" in verdict_line(summary)
        streamed = [m for m in h.thread(tenant) if m.chunks]
        assert len(streamed) == 1
        message = streamed[0]
        assert not message.streaming, "the stream was never stopped"
        tasks = [c for c in message.chunks if c.get("type") == "task_update"]
        done = {c["id"] for c in tasks if c["status"] in ("complete", "error")}
        started = {c["id"] for c in tasks if c["status"] == "in_progress"}
        assert len(started) == len(probes()) and done == started
        assert any(c.get("type") == "plan_update" for c in message.chunks)
    finally:
        await driver.close()
        await bot.stop()
