"""Two real `flk serve` processes on the real PostgreSQL behind one front URL; see cluster.py."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.postgres import Postgres
from sandbox.testing import second_world_yaml
from sandbox.up import Sandbox
from tests.conftest import StartSandbox
from tests.replicas.cluster import Cluster

# The mitigation tests' settings (tests/bot/test_mitigations_slack.py): checks 4 s and 8 s after
# a change, so that "each check fires once" is seen within the test.
RUNBOOK = """\
slo: {window: 4s}
mitigations:
  authorised_groups: [S_ONCALL]
  oncall_group: S_ONCALL
  verify_delays_s: [4, 8]
"""


@pytest.fixture(scope="session")
async def replicas_sandbox(start_sandbox: StartSandbox) -> Sandbox:
    """A world of the replica tests' own: they apply mitigations and post in its channel."""
    return await start_sandbox(second_world_yaml(), incident_channel="C_GENERAL")


@pytest.fixture(scope="session")
def runbook_env() -> dict[str, str]:
    folder = Path(tempfile.mkdtemp(prefix="flk-replicas-config-"))
    (folder / "runbook.yaml").write_text(RUNBOOK)
    return {"FLK_CONFIG": str(folder / "runbook.yaml")}


@pytest.fixture(scope="module")
async def cluster(
    request: pytest.FixtureRequest, replicas_sandbox: Sandbox, postgres: Postgres, runbook_env: dict[str, str]
) -> AsyncIterator[Cluster]:
    """Two replicas on a database of this module's own (on the session's PostgreSQL server)."""
    name = "replicas_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    await postgres.drop_database(name)
    running = Cluster(replicas_sandbox, await postgres.create_database(name), runbook_env)
    try:
        yield await running.start(2)
    finally:
        await running.close()
        await postgres.drop_database(name)
