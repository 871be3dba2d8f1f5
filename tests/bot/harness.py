"""A bot started in-process against a running sandbox, and readers for what it posted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.app import Bot
from bot.settings import load_settings
from sandbox.slack import SlackDriver
from sandbox.slack.models import Message
from sandbox.up import Sandbox


async def start_bot(sandbox: Sandbox, *, socket_mode: bool = False, **env: str) -> Bot:
    settings, config = load_settings(
        {**sandbox.env, "FLK_LISTEN": "127.0.0.1:0", "FLK_PROGRESS_INTERVAL_S": "0.2", **env}
    )
    bot = Bot(settings, config, channel_rate=0)
    await bot.start(socket_mode=socket_mode)
    return bot


@dataclass
class Harness:
    sandbox: Sandbox
    bot: Bot
    driver: SlackDriver

    @property
    def channel(self) -> str:
        return self.sandbox.incident_channel

    def parent(self, tenant: str) -> Message | None:
        for message in self.sandbox.slack.channel_messages(self.channel):
            if f"*{tenant}*" in message.text:
                return message
        return None

    def thread(self, tenant: str) -> list[Message]:
        parent = self.parent(tenant)
        return self.sandbox.slack.thread(self.channel, parent.ts) if parent else []

    def summaries(self, tenant: str, step: str = "Triage") -> list[Message]:
        header = f"{step} · {tenant} · "
        return [
            m
            for m in self.thread(tenant)
            if any(b.get("type") == "header" and b["text"]["text"].startswith(header) for b in m.blocks)
        ]

    async def wait_summary(self, tenant: str, count: int = 1, wait_s: float = 30) -> Message:
        await self.sandbox.slack.wait_for(lambda: len(self.summaries(tenant)) >= count, timeout=wait_s)
        return self.summaries(tenant)[-1]


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
