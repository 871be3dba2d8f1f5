"""/readyz: ready only when the incident store answers and Slack's auth.test has succeeded; a
success is cached so that probes do not call Slack each time."""

from __future__ import annotations

import aiohttp

from sandbox.up import Sandbox
from tests.bot.harness import Harness, start_bot


async def readyz(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.text()


async def test_ready_when_the_store_and_slack_answer_and_slack_is_asked_once(harness: Harness) -> None:
    slack = harness.sandbox.slack
    calls = len(slack.calls("auth.test"))
    assert await readyz(harness.bot.url) == (200, "ready")
    asked = len(slack.calls("auth.test")) - calls
    assert asked <= 1  # none if an earlier probe's success is still cached
    for _ in range(5):
        assert await readyz(harness.bot.url) == (200, "ready")
    assert len(slack.calls("auth.test")) - calls == asked


async def test_not_ready_while_slack_cannot_be_reached_though_the_store_answers(sandbox: Sandbox) -> None:
    # Port 9 (discard) has no listener here: every connection is refused.
    bot = await start_bot(sandbox, FLK_SLACK_API_URL="http://127.0.0.1:9/api/")
    try:
        status, reason = await readyz(bot.url)
        assert status == 503
        assert reason.startswith("Slack auth.test failed: cannot reach http://127.0.0.1:9/api/"), reason
        await bot.rt.store.ping()  # type: ignore[union-attr]
        assert bot.rt.schema_ready  # type: ignore[union-attr]
        # Still not ready on the next probe (failures are not cached as successes).
        assert (await readyz(bot.url))[0] == 503
    finally:
        await bot.stop()


async def test_not_ready_when_slack_refuses_the_token(sandbox: Sandbox) -> None:
    bot = await start_bot(sandbox, SLACK_BOT_TOKEN="xoxb-not-a-token-the-workspace-issued")
    try:
        status, reason = await readyz(bot.url)
        assert (status, reason) == (503, "Slack auth.test failed: invalid_auth")
    finally:
        await bot.stop()
