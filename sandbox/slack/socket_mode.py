"""Socket Mode: the WebSocket URL that apps.connections.open hands out.

On connect Slack sends ``hello``; then it pushes envelopes (``slash_commands``,
``interactive``, ``events_api``) one connection at a time, round-robin, and expects
``{"envelope_id": ..., "payload"?: ...}`` back within the ack timeout (3 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sandbox.slack.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class SocketAck:
    envelope_id: str
    payload: Any
    elapsed: float


class SocketModeServer:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.connections: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.ws.socket_tickets:
            return web.Response(status=401, text="invalid_ticket", content_type="text/plain")
        self.ws.socket_tickets.discard(ticket)
        sock = web.WebSocketResponse(autoping=True)
        await sock.prepare(request)
        self.connections.append(sock)
        try:
            await sock.send_str(json.dumps(self._hello()))
            self.ws.changed()
            async for msg in sock:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self.connections.remove(sock)
            self.ws.changed()
        return sock

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {"host": "applink-sandbox", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.ws.config.app_id},
        }

    def _on_text(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except ValueError:
            log.warning("Socket Mode: ignored a frame that is not JSON")
            return
        future = self._pending.get(ack.get("envelope_id", "")) if isinstance(ack, dict) else None
        if future is not None and not future.done():
            future.set_result(ack)

    async def push(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_attempt: int = 0,
        retry_reason: str = "",
        ack_timeout: float | None = None,
    ) -> SocketAck | None:
        """Send one envelope; the client's ack, or None when none came within the timeout."""
        timeout = self.ws.config.ack_timeout if ack_timeout is None else ack_timeout
        await self.ws.wait_for(lambda: self.connections, timeout=max(timeout, 5.0))
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        sock = self.connections[self._next % len(self.connections)]
        self._next += 1
        started = time.monotonic()
        try:
            await sock.send_str(json.dumps(envelope))
            ack = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(envelope_id, None)
        return SocketAck(envelope_id, ack.get("payload"), time.monotonic() - started)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every client to reconnect, as Slack does every few hours."""
        for sock in list(self.connections):
            await sock.send_str(json.dumps({"type": "disconnect", "reason": reason}))

    async def close(self) -> None:
        for sock in list(self.connections):
            await sock.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
