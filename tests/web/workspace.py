"""A bare Slack emulator with its workspace page (no world, no bot), and what tests post into it."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator
from sandbox.web import WorkspacePage


@dataclass
class Workspace:
    slack: SlackEmulator
    page: WorkspacePage
    client: AsyncWebClient

    async def open(self, browser_page: Page, user: str = "U_ALICE", **where: str) -> None:
        """Show the page as ``user`` (``channel=``, ``thread=``) and wait until it is live."""
        fragment = "&".join(f"{k}={v}" for k, v in {"user": user, **where}.items())
        await browser_page.goto(f"{self.page.url}#{fragment}")
        await browser_page.locator("#connection.live").wait_for()
        channel = where.get("channel", "C_INCIDENTS")
        await browser_page.locator(f'.channel-link.active[data-channel="{channel}"]').wait_for()


@pytest.fixture
async def workspace() -> AsyncIterator[Workspace]:
    async with SlackEmulator() as slack, WorkspacePage(slack) as page:
        client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
        yield Workspace(slack, page, client)


def png(width: int = 8, height: int = 6) -> bytes:
    """A small real PNG (a red rectangle), as a chart upload would be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xe0\x1e\x5a" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
