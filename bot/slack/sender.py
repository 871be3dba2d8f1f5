"""Everything the bot sends to Slack goes through here: retries from slack_sdk's handlers, and a
per-channel limiter so bursts queue instead of provoking 429s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.service.telemetry import RATE_LIMIT_WAIT_SECONDS, SLACK_API_ERRORS, slack_error_code


class MeteredWebClient(AsyncWebClient):
    """Counts the calls that fail, by method and Slack's error code (after slack_sdk's retries)."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error is None and exc.response is not None:
                error = f"http_{exc.response.status_code}"
            SLACK_API_ERRORS.labels(method=api_method, error=slack_error_code(error)).inc()
            raise
        except (aiohttp.ClientError, OSError):
            SLACK_API_ERRORS.labels(method=api_method, error="connection").inc()
            raise
        except TimeoutError:
            SLACK_API_ERRORS.labels(method=api_method, error="timeout").inc()
            raise


class MeteredRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (it sleeps for Retry-After), with the sleep counted."""

    async def prepare_for_next_attempt_async(self, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            await super().prepare_for_next_attempt_async(**kwargs)
        finally:
            RATE_LIMIT_WAIT_SECONDS.labels(source="slack_429").observe(time.monotonic() - started)


def make_client(token: str, base_url: str) -> AsyncWebClient:
    # A shared session keeps connections alive; without one every call opens a new connection.
    client = MeteredWebClient(token=token, base_url=base_url, timeout=10, session=aiohttp.ClientSession())
    client.retry_handlers.extend(
        [
            MeteredRateLimitHandler(max_retry_count=5),
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ]
    )
    return client


class ChannelLimiter:
    """A token bucket per channel: Slack allows about one message per second per channel."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._state: dict[str, tuple[float, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        if self.rate <= 0:
            return
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            tokens, last = self._state.get(channel, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                wait_s = (1 - tokens) / self.rate
                RATE_LIMIT_WAIT_SECONDS.labels(source="limiter").observe(wait_s)
                await asyncio.sleep(wait_s)
                now = time.monotonic()
                tokens = 1.0
            self._state[channel] = (tokens - 1, now)


class SlackIO:
    def __init__(self, client: AsyncWebClient, limiter: ChannelLimiter) -> None:
        self.client = client
        self.limiter = limiter

    async def post(
        self, channel: str, text: str, blocks: list[Block] | None = None, thread_ts: str | None = None, **extra: Any
    ) -> AsyncSlackResponse:
        await self.limiter.wait(channel)
        return await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False, **extra
        )

    async def update(self, channel: str, ts: str, text: str, blocks: list[Block] | None = None) -> None:
        await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    async def upload(
        self,
        channel: str,
        thread_ts: str | None,
        filename: str,
        content: str | bytes | Path,
        title: str,
        comment: str = "",
    ) -> None:
        """``content``: the file's text or bytes, or a Path to upload from (read by slack_sdk)."""
        await self.limiter.wait(channel)
        body = {"file": str(content)} if isinstance(content, Path) else {"content": content}
        await self.client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            title=title,
            initial_comment=comment or None,
            **body,
        )

    async def permalink(self, channel: str, ts: str) -> str | None:
        response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        return response.get("permalink")
