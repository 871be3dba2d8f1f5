"""``WorkspacePage``: the emulated Slack workspace as a web page a person can watch and use.

It serves a static page (``static/``: one HTML, one CSS, plain ES modules) and a small JSON API
on its own loopback port, beside the emulator (whose server stays exactly Slack's):

- ``GET /api/stream?user=U..``: server-sent events, ``hello`` then ``patch`` (the items that
  changed: messages, that user's ephemerals and open modals, the directory) on every change of
  the workspace, and ``world`` (tenants, faults, where the bot is) every couple of seconds;
- ``POST /api/{slash,post,click,submit,close,react}``: what a person does, sent to the bot
  through the signing driver (see ``actions``);
- ``POST /api/{breach,fault}``: the world panel's controls (see ``world_panel``);
- ``GET /files/<id>/<name>``: an uploaded file (PNG inline, anything else as a download).

Only loopback may use it: it binds 127.0.0.1, answers only a loopback Host (no DNS rebinding),
and takes POSTs only as JSON from its own origin (no cross-site form posts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import emoji
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from sandbox.slack.emulator import SlackEmulator
from sandbox.web.actions import Actions, Answer
from sandbox.web.snapshot import Changes, items
from sandbox.web.world_panel import WorldPanel

if TYPE_CHECKING:
    from sandbox.up import Sandbox

STATIC = Path(__file__).resolve().parent / "static"
# The slash commands the app registers (deploy/slack-app-manifest.yaml).
COMMANDS = ("/flk",)
WORLD_EVERY_S = 2.0
# Bursts of changes (a checklist edited as probes answer) go out as one patch.
COALESCE_S = 0.05
_LOOPBACK_HOST = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$")
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@functools.cache
def emoji_names() -> dict[str, str]:
    """Shortcode (without colons) -> emoji, Slack's names first (they are GitHub's aliases)."""
    names: dict[str, str] = {}
    for char, data in emoji.EMOJI_DATA.items():
        if data["status"] > emoji.STATUS["fully_qualified"]:
            continue
        for name in [*data.get("alias", []), data["en"]]:
            names.setdefault(name.strip(":").lower(), char)
    return names


@web.middleware
async def _loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _LOOPBACK_HOST.match(request.host):
        return web.json_response({"error": "this page answers loopback addresses only"}, status=403)
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if request.content_type != "application/json" or (origin and origin != f"http://{request.host}"):
            return web.json_response({"error": "expected JSON from this page"}, status=403)
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


class WorkspacePage:
    """``await WorkspacePage(slack, sandbox, bot_url=...).start()``; ``url`` is the page."""

    def __init__(
        self,
        slack: SlackEmulator,
        sandbox: Sandbox | None = None,
        *,
        bot_url: str | None = None,
        commands: tuple[str, ...] = COMMANDS,
    ) -> None:
        self.slack = slack
        self.actions = Actions(slack, bot_url, commands)
        self.world = WorldPanel(sandbox) if sandbox is not None else None
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._url = ""

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the workspace page is not started")
        return self._url

    @property
    def bot_url(self) -> str | None:
        """The bot's events URL the page signs requests to; None: Socket Mode."""
        return self.actions.bot_url

    @bot_url.setter
    def bot_url(self, url: str | None) -> None:
        self.actions.bot_url = url

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[_loopback_only])
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/emoji.json", self._emoji)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_get("/files/{file_id}/{name}", self._file)
        act = self.actions
        for name, run in {
            "slash": act.slash,
            "post": act.post,
            "click": act.click,
            "submit": act.submit,
            "close": act.close_view,
            "react": act.react,
        }.items():
            app.router.add_post(f"/api/{name}", self._json(run))
        if self.world is not None:
            world = self.world
            app.router.add_post("/api/breach", self._json(_now(world.breach)))
            app.router.add_post("/api/fault", self._json(_now(world.fault)))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}/"
        return self._url

    async def stop(self) -> None:
        # Open event streams never end by themselves; end them so that shutdown does not wait.
        for task in list(self._streams):
            task.cancel()
        await self.actions.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._url = ""

    async def __aenter__(self) -> WorkspacePage:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handlers ------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _emoji(self, request: web.Request) -> web.Response:
        return web.json_response(emoji_names(), headers={"Cache-Control": "max-age=86400"})

    def _viewer(self, request: web.Request) -> str:
        """The person the page shows the workspace as (``?user=``, default the first person)."""
        users = self.slack.workspace.users
        user = request.query.get("user", "")
        if user in users and not users[user].is_bot:
            return user
        if user:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"no person {user!r}"}), content_type="application/json")
        return next(u.id for u in users.values() if not u.is_bot)

    def _hello(self, user: str) -> dict[str, Any]:
        return {"user": user, "commands": list(self.actions.commands), "world": self.world is not None}

    def _status(self) -> dict[str, Any]:
        world = self.world.state() if self.world is not None else {}
        return {**world, "bot": self.actions.bot()}

    async def _state(self, request: web.Request) -> web.Response:
        """Everything at once (for scripts; the page itself follows the stream)."""
        user = self._viewer(request)
        return web.json_response({**self._hello(user), "items": items(self.slack, user), "status": self._status()})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        user = self._viewer(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            async with sse_response(request) as events:
                with contextlib.suppress(ConnectionResetError):  # the page went away mid-send
                    await self._follow(events, user)
            return events
        finally:
            self._streams.discard(task)

    async def _follow(self, events: EventSourceResponse, user: str) -> None:
        """``hello``, then a ``patch`` after every change and ``world`` when the status differs."""
        ws = self.slack.workspace
        changes, status_sent, seen = Changes(), "", -1
        await events.send(json.dumps(self._hello(user)), event="hello")
        while events.is_connected():
            if ws.changed_count != seen:
                seen = ws.changed_count
                patch = changes.since_last(items(self.slack, user))
                if patch is not None:
                    await events.send(json.dumps(patch), event="patch")
            status = json.dumps(self._status())
            if status != status_sent:
                status_sent = status
                await events.send(status, event="world")
            try:
                await ws.wait_for(lambda last=seen: ws.changed_count != last, timeout=WORLD_EVERY_S)
                await asyncio.sleep(COALESCE_S)
            except TimeoutError:
                pass

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = self.slack.workspace.uploads.get(request.match_info["file_id"])
        if found is None or not found.completed or found.name != request.match_info["name"]:
            return web.json_response({"error": "file_not_found"}, status=404)
        body = found.content or b""
        if found.name.lower().endswith(".png") and body.startswith(b"\x89PNG\r\n\x1a\n"):
            return web.Response(body=body, content_type="image/png")
        # Anything else is a download, never rendered by the browser.
        disposition = f"attachment; filename*=UTF-8''{quote(found.name, safe='')}"
        return web.Response(
            body=body, content_type="application/octet-stream", headers={"Content-Disposition": disposition}
        )

    def _json(self, run: Callable[[dict[str, Any]], Awaitable[Answer]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "expected a JSON object"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"error": "expected a JSON object"}, status=400)
            status, answer = await run(body)
            return web.json_response(answer, status=status)

        return handle


def _now(run: Callable[[dict[str, Any]], Answer]) -> Callable[[dict[str, Any]], Awaitable[Answer]]:
    """A control that completes at once, as an awaitable like the actions."""

    async def call(body: dict[str, Any]) -> Answer:
        return run(body)

    return call
