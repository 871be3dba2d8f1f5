"""A round-robin HTTP front over the replicas: one URL for Slack and Alertmanager, as a
Kubernetes Service gives them. Like a load balancer with passive health checks, it sends a
request to the next replica when one refuses the connection (a killed pod)."""

from __future__ import annotations

import itertools
from collections import Counter

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class Front:
    def __init__(self) -> None:
        self.backends: list[str] = []
        self.served: Counter[str] = Counter()  # backend URL -> requests it answered
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        # No keep-alive: a request is never sent on a pooled connection to a replica since killed.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(force_close=True)
        )
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        backends = list(self.backends)
        start = next(self._turn)
        for n in range(len(backends)):
            backend = backends[(start + n) % len(backends)]
            try:
                async with self._session.request(
                    request.method, backend + request.path_qs, data=body, headers=headers
                ) as answer:
                    content = await answer.read()
                    self.served[backend] += 1
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                    return web.Response(status=answer.status, body=content, headers=kept)
            except aiohttp.ClientConnectorError:
                continue  # refused: that replica is gone, the next one answers (nothing was sent)
        return web.Response(status=502, text="no replica answered")
