"""chat.* methods: posting, updating, ephemerals, permalinks and the streaming trio."""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.slack.args import Args
from sandbox.slack.blockkit import check_blocks
from sandbox.slack.errors import SlackError, invalid_arguments, missing
from sandbox.slack.models import Ephemeral, Message
from sandbox.slack.registry import method
from sandbox.slack.workspace import Channel, Workspace

MAX_TEXT = 40_000
MAX_MARKDOWN = 12_000
MAX_ATTACHMENTS = 100


def channel_arg(ws: Workspace, args: Args, name: str = "channel", error: str = "channel_not_found") -> Channel:
    ref = args.string(name)
    channel = ws.resolve_channel(ref) if ref else None
    if channel is None:
        raise SlackError(error)
    return channel


def thread_arg(ws: Workspace, channel: Channel, args: Args) -> str | None:
    """The parent ts to reply under. A reply's ts is taken to mean its parent, as Slack does.

    Slack accepts a well-formed ts of no message and the reply is lost from view; the
    emulator refuses it with ``thread_not_found`` so that such a bug shows in tests.
    """
    thread_ts = args.ts("thread_ts", error="invalid_thread_ts")
    if thread_ts is None:
        return None
    parent = ws.message(channel.id, thread_ts)
    if parent is None:
        raise SlackError("thread_not_found")
    return parent.thread_ts if parent.is_reply else parent.ts


def with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack gives every block without a block_id a short random one."""
    taken = {b["block_id"] for b in blocks if isinstance(b.get("block_id"), str)}
    out = []
    for block in blocks:
        if "block_id" not in block:
            block_id = secrets.token_urlsafe(4)
            while block_id in taken:
                block_id = secrets.token_urlsafe(4)
            taken.add(block_id)
            block = {**block, "block_id": block_id}
        out.append(block)
    return out


def content(args: Args, *, require: bool = True) -> dict[str, Any]:
    """text / blocks / attachments / metadata, checked as chat.postMessage checks them."""
    text = args.string("text") or args.string("markdown_text")
    blocks = args.structured("blocks", error="invalid_blocks_format")
    attachments = args.structured("attachments", error="invalid_attachments")
    metadata = args.structured("metadata", error="invalid_metadata_format", kind=dict)
    if blocks is not None:
        problems = check_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", messages=problems)
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise SlackError("too_many_attachments")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if require and not text and not blocks and not attachments:
        raise SlackError("no_text")
    out: dict[str, Any] = {"text": text}
    if blocks is not None:
        out["blocks"] = with_block_ids(blocks)
    if attachments is not None:
        out["attachments"] = attachments
    if metadata is not None:
        out["metadata"] = metadata
    return out


def channel_post_limit(ws: Workspace, channel: Channel) -> None:
    """Slack's per-channel posting limit (about one message per second, short bursts)."""
    limit = ws.config.channel_post_limit
    retry_after = ws.limiter.check(f"chat.postMessage#{channel.id}", limit) if limit else 0
    if retry_after:
        raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})


def post(ws: Workspace, channel: Channel, thread_ts: str | None, fields: dict[str, Any], **extra: Any) -> Message:
    msg = Message(channel=channel.id, ts=ws.next_ts(), user=ws.config.bot_user_id, thread_ts=thread_ts)
    for key, value in {**fields, **extra}.items():
        setattr(msg, key, value)
    return ws.add_message(msg)


def own_message(ws: Workspace, channel: Channel, args: Args, name: str = "ts") -> Message:
    ts = args.string(name, required=True)
    msg = ws.message(channel.id, ts)
    if msg is None:
        raise SlackError("message_not_found")
    if msg.user != ws.config.bot_user_id:
        raise SlackError("cant_update_message")
    return msg


@method("chat.postMessage")
def post_message(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    thread_ts = thread_arg(ws, channel, args)
    fields = content(args)
    channel_post_limit(ws, channel)
    msg = post(ws, channel, thread_ts, fields, reply_broadcast=args.flag("reply_broadcast"))
    return {"channel": channel.id, "ts": msg.ts, "message": ws.message_json(msg)}


@method("chat.update")
def update(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    msg = own_message(ws, channel, args)
    fields = content(args, require=False)
    if "text" not in args and "blocks" not in args and "attachments" not in args:
        raise SlackError("no_text")
    ws.edit_message(msg, **{k: v for k, v in fields.items() if k != "text" or "text" in args})
    return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": ws.message_json(msg)}


@method("chat.postEphemeral")
def post_ephemeral(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    user = args.string("user", required=True)
    if user not in ws.users:
        raise SlackError("user_not_found")
    if channel.dm_user not in (None, user):
        raise SlackError("user_not_in_channel")
    thread_ts = thread_arg(ws, channel, args)
    fields = content(args)
    eph = Ephemeral(channel.id, user, ws.next_ts(), fields["text"], fields.get("blocks", []), thread_ts)
    ws.ephemeral_messages.append(eph)
    ws.changed()
    return {"message_ts": eph.ts}


@method("chat.getPermalink")
def get_permalink(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    msg = ws.message(channel.id, args.string("message_ts", required=True))
    if msg is None:
        raise SlackError("message_not_found")
    link = f"https://{ws.config.team_domain}.slack.com/archives/{channel.id}/p{msg.ts.replace('.', '')}"
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def stream_text(args: Args) -> tuple[str, list[dict[str, Any]]]:
    """The markdown an append carries, from ``markdown_text`` and markdown_text chunks."""
    text = args.string("markdown_text")
    chunks = args.structured("chunks", error="invalid_arguments") or []
    for chunk in chunks:
        if not isinstance(chunk, dict) or "type" not in chunk:
            raise invalid_arguments("each chunk must be an object with a type")
        if chunk["type"] == "markdown_text":
            text += str(chunk.get("text", ""))
    if len(text) > MAX_MARKDOWN:
        raise SlackError("msg_too_long")
    return text, chunks


def streaming_message(ws: Workspace, args: Args) -> tuple[Channel, Message]:
    channel = channel_arg(ws, args)
    msg = ws.message(channel.id, args.string("ts", required=True))
    if msg is None:
        raise SlackError("message_not_found")
    if not msg.streaming:
        raise SlackError("message_not_in_streaming_state")
    return channel, msg


@method("chat.startStream")
def start_stream(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    if "thread_ts" not in args:
        raise missing("thread_ts")
    thread_ts = thread_arg(ws, channel, args)
    if channel.dm_user is None:
        if "recipient_user_id" not in args:
            raise SlackError("missing_recipient_user_id")
        if "recipient_team_id" not in args:
            raise SlackError("missing_recipient_team_id")
    text, chunks = stream_text(args)
    msg = post(ws, channel, thread_ts, {"text": text}, streaming=True, chunks=chunks)
    return {"channel": channel.id, "ts": msg.ts}


@method("chat.appendStream")
def append_stream(ws: Workspace, args: Args) -> dict[str, Any]:
    channel, msg = streaming_message(ws, args)
    if "markdown_text" not in args and "chunks" not in args:
        raise missing("markdown_text")
    text, chunks = stream_text(args)
    msg.text += text
    msg.chunks.extend(chunks)
    ws.changed()
    return {"channel": channel.id, "ts": msg.ts}


@method("chat.stopStream")
def stop_stream(ws: Workspace, args: Args) -> dict[str, Any]:
    channel, msg = streaming_message(ws, args)
    text, chunks = stream_text(args)
    fields = content(Args({k: args.values.get(k) for k in ("blocks", "metadata")}), require=False)
    msg.text += text
    msg.chunks.extend(chunks)
    msg.blocks = fields.get("blocks", msg.blocks)
    msg.metadata = fields.get("metadata", msg.metadata)
    msg.streaming = False
    ws.changed()
    return {"channel": channel.id, "ts": msg.ts, "message": ws.message_json(msg)}
