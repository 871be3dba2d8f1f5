"""A bot started in-process against a running sandbox, and readers for what it posted."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.service.app import Bot
from bot.service.settings import load_settings
from sandbox.slack import SlackDriver
from sandbox.slack.models import Message
from sandbox.up import Sandbox


async def start_bot(sandbox: Sandbox, *, socket_mode: bool = False, **env: str) -> Bot:
    """A bot on a free port with its own SQLite incident store (unless env names another)."""
    folder = Path(tempfile.mkdtemp(prefix="flk-test-db-"))
    database = folder / "incidents.sqlite"
    # Unless a test brings its own runbook config: U_ALICE and U_BOB (S_ONCALL) may change things.
    (folder / "runbook.yaml").write_text("mitigations: {authorised_groups: [S_ONCALL]}\n")
    settings, config = load_settings(
        {
            **sandbox.env,
            "FLK_LISTEN": "127.0.0.1:0",
            "FLK_PROGRESS_INTERVAL_S": "0.2",
            "FLK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "FLK_CONFIG": str(folder / "runbook.yaml"),
            "FLK_AUDIT_LOG": str(folder / "audit.jsonl"),
            **env,
        }
    )
    bot = Bot(settings, config, channel_rate=0)
    await bot.start(socket_mode=socket_mode)
    return bot


def runbook_files(config: str, prefix: str) -> dict[str, str]:
    """Settings for a bot with the runbook config ``config`` and an audit log of its own."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    (folder / "runbook.yaml").write_text(config)
    return {"FLK_CONFIG": str(folder / "runbook.yaml"), "FLK_AUDIT_LOG": str(folder / "audit.jsonl")}


@contextlib.asynccontextmanager
async def running(sandbox: Sandbox, **env: str) -> AsyncIterator[Harness]:
    """A bot (see start_bot) and a Slack driver aimed at it, both stopped afterwards."""
    bot = await start_bot(sandbox, **env)
    driver = SlackDriver(sandbox.slack, f"{bot.url}/slack/events")
    try:
        yield Harness(sandbox, bot, driver)
    finally:
        await driver.close()
        await bot.stop()


@dataclass
class Harness:
    sandbox: Sandbox
    bot: Bot
    driver: SlackDriver

    @property
    def channel(self) -> str:
        return self.sandbox.incident_channel

    def __post_init__(self) -> None:
        self._threads: dict[str, str] = {}

    def answers(self, tenant: str) -> list[str]:
        """The channel messages a triage or diagnose ran in while the tenant had no incident
        (each its checklist, with the report in its thread), oldest first."""
        starts = (f"triage of {tenant}:", f"diagnose of {tenant}:")
        return [m.ts for m in self.sandbox.slack.channel_messages(self.channel) if m.text.startswith(starts)]

    async def thread_ts(self, tenant: str, wait_s: float = 15, *, incident: bool = False) -> str:
        """The tenant's incident thread, as the bot's store knows it (waits for the parent post),
        else (unless ``incident``) the latest channel answer of a step that opened none."""
        assert self.bot.rt is not None
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            found = await self.bot.rt.store.find_open(tenant)
            if found is not None and found.thread_ts:
                self._threads[tenant] = found.thread_ts
                return found.thread_ts
            answers = [] if incident else self.answers(tenant)
            if answers:
                self._threads[tenant] = answers[-1]
                return answers[-1]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no incident thread for {tenant}")
            await asyncio.sleep(0.05)

    def parent(self, tenant: str) -> Message | None:
        ts = self._threads.get(tenant)
        return self.sandbox.slack.message(self.channel, ts) if ts else None

    def thread(self, tenant: str) -> list[Message]:
        ts = self._threads.get(tenant)
        return self.sandbox.slack.thread(self.channel, ts) if ts else []

    def summaries(self, tenant: str, step: str = "Triage") -> list[Message]:
        """The step's reports for the tenant: in its incident thread and in its channel answers."""
        header = f"{step} · {tenant} · "
        threads = dict.fromkeys([*self.answers(tenant), *filter(None, [self._threads.get(tenant)])])
        return sorted(
            (
                m
                for ts in threads
                for m in self.sandbox.slack.thread(self.channel, ts)
                if any(b.get("type") == "header" and b["text"]["text"].startswith(header) for b in m.blocks)
            ),
            key=lambda m: float(m.ts),
        )

    async def wait_summary(self, tenant: str, count: int = 1, wait_s: float = 30, step: str = "Triage") -> Message:
        """The ``count``-th report of the step for the tenant, in its incident thread or in the
        channel (the incident's thread is followed as soon as it is posted)."""
        assert self.bot.rt is not None
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(self.summaries(tenant, step)) < count:
            found = await self.bot.rt.store.find_open(tenant)
            if found is not None and found.thread_ts:
                self._threads[tenant] = found.thread_ts
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no {step} report {count} for {tenant}")
            await asyncio.sleep(0.05)
        await self.thread_ts(tenant, wait_s)
        return self.summaries(tenant, step)[-1]


def percent(message: Message, title: str) -> float:
    """The percentage a finding shows first, e.g. 'Escalation ratio (5m)* · 4.1%' -> 0.041."""
    match = re.search(re.escape(title) + r"\* · ([\d.]+)%", message.all_text())
    assert match, f"{title!r} not in summary:\n{message.all_text()}"
    return float(match.group(1)) / 100


def verdict_line(message: Message) -> str:
    for block in message.blocks:
        text: Any = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict) and text["text"].startswith("*"):
            return text["text"].split("\n")[0]
    raise AssertionError(f"no verdict in:\n{message.all_text()}")


async def triage_once(h: Harness, tenant: str, **slash: Any) -> Message:
    """Send `/flk triage <tenant>` and wait for the summary it adds to the tenant's thread."""
    if tenant in h._threads or await h.bot.rt.store.find_open(tenant):  # type: ignore[union-attr]
        await h.thread_ts(tenant)
    before = len(h.summaries(tenant))
    delivery = await h.driver.slash(f"triage {tenant}", **slash)
    assert delivery.status == 200, delivery
    return await h.wait_summary(tenant, count=before + 1)


def healthy_tenant(sandbox: Sandbox) -> str:
    return next(t for t, spec in sandbox.live.world.tenants.items() if spec.scenario == "none")


async def eventually(check: Any, wait_s: float = 10) -> None:
    """Await ``check()`` (an async predicate) until it is true; fail after ``wait_s``."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {wait_s:g} s: {check.__name__}")
        await asyncio.sleep(0.05)
