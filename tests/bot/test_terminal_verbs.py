"""Every runbook verb from a terminal with no Slack configured, against a running world of its
own: the read-only steps, and a mitigation refused for an operator who is not authorised
(audited), applied for one who is, its checks scheduled, and undone."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import tempfile
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from commands.models import SCENARIO_TITLE
from commands.registry import REGISTRY
from integrations.store import Store
from sandbox.testing import second_world_yaml
from sandbox.up import Sandbox
from tests.conftest import StartSandbox

SLACK = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "FLK_SLACK_API_URL", "FLK_INCIDENT_CHANNEL")


@dataclass
class Terminal:
    sandbox: Sandbox
    env: dict[str, str]
    folder: Path

    async def flk(self, *args: str, **env: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", *args, env={**self.env, **env}, stdout=PIPE, stderr=PIPE, stdin=PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(b""), 120)
        return process.returncode or 0, out.decode() + err.decode()

    def audit(self) -> list[dict]:
        path = self.folder / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def tenant(self, scenario: str) -> str:
        return next(t for t, s in self.sandbox.live.world.tenants.items() if s.scenario == scenario)

    def data(self, name: str) -> dict[str, str]:
        obj = self.sandbox.kube_store.get("configmaps", self.sandbox.live.world.namespace, name)
        assert obj is not None
        return dict(obj["data"])


@pytest.fixture(scope="module")
async def term(start_sandbox: StartSandbox) -> AsyncIterator[Terminal]:
    sb = await start_sandbox(second_world_yaml(), incident_channel="C_TERMINAL")
    folder = Path(tempfile.mkdtemp(prefix="flk-terminal-"))
    (folder / "runbook.yaml").write_text("mitigations: {terminal_operators: [ann], verify_delays_s: [300, 600]}\n")
    env = {k: v for k, v in {**os.environ, **sb.env}.items() if k not in SLACK}
    env |= {
        "FLK_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'store.sqlite'}",
        "FLK_AUDIT_LOG": str(folder / "audit.jsonl"),
        "FLK_CONFIG": str(folder / "runbook.yaml"),
        "COLUMNS": "200",
    }
    yield Terminal(sb, env, folder)


async def test_help_lists_every_verb_slack_has(term: Terminal) -> None:
    _, out = await term.flk("--help")
    assert {v for v in REGISTRY if v != "help"} <= set(out.split("{", 1)[1].split("}", 1)[0].split(","))


async def test_triage_and_diagnose_without_slack_exit_1_on_a_breach(term: Terminal) -> None:
    tenant = term.tenant("quota")
    code, out = await term.flk("triage", tenant)
    assert code == 1, out
    assert SCENARIO_TITLE["quota"] in out
    healthy = term.tenant("none")
    code, out = await term.flk("triage", healthy)
    assert code == 0 and "No breach" in out, out
    code, out = await term.flk("diagnose", tenant, "quota", "--json")
    assert code == 1, out
    report = json.loads(out)
    assert report["tenant"] == tenant and report["verdict"]["scenario"] == "quota"


async def test_export_writes_the_csv_where_asked(term: Terminal, tmp_path: Path) -> None:
    tenant = term.tenant("escalations")
    target = tmp_path / "esc.csv"
    code, out = await term.flk("export", tenant, "escalations", "50", "--out", str(target))
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert 0 < len(rows) <= 50, out
    assert all(r["pcs_id"] for r in rows) and f"{len(rows)}" in out


async def test_bad_input_is_usage_and_changes_nothing(term: Terminal) -> None:
    code, out = await term.flk("mitigate", "../x", "quota")
    assert code == 2 and "not a valid tenant id" in out
    code, out = await term.flk("verify", "nosuchtenant")
    assert code == 2 and "nosuchtenant" in out


async def test_a_mitigation_refused_applied_checked_and_undone_from_the_terminal(term: Terminal) -> None:
    tenant = term.tenant("escalations")
    name = f"tenant-{tenant}"
    original = term.data(name)
    code, out = await term.flk("mitigate", tenant, "degraded-mode", "--yes", FLK_OPERATOR="mallory")
    assert code == 1 and "refused" in out, out
    assert term.data(name) == original
    refusal = [r for r in term.audit() if r["action"] == "refused"][-1]
    assert refusal["actor"] == "mallory" and refusal["details"]["via"] == "terminal"

    code, out = await term.flk("mitigate", tenant, "degraded-mode", "--json", FLK_OPERATOR="ann")
    assert code == 0, out
    plan_id = json.loads(out)["plan_id"]
    assert term.data(name) == original, "planning changes nothing"
    code, out = await term.flk("mitigate", "--confirm", plan_id, FLK_OPERATOR="ann")
    assert code == 0, out
    assert term.data(name)["strict_mode"] == "false"
    applied = [r for r in term.audit() if r["action"] == "mitigation.applied"][-1]
    assert applied["actor"] == "ann" and applied["details"]["plan_id"] == plan_id

    store = await Store.connect(term.env["FLK_DATABASE_URL"])
    try:
        incident = await store.find_open(tenant)
        assert incident is not None
        jobs = await store.jobs.for_incident(incident.id, ops=["slo_check"])
        checks = [c for c in jobs if c.payload.get("plan_id") == plan_id]
        assert sorted(c.payload["n"] for c in checks) == [1, 2]
    finally:
        await store.close()

    code, out = await term.flk("undo", plan_id, "--yes", FLK_OPERATOR="ann")
    assert code == 0, out
    assert term.data(name) == original
    code, out = await term.flk("status", tenant, "--json")
    assert code == 0 and json.loads(out)["incident"]["tenant"] == tenant


async def test_notice_silence_resolve_and_rca_from_the_terminal(term: Terminal, tmp_path: Path) -> None:
    tenant = term.tenant("signatures")
    code, out = await term.flk("triage", tenant)
    assert code == 1, out
    code, out = await term.flk("notify", tenant, "--json", FLK_OPERATOR="ann")
    assert code == 0, out
    draft = json.loads(out)
    assert "not sent" in draft["title"] and "%" in draft["text"], draft  # the measured SLI, not "a degradation"
    code, out = await term.flk("notify", tenant, "--send", FLK_OPERATOR="mallory")
    assert code == 1 and "refused" in out, out
    code, out = await term.flk("notify", tenant, "--send", FLK_OPERATOR="ann")
    assert code == 0 and "queued" in out, out
    code, out = await term.flk("silence", tenant, "30m", "noisy while we fix it", "--json", FLK_OPERATOR="ann")
    assert code == 0, out
    silence_id = json.loads(out)["silence_id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{term.sandbox.alertmanager_url}/api/v2/silences") as response,
    ):
        listed = await response.json(content_type=None)
    assert silence_id in {s["id"] for s in listed if s["status"]["state"] == "active"}
    code, out = await term.flk("resolve", tenant, "--yes", FLK_OPERATOR="ann")
    assert code == 0 and "RESOLVED" in out, out
    code, out = await term.flk("rca", tenant, "--out", str(tmp_path))
    assert code == 0, out
    written = await asyncio.to_thread(lambda: list(tmp_path.glob("*.md")))
    (document,) = [p for p in written if not p.name.startswith("rca-summary")]
    text = await asyncio.to_thread(document.read_text)
    assert "What was degraded" in text and "%" in text
    actions = [(r["actor"], r["action"]) for r in term.audit()]
    assert ("ann", "notice.send") in actions and ("ann", "incident.resolved") in actions
    assert ("ann", "silence.created") in actions
