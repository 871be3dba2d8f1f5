"""The mitigation flow wired as the bot wires it, Slack-free: a Kubernetes fake of its own, a
real SQLite store and audit log, and an authority whose members a test chooses."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from commands.config import RunbookConfig
from commands.flows.actors import Actor
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import JobQueue
from commands.flows.mitigation import MitigationFlow
from commands.flows.notices import Notice
from commands.flows.record import Recorder
from commands.flows.verification import Verification
from commands.tenants import well_formed
from integrations.audit import AuditLog
from integrations.store import Incident, Store
from sandbox.world.spec import World
from tests.commands.mitigate_support import KubeWorld, kube_world


@dataclass
class Members:
    """Who may change the cluster; ``calls`` counts the fresh checks asked."""

    ids: set[str]
    fresh_calls: int = 0

    async def may_change(self, actor: Actor, *, fresh: bool = False) -> bool:
        self.fresh_calls += fresh
        return actor.id in self.ids


class WorldTenants:
    """The tenants the world has (in the bot: the ones Prometheus knows)."""

    def __init__(self, world: World) -> None:
        self.names = set(world.tenants)

    async def refuse(self, tenant: str) -> str | None:
        if not well_formed(tenant):
            return f"`{tenant[:40]}` is not a valid tenant id"
        return None if tenant in self.names else f"unknown tenant `{tenant}`"


@dataclass
class SaidInThread:
    said: list[tuple[str, Notice]] = field(default_factory=list)

    async def tell(self, incident: Incident, notice: Notice, *, key: str) -> None:
        if key not in {k for k, _ in self.said}:
            self.said.append((key, notice))


@dataclass
class FlowWorld:
    kw: KubeWorld
    store: Store
    flow: MitigationFlow
    members: Members
    thread: SaidInThread
    audit_path: Path

    def audit_actions(self) -> list[str]:
        import json

        return [json.loads(line)["action"] for line in self.audit_path.read_text().splitlines()]


@contextlib.asynccontextmanager
async def flow_world(world: World, config: RunbookConfig | None = None) -> AsyncIterator[FlowWorld]:
    folder = Path(tempfile.mkdtemp(prefix="flk-flow-"))
    async with kube_world(world, config) as kw:
        kw.ctx = replace(kw.ctx, tenants=WorldTenants(world))  # type: ignore[arg-type]
        store = await Store.connect(f"sqlite+aiosqlite:///{folder / 'store.sqlite'}")
        try:
            members = Members({"U_ALICE", "U_BOB"})
            thread = SaidInThread()
            recorder = Recorder(store, AuditLog(folder / "audit.jsonl"))
            jobs = JobQueue(store)
            opener = IncidentOpener(store, jobs, "C_INC")
            gate = Gate(members, recorder)
            verification = Verification(kw.ctx, store, jobs, recorder, thread, opener, gate)
            flow = MitigationFlow(kw.ctx, store, gate, recorder, thread, jobs, opener, verification)
            yield FlowWorld(kw, store, flow, members, thread, folder / "audit.jsonl")
        finally:
            await store.close()
