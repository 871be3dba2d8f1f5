"""Running worlds shared by the whole test session: starting one costs seconds (Prometheus
answers a scraped sample only ~5 s after it starts), so each world runs once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sandbox.testing import sandbox_for, second_world_yaml
from sandbox.up import Sandbox

# The real PostgreSQL (one server per session) for every folder's tests.
pytest_plugins = ["tests.store.fixtures"]

StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture(scope="session")
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    """``await start_sandbox(world_yaml, **options)``: a running Sandbox, stopped at the session's end.

    The same world text with the same options gives the same (shared) Sandbox.
    """
    running: dict[str, Sandbox] = {}
    async with contextlib.AsyncExitStack() as stack:

        async def start(world_yaml: str, **options: Any) -> Sandbox:
            key = world_yaml + repr(sorted(options.items()))
            if key not in running:
                running[key] = await stack.enter_async_context(sandbox_for(world_yaml, **options))
            return running[key]

        yield start


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    """The default world, running."""
    async with Sandbox() as running:
        yield running


@pytest.fixture(scope="session")
async def second_sandbox(start_sandbox: StartSandbox) -> Sandbox:
    """A second world with other tenant names and numbers, running."""
    return await start_sandbox(second_world_yaml())
