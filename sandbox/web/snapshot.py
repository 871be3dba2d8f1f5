"""What the page shows of the emulated workspace, as JSON, and what changed since the last look.

A person sees the workspace as one of its users: every channel message, but only their own
ephemerals and their own open modals. Items are keyed (``m:<channel>:<ts>``, ``e:<ts>``,
``v:<view id>``) so that a change is sent as the items that differ and the keys that are gone.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.models import Ephemeral, File, Message, View
from sandbox.slack.workspace import Workspace

# The first bytes of a text file, shown under its name as Slack previews a snippet.
PREVIEW_BYTES = 1200
TEXT_TYPES = {"csv", "md", "markdown", "txt", "json", "yaml", "yml", "log"}


def group_handle(group_id: str) -> str:
    """``S_ONCALL`` -> ``oncall``: the emulator's user groups have ids only, no handles."""
    return group_id.removeprefix("S_").lower() or group_id


def directory(emulator: SlackEmulator) -> dict[str, Any]:
    """The team, its people, user groups and channels (what the sidebar and mentions need)."""
    ws = emulator.workspace
    groups = ws.config.usergroups
    users = [
        {
            "id": u.id,
            "name": u.name,
            "real_name": u.real_name,
            "is_bot": u.is_bot,
            "groups": [group_handle(g) for g, members in groups.items() if u.id in members],
        }
        for u in ws.users.values()
    ]
    return {
        "team": {"id": ws.config.team_id, "name": ws.config.team_name, "domain": ws.config.team_domain},
        "bot_user": ws.config.bot_user_id,
        "users": users,
        "usergroups": [{"id": g, "handle": group_handle(g), "members": list(m)} for g, m in groups.items()],
        "channels": [{"id": c.id, "name": c.name, "dm_user": c.dm_user} for c in ws.channels.values()],
    }


def file_json(f: File) -> dict[str, Any]:
    kind = f.name.rsplit(".", 1)[-1].lower() if "." in f.name else "text"
    out: dict[str, Any] = {
        "id": f.id,
        "name": f.name,
        "title": f.title or f.name,
        "filetype": kind,
        "size": len(f.content or b""),
        "alt_txt": f.alt_txt,
    }
    if kind in TEXT_TYPES:
        out["preview"] = (f.content or b"")[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    return out


def message_json(ws: Workspace, msg: Message) -> dict[str, Any]:
    channel = ws.channels[msg.channel]
    replies = [] if msg.is_reply else ws.replies(channel, msg.ts)
    return {
        "kind": "message",
        "channel": msg.channel,
        "ts": msg.ts,
        "user": msg.user,
        "bot": msg.bot,
        "text": msg.text,
        "blocks": msg.blocks,
        "attachments": msg.attachments,
        "thread_ts": msg.thread_ts,
        "is_reply": msg.is_reply,
        "reply_broadcast": msg.reply_broadcast,
        "reply_count": len(replies),
        "reply_users": list(dict.fromkeys(r.user for r in replies))[:5],
        "latest_reply": replies[-1].ts if replies else None,
        "files": [file_json(ws.uploads[fid]) for fid in msg.files if fid in ws.uploads],
        "reactions": [{"name": name, "users": users} for name, users in msg.reactions.items() if users],
        "edited": msg.edited_ts is not None,
        "streaming": msg.streaming,
        "chunks": msg.chunks,
    }


def ephemeral_json(ws: Workspace, eph: Ephemeral) -> dict[str, Any]:
    # ``user`` is who sees it; the app posted it (chat.postEphemeral, or its reply to a command).
    return {
        "kind": "ephemeral",
        "channel": eph.channel,
        "ts": eph.ts,
        "user": eph.user,
        "author": ws.config.bot_user_id,
        "text": eph.text,
        "blocks": eph.blocks,
        "thread_ts": eph.thread_ts,
        "source": eph.source,
        "edited": bool(eph.edits),
    }


def view_json(view: View) -> dict[str, Any]:
    return {"kind": "view", "id": view.id, "view": view.view, "errors": view.errors, "opened_at": view.opened_at}


def items(emulator: SlackEmulator, user: str) -> dict[str, dict[str, Any]]:
    """Everything ``user`` can see now, keyed; ``d`` is the directory (a DM channel may appear)."""
    ws = emulator.workspace
    out: dict[str, dict[str, Any]] = {"d": {"kind": "directory", **directory(emulator)}}
    for channel in ws.channels.values():
        for msg in channel.messages.values():
            if not msg.deleted:
                out[f"m:{msg.channel}:{msg.ts}"] = message_json(ws, msg)
    for eph in emulator.ephemerals(user=user):
        out[f"e:{eph.ts}"] = ephemeral_json(ws, eph)
    for view in emulator.views(user, open_only=True):
        out[f"v:{view.id}"] = view_json(view)
    return out


class Changes:
    """What one page has been sent; ``since_last`` answers what it must be sent next."""

    def __init__(self) -> None:
        self._sent: dict[str, str] = {}

    def since_last(self, current: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """``{"upsert": {key: item}, "remove": [key]}``, or None when nothing changed."""
        encoded = {key: json.dumps(item, sort_keys=True) for key, item in current.items()}
        upsert = {key: current[key] for key, text in encoded.items() if self._sent.get(key) != text}
        remove = [key for key in self._sent if key not in encoded]
        self._sent = encoded
        if not upsert and not remove:
            return None
        return {"upsert": upsert, "remove": remove}
