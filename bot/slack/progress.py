"""A step's progress message in the thread: one checklist, edited as probes finish.

Edits are coalesced (at most one per `interval_s`) because `chat.update` is rate limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from slack_sdk.models.messages.chunk import PlanUpdateChunk, TaskUpdateChunk

from bot.slack.limits import clip
from bot.slack.render import progress_blocks
from bot.slack.sender import SlackIO
from commands.models import Finding, Probe, Status

log = logging.getLogger(__name__)


class Progress:
    def __init__(
        self,
        io: SlackIO,
        channel: str,
        thread_ts: str | None,
        step: str,
        tenant: str,
        probes: list[Probe],
        interval_s: float,
    ) -> None:
        self.io = io
        self.channel = channel
        self.thread_ts = thread_ts
        self.step = step
        self.tenant = tenant
        self.probes = probes
        self.interval_s = interval_s
        self.done: dict[str, Finding] = {}
        self.ts: str | None = None
        self._last_edit = 0.0
        self._finished = False
        self._pending: asyncio.Task[None] | None = None

    def _text(self) -> str:
        return f"{self.step} of {self.tenant}: {len(self.done)}/{len(self.probes)} probes done"

    async def start(self, resume_ts: str | None = None) -> None:
        """Post the checklist, or take over ``resume_ts``: the one an interrupted run of the
        same step posted, so that a retry does not leave a second, never-finished checklist."""
        if resume_ts is not None:
            self.ts = resume_ts
            await self._edit()
            return
        blocks = progress_blocks(self.step, self.tenant, self.probes, self.done)
        response = await self.io.post(self.channel, self._text(), blocks, thread_ts=self.thread_ts)
        self.ts = response["ts"]
        self._last_edit = time.monotonic()

    async def on_finding(self, finding: Finding) -> None:
        self.done[finding.key] = finding
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        delay = self._last_edit + self.interval_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await self._edit()

    async def _edit(self) -> None:
        if self.ts is None:
            return
        self._last_edit = time.monotonic()
        blocks = progress_blocks(self.step, self.tenant, self.probes, self.done, finished=self._finished)
        try:
            await self.io.update(self.channel, self.ts, self._text(), blocks)
        except Exception:
            # A missed progress edit is cosmetic; the final edit and the summary carry the facts.
            log.warning("progress edit failed", exc_info=True)

    async def finish(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
        self._finished = True
        await self._edit()


class NativeProgress(Progress):
    """The same checklist as Slack's own streamed task plan (chat.startStream / appendStream /
    stopStream), for workspaces that have it; updates are coalesced the same way."""

    def __init__(
        self,
        io: SlackIO,
        channel: str,
        thread_ts: str,
        step: str,
        tenant: str,
        probes: list[Probe],
        interval_s: float,
        recipient: tuple[str, str],
    ) -> None:
        super().__init__(io, channel, thread_ts, step, tenant, probes, interval_s)
        self.recipient = recipient  # (user id, team id): Slack streams to a person
        self._unsent: list[Finding] = []

    async def start(self, resume_ts: str | None = None) -> None:
        # A stopped or abandoned stream cannot be appended to again: a retry starts its own.
        chunks = [PlanUpdateChunk(title=f"{self.step.capitalize()} of {self.tenant}")]
        chunks += [TaskUpdateChunk(id=p.key, title=p.title, status="in_progress") for p in self.probes]
        response = await self.io.client.chat_startStream(
            channel=self.channel,
            thread_ts=self.thread_ts,
            task_display_mode="plan",
            chunks=chunks,
            recipient_user_id=self.recipient[0],
            recipient_team_id=self.recipient[1],
        )
        self.ts = response["ts"]
        self._last_edit = time.monotonic()

    async def on_finding(self, finding: Finding) -> None:
        self._unsent.append(finding)
        await super().on_finding(finding)

    async def _edit(self) -> None:
        if self.ts is None or not self._unsent:
            return
        sent, self._unsent = self._unsent, []
        self._last_edit = time.monotonic()
        chunks = [
            TaskUpdateChunk(
                id=f.key,
                title=f.title,
                status="error" if f.status is Status.ERROR else "complete",
                output=clip(f.summary, 300),
            )
            for f in sent
        ]
        try:
            await self.io.client.chat_appendStream(channel=self.channel, ts=self.ts, chunks=chunks)
        except Exception:
            log.warning("stream append failed", exc_info=True)

    async def finish(self) -> None:
        await super().finish()
        if self.ts is not None:
            await self.io.client.chat_stopStream(
                channel=self.channel, ts=self.ts, markdown_text=f"{len(self.done)}/{len(self.probes)} probes done"
            )
