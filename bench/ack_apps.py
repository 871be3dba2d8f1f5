"""The apps `bench.bench_ack` measures besides `flk serve`, each run in a process of its own:
``python -m bench.ack_apps lazy|inline`` with the sandbox's env.

- ``lazy``: a minimal Bolt AsyncApp with its defaults (``process_before_response=False``) whose
  ``ack=`` function acks with the text ours acks with and whose ``lazy=`` function hands the
  request to the bot's own Bolt app (a ``Bot`` started in the same process, not listening), so
  both apps start the same background work and only the ack path differs;
- ``inline``: `flk serve` with Bolt's ``process_before_response=True``, as a diagnosis.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot import cli
from bot.service import app as bot_app
from bot.service.app import Bot
from bot.service.settings import load_settings

LAZY_READY = "lazy ready"
# The lazy app acks with the text ours acks with (bot/slack/listeners_commands.py).
ACK_TEXT = ":hourglass_flowing_sand: `/flk triage` started…"


async def run_lazy_app() -> None:
    settings, config = load_settings()
    # The bot itself, not listening for Slack: its own /flk listener does the background work, so
    # that both apps start the same work and only the ack path differs.
    inner = Bot(settings, config)
    await inner.start(http=False)
    assert inner.app is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret.get_secret_value())

    async def ack_at_once(ack: Any) -> None:
        await ack(text=ACK_TEXT)

    async def work_later(request: AsyncBoltRequest) -> None:
        assert inner.app is not None
        await inner.app.async_dispatch(AsyncBoltRequest(body=request.raw_body, headers=request.headers))

    app.command("/flk")(ack=ack_at_once, lazy=[work_later])

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"{LAZY_READY}: http://{settings.host}:{settings.port}/slack/events", flush=True)
    await stop.wait()
    await runner.cleanup()
    await inner.stop()


def serve_inline() -> int:
    """`flk serve` with one change, Bolt's process_before_response=True: the listener (which acks
    and hands the work to a task) runs before the response instead of being polled for its ack."""
    original = bot_app.AsyncApp

    def inline_app(**kwargs: Any) -> AsyncApp:
        return original(**{**kwargs, "process_before_response": True})

    bot_app.AsyncApp = inline_app  # type: ignore[misc, assignment]
    return cli.main(["serve"])


def main() -> int:
    if sys.argv[1:] == ["lazy"]:
        asyncio.run(run_lazy_app())
        return 0
    if sys.argv[1:] == ["inline"]:
        return serve_inline()
    print("usage: python -m bench.ack_apps lazy|inline", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
