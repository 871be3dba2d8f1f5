"""The emulated workspace's state: channels and their messages, ephemerals, views, files,
triggers, response URLs, and the log of API calls. Every change wakes ``wait_for``."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox.slack.config import SlackConfig, User
from sandbox.slack.models import Call, Ephemeral, File, Message, ResponseUrl, Trigger, View
from sandbox.slack.ratelimit import RateLimiter

T = TypeVar("T")


@dataclass
class Channel:
    id: str
    name: str
    dm_user: str | None = None
    # ts -> message, in ts order (ts values only ever increase).
    messages: dict[str, Message] = field(default_factory=dict)
    # parent ts -> reply ts values, in order.
    threads: dict[str, list[str]] = field(default_factory=dict)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


class Workspace:
    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.base_url = ""
        self.limiter = RateLimiter(config.rate_limits, enabled=config.rate_limits_enabled)
        self.reset()

    def reset(self) -> None:
        """Forget every message, view, file, call... (channels, users and groups stay)."""
        self.channels: dict[str, Channel] = {cid: Channel(cid, name) for cid, name in self.config.channels.items()}
        bot = User(self.config.bot_user_id, self.config.bot_name, self.config.bot_name, is_bot=True)
        self.users: dict[str, User] = {**self.config.users, bot.id: bot}
        self.ephemeral_messages: list[Ephemeral] = []
        self.opened_views: dict[str, View] = {}
        self.uploads: dict[str, File] = {}
        self.upload_tokens: dict[str, str] = {}
        self.call_log: list[Call] = []
        # Method -> how many of its next calls answer 500 internal_error (see fail_next).
        self.failing: dict[str, int] = {}
        self.failing_with: dict[str, str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.socket_tickets: set[str] = set()
        self._last_us = 0
        self.limiter.reset()
        self.changed_count = getattr(self, "changed_count", 0) + 1
        # Wake whoever waits on the state being forgotten.
        previous: asyncio.Event | None = getattr(self, "_changed", None)
        self._changed = asyncio.Event()
        if previous is not None:
            previous.set()

    # --- clocks and ids ---------------------------------------------------------------------

    def next_ts(self) -> str:
        """A Slack ts ("1732612345.000100") strictly greater than any issued before."""
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def issue_trigger(self, user: str, channel: str | None, view_id: str | None = None) -> str:
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(user, channel, view_id=view_id)
        return trigger_id

    def trigger_expired(self, trigger: Trigger) -> bool:
        return time.monotonic() - trigger.issued > self.config.trigger_ttl

    def issue_response_url(
        self,
        kind: str,
        channel: str,
        user: str,
        *,
        source_ts: str | None = None,
        ephemeral: bool = False,
        thread_ts: str | None = None,
    ) -> str:
        token = secrets.token_urlsafe(18)
        self.response_urls[token] = ResponseUrl(token, channel, user, source_ts, ephemeral, thread_ts)
        return f"{self.base_url}hooks/{kind}/{self.config.team_id}/{secrets.randbelow(10**12)}/{token}"

    # --- change notification ------------------------------------------------------------------

    def changed(self) -> None:
        # Counts every change, so that a watcher (the web page) can tell whether it missed one.
        self.changed_count += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy and return its value; re-checked on every change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout:g} s")
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    # --- lookups ------------------------------------------------------------------------------

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel by id, by name ("#incidents" or "incidents"), or a user id's DM."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.name == name and channel.dm_user is None:
                return channel
        if ref in self.users:
            dm_id = "D" + ref.removeprefix("U").removeprefix("_")
            channel = self.channels.setdefault(dm_id, Channel(dm_id, ref, dm_user=ref))
            return channel
        return None

    def message(self, channel: str, ts: str) -> Message | None:
        found = self.channels.get(channel)
        msg = found.messages.get(ts) if found else None
        return None if msg is None or msg.deleted else msg

    def replies(self, channel: Channel, parent_ts: str) -> list[Message]:
        msgs = (channel.messages[ts] for ts in channel.threads.get(parent_ts, []))
        return [m for m in msgs if not m.deleted]

    # --- changes ------------------------------------------------------------------------------

    def add_message(self, msg: Message) -> Message:
        channel = self.channels[msg.channel]
        if msg.thread_ts is not None:
            channel.threads.setdefault(msg.thread_ts, []).append(msg.ts)
            parent = channel.messages.get(msg.thread_ts)
            if parent is not None:
                parent.thread_ts = parent.ts
        channel.messages[msg.ts] = msg
        self.changed()
        return msg

    def edit_message(self, msg: Message, **new: Any) -> None:
        msg.edits.append(
            {"text": msg.text, "blocks": msg.blocks, "attachments": msg.attachments, "replaced_at": time.time()}
        )
        for key, value in new.items():
            setattr(msg, key, value)
        msg.edited_ts = self.next_ts()
        self.changed()

    def record(self, call: Call) -> None:
        self.call_log.append(call)
        self.changed()

    # --- Slack JSON ---------------------------------------------------------------------------

    def user_json(self, user: User) -> dict[str, Any]:
        profile = {
            "real_name": user.real_name,
            "display_name": user.name,
            "email": user.email,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.name,
        }
        return {
            "id": user.id,
            "team_id": self.config.team_id,
            "name": user.name,
            "deleted": False,
            "real_name": user.real_name,
            "tz": user.tz,
            "is_bot": user.is_bot,
            "is_admin": False,
            "is_app_user": False,
            "profile": profile,
        }

    def file_json(self, f: File) -> dict[str, Any]:
        url = f"{self.base_url}files/{f.id}/{f.name}"
        public: dict[str, list[dict[str, Any]]] = {}
        for channel, ts, thread_ts in f.shares:
            share: dict[str, Any] = {"ts": ts, "channel_name": self.channels[channel].name}
            if thread_ts:
                share["thread_ts"] = thread_ts
            public.setdefault(channel, []).append(share)
        ext = f.name.rsplit(".", 1)[-1].lower() if "." in f.name else "text"
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "filetype": ext,
            "user": f.user,
            "size": len(f.content or b""),
            "url_private": url,
            "url_private_download": url,
            "is_public": bool(public),
            "channels": sorted(public),
            "shares": {"public": public} if public else {},
            "alt_txt": f.alt_txt,
        }

    def message_json(self, msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": msg.ts, "user": msg.user, "text": msg.text}
        if msg.bot:
            out.update(bot_id=self.config.bot_id, app_id=self.config.app_id, team=self.config.team_id)
        for key in ("blocks", "attachments"):
            if getattr(msg, key):
                out[key] = getattr(msg, key)
        if msg.files:
            out["files"] = [self.file_json(self.uploads[fid]) for fid in msg.files]
            out["upload"] = True
        if msg.metadata:
            out["metadata"] = msg.metadata
        if msg.thread_ts is not None:
            out["thread_ts"] = msg.thread_ts
        if msg.is_reply:
            parent = self.channels[msg.channel].messages.get(msg.thread_ts or "")
            if parent is not None:
                out["parent_user_id"] = parent.user
        else:
            replies = self.replies(self.channels[msg.channel], msg.ts)
            if replies:
                users = list(dict.fromkeys(r.user for r in replies))
                out.update(
                    reply_count=len(replies),
                    reply_users=users[:5],
                    reply_users_count=len(users),
                    latest_reply=replies[-1].ts,
                )
        if msg.edited_ts:
            out["edited"] = {"user": msg.user, "ts": msg.edited_ts}
        if msg.reactions:
            out["reactions"] = [
                {"name": name, "users": users, "count": len(users)} for name, users in msg.reactions.items()
            ]
        return out
