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
    try:
        yield Harness(sandbox, bot, SlackDriver(sandbox.slack, f"{bot.url}/slack/events"))
    finally:
        await bot.stop()


@pytest.fixture(scope="session")
async def second_harness(second_sandbox: Sandbox) -> AsyncIterator[Harness]:
    bot = await start_bot(second_sandbox)
    try:
        yield Harness(second_sandbox, bot, SlackDriver(second_sandbox.slack, f"{bot.url}/slack/events"))
    finally:
        await bot.stop()
