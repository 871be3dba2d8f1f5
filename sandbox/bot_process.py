"""The bot as its own process (`flk serve`) against a running sandbox, exactly as deployed: for the
demo and the screenshots, which never import the bot."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from sandbox.up import Sandbox

READY_WITHIN_S = 30.0
STOP_WITHIN_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), READY_WITHIN_S)).decode()
        if not line:
            raise RuntimeError("the bot exited before it was ready")
        if line.startswith("flk ready"):
            return line.strip()


@contextlib.asynccontextmanager
async def bot_process(sb: Sandbox, work: Path, runbook_yaml: str, **env: str) -> AsyncIterator[str]:
    """Start `flk serve` with the runbook config ``runbook_yaml`` and its files in ``work``; yields
    its "flk ready" line once it listens, with Alertmanager and the workspace page aimed at it."""
    config = work / "runbook.yaml"
    config.write_text(runbook_yaml, encoding="utf-8")
    port = free_port()
    settings = {
        **os.environ,
        **sb.env,
        "FLK_LISTEN": f"127.0.0.1:{port}",
        "FLK_DATABASE_URL": f"sqlite:///{work / 'incidents.sqlite'}",
        "FLK_CONFIG": str(config),
        "FLK_AUDIT_LOG": str(work / "audit.jsonl"),
        **env,
    }
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=settings, stdout=asyncio.subprocess.PIPE
    )
    try:
        ready = await _wait_ready(bot)
        await sb.set_alert_webhook(f"http://127.0.0.1:{port}/alerts/alertmanager")
        sb.set_bot_url(f"http://127.0.0.1:{port}/slack/events")
        yield ready
    finally:
        bot.terminate()
        try:
            await asyncio.wait_for(bot.wait(), STOP_WITHIN_S)
        except TimeoutError:
            bot.kill()
            await bot.wait()
