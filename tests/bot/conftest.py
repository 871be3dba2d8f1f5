"""The bot under test: one per world, started in-process, spoken to over signed HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import Harness, start_bot


@pytest.fixture(scope="session")
async def harness(sandbox: Sandbox) -> AsyncIterator[Harness]:
    bot = await start_bot(sandbox)
    driver = SlackDriver(sandbox.slack, f"{bot.url}/slack/events")
    try:
        yield Harness(sandbox, bot, driver)
    finally:
        await driver.close()
        await bot.stop()


@pytest.fixture(scope="session")
async def second_harness(second_sandbox: Sandbox) -> AsyncIterator[Harness]:
    bot = await start_bot(second_sandbox)
    driver = SlackDriver(second_sandbox.slack, f"{bot.url}/slack/events")
    try:
        yield Harness(second_sandbox, bot, driver)
    finally:
        await driver.close()
        await bot.stop()
