"""The fault tables' world: a generated one of their own (seed 5: seven tenants, four in strict mode)."""

from __future__ import annotations

import pytest

from sandbox.up import Sandbox
from sandbox.world.generate import generate
from tests.conftest import StartSandbox


@pytest.fixture(scope="session")
async def faults_sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(generate(5).yaml_text, incident_channel="C_SRE")
