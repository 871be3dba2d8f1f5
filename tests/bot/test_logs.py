"""Structured logs: JSON lines naming the incident, tenant and user they are about, and never a
secret: not in the message, its arguments, an exception or a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import sys
import tempfile
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from pathlib import Path

from bot.service.logs import REDACTED, bind, configure
from bot.service.settings import secret_values
from sandbox.slack import SlackDriver
from sandbox.up import Sandbox
from tests.bot.harness import healthy_tenant

ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-botsecretvalue",
    "SLACK_SIGNING_SECRET": "signing-secret-8c1f0e",
    "SLACK_APP_TOKEN": "xapp-1-A111-apptokenvalue",
    "FLK_ALERT_WEBHOOK_TOKEN": "webhook-token-5d2a",
    "FLK_GRAFANA_TOKEN": "glsa_grafana_token_77e1",
    "FLK_KUBE_TOKEN": "kube-token-eyJhbGciOi",
    "FLK_DATABASE_URL": "postgresql+psycopg://flk:db-password-93b4@postgres:5432/flk",
}
SECRETS = [
    "xoxb-1111-2222-botsecretvalue",
    "signing-secret-8c1f0e",
    "xapp-1-A111-apptokenvalue",
    "webhook-token-5d2a",
    "glsa_grafana_token_77e1",
    "kube-token-eyJhbGciOi",
    "db-password-93b4",
]


@contextlib.contextmanager
def captured(fmt: str) -> Iterator[io.StringIO]:
    """The bot's logging set up as `flk` does it, into a buffer; the test runner's restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in ("bot", "commands")})
    stream = io.StringIO()
    configure(fmt, secret_values(ENV), stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def test_secret_values_are_read_from_every_secret_setting_and_the_database_password() -> None:
    assert sorted(secret_values(ENV)) == sorted(SECRETS)


async def test_json_lines_carry_the_context_and_no_secret() -> None:
    async def handle_a_command() -> None:
        # As the bot does: bound in the task that handles the work.
        bind(incident_id=42, tenant_id="acme", user="U_ALICE")
        log = logging.getLogger("bot.test")
        log.info("called Slack with %s and signed with %s", ENV["SLACK_BOT_TOKEN"], ENV["SLACK_SIGNING_SECRET"])
        log.warning("database %s unreachable", ENV["FLK_DATABASE_URL"])
        try:
            raise RuntimeError(f"Grafana said no to {ENV['FLK_GRAFANA_TOKEN']} (pasted: xoxp-9-8-7-usertoken)")
        except RuntimeError:
            log.exception("annotation failed; header Authorization: Bearer %s", ENV["FLK_KUBE_TOKEN"])
        # The next piece of work in the same task (as the check sweep does) names only itself.
        bind(incident_id=43, tenant_id=None, user=None)
        log.info("next check")

    with captured("json") as stream:
        await asyncio.create_task(handle_a_command())
        logging.getLogger("bot.test").info("outside any command, app token %s", ENV["SLACK_APP_TOKEN"])
    output = stream.getvalue()
    for secret in [*SECRETS, "xoxp-9-8-7-usertoken"]:
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 5
    for line in lines[:3]:
        assert (line["incident_id"], line["tenant_id"], line["user"]) == (42, "acme", "U_ALICE")
        assert line["logger"] == "bot.test" and line["ts"].endswith("+00:00")
    assert lines[0]["message"] == f"called Slack with {REDACTED} and signed with {REDACTED}"
    assert lines[1]["message"] == f"database postgresql+psycopg://flk:{REDACTED}@postgres:5432/flk unreachable"
    assert lines[2]["level"] == "error"
    assert "Traceback" in lines[2]["exception"] and f"Grafana said no to {REDACTED}" in lines[2]["exception"]
    assert lines[2]["message"] == f"annotation failed; header Authorization: Bearer {REDACTED}"
    assert (lines[3]["incident_id"], lines[3]["tenant_id"], lines[3]["user"]) == (43, None, None)
    # The context was the task's: a line logged elsewhere names nothing.
    assert (lines[4]["incident_id"], lines[4]["tenant_id"], lines[4]["user"]) == (None, None, None)
    assert lines[4]["message"] == f"outside any command, app token {REDACTED}"


def test_text_lines_are_redacted_too() -> None:
    with captured("text") as stream:
        logging.getLogger("bot.test").warning("token %s", ENV["SLACK_BOT_TOKEN"])
    assert stream.getvalue().rstrip().endswith(f"bot.test token {REDACTED}")
    assert ENV["SLACK_BOT_TOKEN"] not in stream.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_flk_serve_logs_each_command_as_json_with_its_context_and_no_secret(sandbox: Sandbox) -> None:
    tenant = healthy_tenant(sandbox)
    breaching = next(t for t, s in sandbox.live.world.tenants.items() if s.remedy is not None)
    port = free_port()
    database = Path(tempfile.mkdtemp(prefix="flk-test-db-")) / "logs.sqlite"
    env = {
        **os.environ,
        **sandbox.env,
        "FLK_LISTEN": f"127.0.0.1:{port}",
        "FLK_LOG_FORMAT": "json",
        "FLK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FLK_ALERT_WEBHOOK_TOKEN": ENV["FLK_ALERT_WEBHOOK_TOKEN"],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=env, stdout=PIPE, stderr=PIPE
    )
    driver = SlackDriver(sandbox.slack, f"http://127.0.0.1:{port}/slack/events")
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 60)
        assert ready.startswith(b"flk ready"), ready
        # An unknown tenant: answered at once, logged with the person and the tenant they named.
        assert (await driver.slash("triage no-such-tenant-logs", user="U_BOB")).status == 200
        await sandbox.slack.wait_for(
            lambda: any("unknown tenant `no-such-tenant-logs`" in e.all_text() for e in sandbox.slack.ephemerals())
        )
        assert (await driver.slash(f"triage {tenant}", user="U_ALICE")).status == 200
        assert (await driver.slash(f"export {breaching} escalations 5", user="U_ALICE")).status == 200
        await asyncio.sleep(1.0)
    finally:
        await driver.close()
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
    text = err.decode()
    for secret in (sandbox.env["SLACK_BOT_TOKEN"], sandbox.env["SLACK_SIGNING_SECRET"], ENV["FLK_ALERT_WEBHOOK_TOKEN"]):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    commands = {line["message"]: line for line in lines if line["message"].startswith("command ")}
    usage = commands["command triage: usage"]
    assert (usage["user"], usage["tenant_id"], usage["incident_id"]) == ("U_BOB", "no-such-tenant-logs", None)
    # A healthy tenant's triage runs in the channel: there is no incident to name.
    ok = commands["command triage: ok"]
    assert (ok["user"], ok["tenant_id"], ok["incident_id"]) == ("U_ALICE", tenant, None)
    exported = commands["command export: ok"]
    assert (exported["user"], exported["tenant_id"]) == ("U_ALICE", breaching)
    assert isinstance(exported["incident_id"], int)
    assert all(set(line) >= {"ts", "level", "logger", "message", "incident_id", "tenant_id", "user"} for line in lines)
