"""`/readyz`: ready once the incident store answers (schema migrated) and Slack's auth.test has
succeeded with the bot's token. A success is remembered for a while so that probes every few
seconds from each replica do not turn into auth.test calls; a failure is retried sooner."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.service.runtime import Runtime
from bot.slack.sender import MeteredWebClient
from integrations.store import StoreUnavailable


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str


class Readiness:
    def __init__(self, rt: Runtime, *, ok_ttl_s: float = 30.0, fail_ttl_s: float = 5.0, timeout_s: float = 5.0) -> None:
        self.rt = rt
        self.ok_ttl_s = ok_ttl_s
        self.fail_ttl_s = fail_ttl_s
        self.timeout_s = timeout_s
        self._slack: tuple[float, str | None] | None = None  # (monotonic time, failure or None)
        self._lock = asyncio.Lock()
        # The bot's client retries a dead connection for seconds; a probe wants the answer now.
        client = rt.io.client
        self._client: AsyncWebClient = MeteredWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=int(timeout_s),
            session=client.session,
            retry_handlers=[],
        )

    async def check(self) -> Verdict:
        try:
            await self.rt.store.ping()
        except StoreUnavailable:
            return Verdict(False, "incident store unavailable")
        if not self.rt.schema_ready:
            return Verdict(False, "incident store schema not migrated yet")
        failure = await self._slack_failure()
        if failure is not None:
            return Verdict(False, f"Slack auth.test failed: {failure}")
        return Verdict(True, "ready")

    async def _slack_failure(self) -> str | None:
        # One auth.test at a time: concurrent probes wait for it and share its answer.
        async with self._lock:
            if self._slack is not None:
                at, failure = self._slack
                if time.monotonic() - at < (self.ok_ttl_s if failure is None else self.fail_ttl_s):
                    return failure
            failure = await self._auth_test()
            self._slack = (time.monotonic(), failure)
            return failure

    async def _auth_test(self) -> str | None:
        try:
            await asyncio.wait_for(self._client.auth_test(), self.timeout_s)
        except SlackApiError as exc:
            return str(exc.response.get("error", "error")) if exc.response is not None else "error"
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"cannot reach {self.rt.settings.slack_api_url} ({type(exc).__name__})"
        return None
