"""The fault tables' world: a generated one (seed 14) of their own, shared by both tables."""

from __future__ import annotations

import pytest

from sandbox.up import Sandbox
from sandbox.world.generate import generate
from tests.conftest import StartSandbox


@pytest.fixture(scope="session")
async def faults_sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(generate(14).yaml_text, incident_channel="C_SRE")
