"""The bot under test: one per world, started in-process, spoken to over signed HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.up import Sandbox
from tests.bot.harness import Harness, running


@pytest.fixture(scope="session")
async def harness(sandbox: Sandbox) -> AsyncIterator[Harness]:
    async with running(sandbox) as h:
        yield h


@pytest.fixture(scope="session")
async def second_harness(second_sandbox: Sandbox) -> AsyncIterator[Harness]:
    async with running(second_sandbox) as h:
        yield h
