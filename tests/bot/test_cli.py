"""The terminal side: `flk triage` works without Slack; bad settings stop start-up with one line."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE

import pytest

from commands.models import SCENARIO_TITLE
from sandbox.up import Sandbox


async def flk(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_triage_in_a_terminal_names_the_scenario(sandbox: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant, spec = next((t, s) for t, s in sandbox.live.world.tenants.items() if s.scenario != "none")
    # The terminal records the verdict on the incident: in a store of this test's own.
    own = {
        "FLK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite'}",
        "FLK_AUDIT_LOG": str(tmp_path / "a.jsonl"),
    }
    code, out, err = await flk("triage", tenant, env={**os.environ, **sandbox.env, **own, "COLUMNS": "200"})
    assert code == 1, ("a breach exits 1", err[-2000:])
    assert SCENARIO_TITLE[spec.scenario] in out, err[-3000:]
    assert "Escalation ratio (5m)" in out


async def test_triage_in_a_terminal_refuses_bad_input(sandbox: Sandbox) -> None:
    code, out, _ = await flk("triage", "../etc", env={**os.environ, **sandbox.env, "FLK_DATABASE_URL": "sqlite://"})
    assert code == 2
    assert "is not a valid tenant id" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SLACK_BOT_TOKEN": None}, "flk: SLACK_BOT_TOKEN: required setting is missing"),
        ({"FLK_LISTEN": "nowhere"}, "flk: FLK_LISTEN: expected host:port, got 'nowhere'"),
        ({"FLK_PROMETHEUS_URL": "prometheus:9090"}, "flk: FLK_PROMETHEUS_URL: expected an http(s) URL"),
    ],
)
async def test_a_bad_setting_stops_start_up_with_one_line(
    sandbox: Sandbox, change: dict[str, str | None], expected: str
) -> None:
    env = {**os.environ, **sandbox.env}
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    code, out, err = await flk("serve", env=env)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith(expected), err
    assert out == ""


async def test_a_bad_runbook_config_names_the_setting(sandbox: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "runbook.yaml"
    config.write_text("slo: {escalation_ratio: 2}\n")
    code, _, err = await flk("serve", env={**os.environ, **sandbox.env, "FLK_CONFIG": str(config)})
    assert code == 2
    assert err.startswith(f"flk: FLK_CONFIG {config}: slo.escalation_ratio:"), err


async def test_a_torn_audit_log_is_recovered_when_the_bot_starts(sandbox: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from integrations.audit import AuditLog
    from tests.bot.harness import start_bot

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append("U_ALICE", "mitigation.planned", tenant="acme", details={"plan_id": "abc123"})
    with path.open("ab") as handle:  # a crash in the middle of the next record
        handle.write(b'{"seq": 2, "at": "2026-12-02T10:00:00Z", "actor": "U_AL')
    bot = await start_bot(sandbox, FLK_AUDIT_LOG=str(path))
    await bot.stop()
    code, out, err = await flk("audit", "verify", str(path), env={**os.environ})
    assert code == 0, (out, err)
    assert "recovered once" in out and "bytes dropped" in out, out
