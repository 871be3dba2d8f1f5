"""Plays Slack's side towards a bot: slash commands, button clicks, view submissions and
Events API callbacks, over signed HTTP (``bot_url``) or over Socket Mode (``bot_url=None``).

Every method returns a :class:`Delivery` (status, body, elapsed). Slack's reaction to the
ack is applied as Slack applies it: a slash command's response body becomes an ephemeral
(or in_channel) message, a view submission's ``response_action`` keeps, updates or closes
the view. Real Slack slash commands carry no thread; neither do these. Slack's automatic
Events API retries are not replayed: pass ``retry_num`` to send what a retry looks like.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import payloads
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.methods_chat import post, with_block_ids
from sandbox.slack.models import Ephemeral, Message, View
from sandbox.slack.workspace import new_id

Signature = Literal["valid", "wrong", "stale", "none"]
STALE_BY = 10 * 60  # seconds; Bolt refuses timestamps older than 5 minutes


@dataclass
class Delivery:
    """What the bot answered. For Socket Mode: 200 and the ack's payload as JSON text, or
    408 (an emulator convention, like HTTP timeouts here) when no ack came in time."""

    status: int
    body: str
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)
    trigger_id: str | None = None
    response_url: str | None = None

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class SlackDriver:
    def __init__(self, emulator: SlackEmulator, bot_url: str | None = None) -> None:
        self.emulator = emulator
        self.ws = emulator.workspace
        self.bot_url = bot_url
        self._session: aiohttp.ClientSession | None = None
        self._last_http: tuple[str, str] | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- what a user does -----------------------------------------------------------------------

    async def slash(
        self,
        text: str,
        *,
        command: str = "/flk",
        user: str = "U_ALICE",
        channel: str = "C_INCIDENTS",
        signature: Signature = "valid",
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Delivery:
        """A user types ``/flk text`` in ``channel``."""
        channel = self.emulator.channel_id(channel)
        trigger_id = self.ws.issue_trigger(user, channel)
        response_url = self.ws.issue_response_url("commands", channel, user)
        form = payloads.slash_command(
            self.ws,
            command=command,
            text=text,
            user=user,
            channel=channel,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        if self.bot_url is None:
            delivery = await self._socket("slash_commands", form, True)
        else:
            body = urllib.parse.urlencode(form)
            delivery = await self._http(body, "application/x-www-form-urlencoded", signature, retry_num, retry_reason)
        delivery.trigger_id, delivery.response_url = trigger_id, response_url
        if delivery.acked:
            self._command_response(delivery, channel, user)
        return delivery

    async def click(
        self,
        action_id: str,
        *,
        user: str = "U_ALICE",
        channel: str | None = None,
        ts: str | None = None,
        view_id: str | None = None,
        value: Any = None,
        signature: Signature = "valid",
    ) -> Delivery:
        """A user clicks (or picks ``value`` in) the element ``action_id``: in view ``view_id``,
        in message ``ts``, or else in the newest message or ephemeral (of ``user``) that has it."""
        trigger_id = self.ws.issue_trigger(user, channel, view_id)
        if view_id is not None:
            view = self.ws.opened_views[view_id]
            block, element = self._element(view.blocks, action_id)
            body = payloads.interaction(
                self.ws,
                "block_actions",
                user,
                trigger_id,
                container={"type": "view", "view_id": view_id},
                view=view.view,
                actions=[payloads.action(block, element, value)],
                state={"values": {}},
            )
            return await self._interactive(body, False, signature, trigger_id, None)
        target = self._find_target(action_id, user, channel, ts)
        block, element = self._element(target.blocks, action_id)
        is_eph = isinstance(target, Ephemeral)
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": target.ts,
            "channel_id": target.channel,
            "is_ephemeral": is_eph,
        }
        if target.thread_ts:
            container["thread_ts"] = target.thread_ts
        response_url = self.ws.issue_response_url(
            "actions", target.channel, user, source_ts=target.ts, ephemeral=is_eph, thread_ts=target.thread_ts
        )
        fields: dict[str, Any] = {
            "container": container,
            "channel": {"id": target.channel, "name": self.ws.channels[target.channel].name},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [payloads.action(block, element, value)],
        }
        if isinstance(target, Message):
            fields["message"] = self.ws.message_json(target)
        body = payloads.interaction(self.ws, "block_actions", user, trigger_id, **fields)
        return await self._interactive(body, False, signature, trigger_id, response_url)

    async def submit_view(
        self,
        view_id: str | None = None,
        *,
        values: dict[str, Any] | None = None,
        user: str | None = None,
        signature: Signature = "valid",
    ) -> Delivery:
        """Submit an open modal (default: the newest open one) with input ``values`` keyed by
        action_id; inputs left out keep their initial values."""
        view = self._open_view(view_id)
        user = user or view.user
        submitted = {**view.view, "state": {"values": payloads.state_values(view.blocks, values or {})}}
        trigger_id = self.ws.issue_trigger(user, None, view.id)
        body = payloads.interaction(self.ws, "view_submission", user, trigger_id, view=submitted, response_urls=[])
        delivery = await self._interactive(body, True, signature, trigger_id, None)
        if delivery.acked:
            view.view = submitted
            self._view_response(view, delivery)
        return delivery

    async def close_view(self, view_id: str | None = None, *, signature: Signature = "valid") -> Delivery | None:
        """The user closes a modal; Slack tells the app only if the view has notify_on_close."""
        view = self._open_view(view_id)
        view.closed = True
        self.ws.changed()
        if not view.view.get("notify_on_close"):
            return None
        body = payloads.interaction(self.ws, "view_closed", view.user, "", view=view.view, is_cleared=False)
        return await self._interactive(body, False, signature, None, None)

    async def event(
        self,
        event: dict[str, Any],
        *,
        signature: Signature = "valid",
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Delivery:
        """Deliver one Events API event (wrapped in an ``event_callback``)."""
        callback = payloads.event_callback(self.ws, event)
        if self.bot_url is None:
            return await self._socket("events_api", callback, False, retry_num or 0, retry_reason or "")
        return await self._http(json.dumps(callback), "application/json", signature, retry_num, retry_reason)

    async def reaction_added(
        self,
        channel: str,
        ts: str,
        reaction: str,
        *,
        user: str = "U_ALICE",
        signature: Signature = "valid",
        retry_num: int | None = None,
    ) -> Delivery:
        """A user adds ``:reaction:`` to a message: stored, then sent as ``reaction_added``."""
        msg = self.emulator.message(channel, ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        users = msg.reactions.setdefault(reaction, [])
        if user not in users:
            users.append(user)
        self.ws.changed()
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item_user": msg.user,
            "item": {"type": "message", "channel": msg.channel, "ts": ts},
        }
        return await self.event(event, signature=signature, retry_num=retry_num)

    # --- transport ------------------------------------------------------------------------------

    def _headers(self, body: str, signature: Signature) -> dict[str, str]:
        if signature == "none":
            return {}
        timestamp = int(time.time()) - (STALE_BY if signature == "stale" else 0)
        secret = self.ws.config.signing_secret + ("-wrong" if signature == "wrong" else "")
        return {
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body),
        }

    async def resend_last(self, retry_num: int = 1, retry_reason: str = "http_timeout") -> Delivery:
        """Deliver the last HTTP request again, as Slack retries it: same body, fresh signature."""
        if self._last_http is None:
            raise RuntimeError("nothing was sent over HTTP yet")
        body, content_type = self._last_http
        return await self._http(body, content_type, "valid", retry_num, retry_reason)

    async def _http(
        self, body: str, content_type: str, signature: Signature, retry_num: int | None, retry_reason: str | None
    ) -> Delivery:
        if self.bot_url is None:
            raise RuntimeError("this driver delivers over Socket Mode (no bot_url)")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._last_http = (body, content_type)
        headers = {"Content-Type": content_type, **self._headers(body, signature)}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.ws.config.ack_timeout)
        try:
            async with self._session.post(self.bot_url, data=body.encode(), headers=headers, timeout=timeout) as r:
                text = await r.text()
                return Delivery(r.status, text, time.monotonic() - started, dict(r.headers))
        except TimeoutError:
            return Delivery(408, "", time.monotonic() - started)

    async def _socket(
        self, kind: str, payload: dict[str, Any], accepts_response: bool, retry_attempt: int = 0, retry_reason: str = ""
    ) -> Delivery:
        started = time.monotonic()
        ack = await self.emulator.socket.push(
            kind,
            payload,
            accepts_response_payload=accepts_response,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        if ack is None:
            return Delivery(408, "", time.monotonic() - started)
        return Delivery(200, json.dumps(ack.payload) if ack.payload is not None else "", ack.elapsed)

    async def _interactive(
        self,
        payload: dict[str, Any],
        accepts_response: bool,
        signature: Signature,
        trigger_id: str | None,
        response_url: str | None,
    ) -> Delivery:
        if self.bot_url is None:
            delivery = await self._socket("interactive", payload, accepts_response)
        else:
            body = urllib.parse.urlencode({"payload": json.dumps(payload)})
            delivery = await self._http(body, "application/x-www-form-urlencoded", signature, None, None)
        delivery.trigger_id, delivery.response_url = trigger_id, response_url
        return delivery

    # --- Slack's reaction to acks -----------------------------------------------------------------

    def _command_response(self, delivery: Delivery, channel: str, user: str) -> None:
        """A slash command's immediate response: shown to the user, or in the channel."""
        if not delivery.body.strip():
            return
        try:
            reply = delivery.json()
        except ValueError:
            reply = {"text": delivery.body}
        if not isinstance(reply, dict) or not (reply.get("text") or reply.get("blocks")):
            return
        text, blocks = str(reply.get("text", "")), with_block_ids(reply.get("blocks") or [])
        if reply.get("response_type") == "in_channel":
            post(self.ws, self.ws.channels[channel], None, {"text": text, "blocks": blocks})
        else:
            eph = Ephemeral(channel, user, self.ws.next_ts(), text, blocks, source="command_response")
            self.ws.ephemeral_messages.append(eph)
            self.ws.changed()

    def _view_response(self, view: View, delivery: Delivery) -> None:
        reply = delivery.json() if delivery.body.strip().startswith("{") else None
        action = reply.get("response_action") if isinstance(reply, dict) else None
        view.errors = dict(reply.get("errors", {})) if action == "errors" and isinstance(reply, dict) else {}
        if action == "update" and isinstance(reply, dict):
            view.history.append(view.view)
            view.view = {**view.view, **reply["view"], "blocks": with_block_ids(reply["view"].get("blocks", []))}
        elif action == "push" and isinstance(reply, dict):
            pushed_id = new_id("V")
            pushed = {
                **reply["view"],
                "id": pushed_id,
                "blocks": with_block_ids(reply["view"].get("blocks", [])),
                "root_view_id": view.view.get("root_view_id") or view.id,
                "previous_view_id": view.id,
            }
            self.ws.opened_views[pushed_id] = View(pushed_id, view.user, pushed)
        elif action != "errors":
            view.closed = True
        self.ws.changed()

    # --- lookups ------------------------------------------------------------------------------------

    def _open_view(self, view_id: str | None) -> View:
        if view_id is not None:
            return self.ws.opened_views[view_id]
        open_views = [v for v in self.ws.opened_views.values() if not v.closed]
        if not open_views:
            raise LookupError("no open view to act on")
        return open_views[-1]

    @staticmethod
    def _element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = payloads.find_element(blocks, action_id)
        if found is None:
            raise LookupError(f"no element with action_id {action_id!r}")
        return found

    def _find_target(self, action_id: str, user: str, channel: str | None, ts: str | None) -> Message | Ephemeral:
        ephemerals = [e for e in self.emulator.ephemerals(user=user, channel=channel) if ts in (None, e.ts)]
        messages: list[Message] = []
        for cid in [channel] if channel else list(self.ws.channels):
            messages += [m for m in self.emulator.channel_messages(cid, replies=True) if ts in (None, m.ts)]
        candidates: list[Message | Ephemeral] = [*ephemerals, *messages]
        candidates.sort(key=lambda m: m.ts, reverse=True)
        for candidate in candidates:
            if payloads.find_element(candidate.blocks, action_id):
                return candidate
        raise LookupError(f"no message has an element with action_id {action_id!r}")
