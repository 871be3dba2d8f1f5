"""The objects the emulated workspace keeps: messages, ephemerals, views, files, calls."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal


def block_texts(node: Any) -> list[str]:
    """Every ``text`` string inside blocks (section text, fields, header, context, buttons...)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(block_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(block_texts(item))
    return found


@dataclass
class Message:
    """A message in a channel. ``thread_ts`` is None for a top-level message without replies."""

    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    reply_broadcast: bool = False
    bot: bool = True
    files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    # Earlier versions, oldest first: {"text", "blocks", "attachments", "replaced_at"}.
    edits: list[dict[str, Any]] = field(default_factory=list)
    edited_ts: str | None = None
    deleted: bool = False
    # chat.startStream .. chat.stopStream: the message is "streaming" until stopped.
    streaming: bool = False
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def all_text(self) -> str:
        """The text plus every text inside blocks and attachments, one per line (for asserts)."""
        return "\n".join([self.text, *block_texts(self.blocks), *block_texts(self.attachments)])


@dataclass
class Ephemeral:
    """A message only ``user`` sees; ``source`` says how it was posted."""

    channel: str
    user: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    source: Literal["chat.postEphemeral", "response_url", "command_response"] = "chat.postEphemeral"
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    def all_text(self) -> str:
        return "\n".join([self.text, *block_texts(self.blocks)])


@dataclass
class View:
    """An opened modal. ``view`` is the view object as Slack returns it (ids, hash, state)."""

    id: str
    user: str
    view: dict[str, Any]
    opened_at: float = field(default_factory=time.time)
    closed: bool = False
    # response_action "errors" from the last submission: block_id -> message.
    errors: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata", ""))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.view.get("blocks", []))

    @property
    def hash(self) -> str:
        return str(self.view["hash"])


@dataclass
class File:
    """An uploaded file; ``content`` holds the bytes the client POSTed to its upload URL."""

    id: str
    name: str
    length: int
    user: str
    title: str = ""
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    completed: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    # Where it was shared: (channel, message ts, thread_ts or None).
    shares: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8", errors="replace")


@dataclass
class Call:
    """One Web API call as the emulator saw it (the token is never kept)."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    status: int
    at: float = field(default_factory=time.time)


@dataclass
class Trigger:
    user: str
    channel: str | None
    issued: float = field(default_factory=time.monotonic)
    used: bool = False
    # The modal the interaction happened in (only such a trigger may views.push).
    view_id: str | None = None


@dataclass
class ResponseUrl:
    """A per-interaction response_url: where it posts and what it may replace."""

    token: str
    channel: str
    user: str
    # The message the interaction came from (None for slash commands).
    source_ts: str | None = None
    source_ephemeral: bool = False
    thread_ts: str | None = None
    created: float = field(default_factory=time.monotonic)
    uses: int = 0
