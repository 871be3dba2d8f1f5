"""The Slack emulator: one aiohttp server per sandbox workspace.

Point the real client at it::

    async with SlackEmulator(SlackConfig()) as slack:
        client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel="C_INCIDENTS", text="hi")
        assert slack.channel_messages("C_INCIDENTS")[0].text == "hi"

URLs it serves: ``/api/<method>`` (Web API), ``/hooks/...`` (response_url),
``/upload/v1/<ticket>`` (upload URLs), ``/files/<id>/<name>`` (url_private, bot token),
``/link/?ticket=`` (Socket Mode WebSocket from apps.connections.open).

Where it knowingly differs from Slack: a well-formed ``thread_ts`` of no message is refused
with ``thread_not_found`` (Slack accepts it and the reply is lost from view); a used-up or
expired response_url answers 404 ``expired_url`` and an unknown one 404 ``no_service``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from sandbox.slack.api import WORKSPACE, handle_api
from sandbox.slack.config import RateLimit, SlackConfig
from sandbox.slack.hooks import handle_file_download, handle_response_url, handle_upload
from sandbox.slack.models import Call, Ephemeral, File, Message, View
from sandbox.slack.socket_mode import SocketModeServer
from sandbox.slack.workspace import Workspace

T = TypeVar("T")


class SlackEmulator:
    def __init__(self, config: SlackConfig | None = None) -> None:
        self.config = config or SlackConfig()
        self.workspace = Workspace(self.config)
        self.socket = SocketModeServer(self.workspace)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_upload_bytes + 1024 * 1024)
        app[WORKSPACE] = self.workspace
        app.router.add_route("*", "/api/{method}", handle_api)
        app.router.add_post("/hooks/{kind}/{team}/{n}/{token}", handle_response_url)
        app.router.add_post("/upload/v1/{token}", handle_upload)
        app.router.add_get("/files/{file_id}/{name}", handle_file_download)
        app.router.add_get("/link/", self.socket.handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (port 0: any free port; see ``self.port``)."""
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.workspace.base_url = f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        await self.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return self.workspace.base_url

    @property
    def api_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)`` (with the trailing slash it needs)."""
        return f"{self.workspace.base_url}api/"

    # --- knobs for tests ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the transcript, views, files, calls and rate-limit buckets."""
        self.workspace.reset()

    def set_rate_limit(self, method: str, limit: RateLimit | None) -> None:
        """Replace one method's limit (None: unlimited); its bucket starts full."""
        self.workspace.limiter.set(method, limit)

    def set_channel_post_limit(self, limit: RateLimit | None) -> None:
        self.config.channel_post_limit = limit
        self.workspace.limiter.reset()

    def set_rate_limits_enabled(self, enabled: bool) -> None:
        self.workspace.limiter.enabled = enabled

    def add_user_message(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Message:
        """A message a person posted (seed for threads, reactions, events)."""
        found = self.workspace.resolve_channel(channel)
        if found is None:
            raise KeyError(f"unknown channel {channel!r}")
        msg = Message(found.id, self.workspace.next_ts(), user, text, thread_ts=thread_ts, bot=False)
        return self.workspace.add_message(msg)

    # --- transcript ---------------------------------------------------------------------------

    def channel_id(self, channel: str) -> str:
        """The id of a channel given by id or name (KeyError if unknown)."""
        found = self.workspace.resolve_channel(channel)
        if found is None:
            raise KeyError(f"unknown channel {channel!r}")
        return found.id

    def channel_messages(self, channel: str, *, replies: bool = False) -> list[Message]:
        """Messages of a channel (id or name), oldest first; top level only unless ``replies``."""
        found = self.workspace.channels[self.channel_id(channel)]
        msgs = [m for m in found.messages.values() if not m.deleted]
        return msgs if replies else [m for m in msgs if not m.is_reply or m.reply_broadcast]

    def message(self, channel: str, ts: str) -> Message | None:
        return self.workspace.message(self.channel_id(channel), ts)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The parent message and its replies, oldest first (empty if no such message)."""
        channel_id = self.channel_id(channel)
        parent = self.workspace.message(channel_id, thread_ts)
        if parent is None:
            return []
        return [parent, *self.workspace.replies(self.workspace.channels[channel_id], thread_ts)]

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        channel_id = self.channel_id(channel) if channel else None
        return [
            e
            for e in self.workspace.ephemeral_messages
            if not e.deleted and user in (None, e.user) and channel_id in (None, e.channel)
        ]

    def files(self) -> list[File]:
        """Files whose upload was completed (files.completeUploadExternal)."""
        return [f for f in self.workspace.uploads.values() if f.completed]

    def views(self, user: str | None = None, *, open_only: bool = False) -> list[View]:
        return [
            v for v in self.workspace.opened_views.values() if user in (None, v.user) and not (open_only and v.closed)
        ]

    def fail_next(self, method: str, count: int = 1, error: str = "internal_error") -> None:
        """The next ``count`` calls of ``method`` fail as Slack fails them: ``internal_error``
        (HTTP 500, trouble of its own), ``ratelimited`` (HTTP 429 with Retry-After: 1), or any
        other error code with HTTP 200 (``message_not_found``, ``channel_not_found``...)."""
        self.workspace.failing[method] = count
        self.workspace.failing_with[method] = error

    def calls(self, method: str | None = None) -> list[Call]:
        """Every API call (and ``"response_url"`` post) with its parsed arguments."""
        return [c for c in self.workspace.call_log if method in (None, c.method)]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait, without polling, until ``predicate()`` is truthy; returns its value.

        Raises TimeoutError after ``timeout`` seconds.
        """
        return await self.workspace.wait_for(predicate, timeout)

    async def wait_for_socket(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until a Socket Mode client is connected."""
        await self.wait_for(lambda: self.socket.connections, timeout)

    def __repr__(self) -> str:
        return f"SlackEmulator({self.base_url or 'not started'})"
