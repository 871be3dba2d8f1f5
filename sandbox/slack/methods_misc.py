"""auth, apps.connections, conversations, views, files, usergroups, users, reactions."""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

from sandbox.slack.args import Args
from sandbox.slack.blockkit import check_view
from sandbox.slack.errors import SlackError, invalid_arguments, missing
from sandbox.slack.methods_chat import channel_arg, post, thread_arg, with_block_ids
from sandbox.slack.models import File, Message, Trigger, View
from sandbox.slack.registry import method
from sandbox.slack.workspace import Workspace, new_id

MAX_VIEW_BYTES = 250_000
_EMOJI = re.compile(r"^[a-z0-9_+\-']+(::skin-tone-\d)?$")


@method("auth.test")
def auth_test(ws: Workspace, args: Args) -> dict[str, Any]:
    c = ws.config
    return {
        "url": f"https://{c.team_domain}.slack.com/",
        "team": c.team_name,
        "user": c.bot_name,
        "team_id": c.team_id,
        "user_id": c.bot_user_id,
        "bot_id": c.bot_id,
        "is_enterprise_install": False,
    }


@method("apps.connections.open")
def connections_open(ws: Workspace, args: Args) -> dict[str, Any]:
    ticket = secrets.token_hex(16)
    ws.socket_tickets.add(ticket)
    ws_base = ws.base_url.replace("http://", "ws://", 1)
    return {"url": f"{ws_base}link/?ticket={ticket}&app_id={ws.config.app_id}"}


def _page(args: Args, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Slack's cursor pagination over an already filtered and ordered list."""
    limit = min(max(args.integer("limit", 100), 1), 999)
    start = 0
    if "cursor" in args:
        try:
            start = int(base64.b64decode(args.string("cursor")).decode().removeprefix("next:"))
        except ValueError:
            raise SlackError("invalid_cursor") from None
    page = items[start : start + limit]
    more = start + limit < len(items)
    cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return page, {"has_more": more, "response_metadata": {"next_cursor": cursor}}


def _in_range(args: Args, msgs: list[Message]) -> list[Message]:
    oldest, latest = args.string("oldest", default="0"), args.string("latest")
    inclusive = args.flag("inclusive")
    try:
        low, high = float(oldest), float(latest) if latest else float("inf")
    except ValueError:
        raise invalid_arguments("oldest and latest must be timestamps") from None

    def keep(m: Message) -> bool:
        t = float(m.ts)
        return low <= t <= high if inclusive else low < t < high

    return [m for m in msgs if keep(m)]


@method("conversations.history")
def history(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    top = [m for m in channel.messages.values() if not m.deleted and (not m.is_reply or m.reply_broadcast)]
    page, meta = _page(args, _in_range(args, top)[::-1])
    return {"messages": [ws.message_json(m) for m in page], "pin_count": 0, **meta}


@method("conversations.replies")
def replies(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    ts = args.string("ts", required=True)
    parent = ws.message(channel.id, ts)
    if parent is None:
        raise SlackError("thread_not_found")
    if parent.is_reply:
        parent = ws.message(channel.id, parent.thread_ts or "") or parent
    thread = [parent, *ws.replies(channel, parent.ts)]
    page, meta = _page(args, _in_range(args, thread))
    return {"messages": [ws.message_json(m) for m in page], **meta}


def _view_arg(args: Args) -> dict[str, Any]:
    view = args.structured("view", error="invalid_arguments", kind=dict)
    if view is None:
        raise missing("view")
    if len(json.dumps(view)) > MAX_VIEW_BYTES:
        raise SlackError("view_too_large")
    problems = check_view(view)
    if problems:
        raise SlackError("invalid_arguments", messages=problems)
    return view


def _view_json(ws: Workspace, view_id: str, view: dict[str, Any], root: str) -> dict[str, Any]:
    return {
        "id": view_id,
        "team_id": ws.config.team_id,
        "type": view["type"],
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": with_block_ids(view["blocks"]),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""),
        "state": {"values": {}},
        "hash": f"{secrets.randbelow(10**10)}.{secrets.token_hex(4)}",
        "clear_on_close": bool(view.get("clear_on_close")),
        "notify_on_close": bool(view.get("notify_on_close")),
        "root_view_id": root,
        "previous_view_id": None,
        "app_id": ws.config.app_id,
        "bot_id": ws.config.bot_id,
        "app_installed_team_id": ws.config.team_id,
    }


def _trigger_and_view(ws: Workspace, args: Args) -> tuple[Trigger, dict[str, Any]]:
    """The request's trigger and view, as Slack checks them: the trigger known, unused, unexpired."""
    trigger_id = args.string("trigger_id", required=True)
    trigger = ws.triggers.get(trigger_id)
    if trigger is None:
        raise invalid_arguments("invalid `trigger_id`")
    view = _view_arg(args)
    if trigger.used:
        raise SlackError("exchanged_trigger_id")
    if ws.trigger_expired(trigger):
        raise SlackError("expired_trigger_id")
    return trigger, view


@method("views.open")
def views_open(ws: Workspace, args: Args) -> dict[str, Any]:
    trigger, view = _trigger_and_view(ws, args)
    external_id = view.get("external_id")
    if external_id and any(v.view.get("external_id") == external_id for v in ws.opened_views.values()):
        raise SlackError("duplicate_external_id")
    trigger.used = True
    view_id = new_id("V")
    opened = View(view_id, trigger.user, _view_json(ws, view_id, view, view_id))
    ws.opened_views[view_id] = opened
    ws.changed()
    return {"view": opened.view}


# A modal and at most two views pushed onto it (views.push: push_limit_reached).
MAX_VIEW_STACK = 3


@method("views.push")
def views_push(ws: Workspace, args: Args) -> dict[str, Any]:
    """Push a view onto the stack of the modal the trigger's interaction happened in."""
    trigger, view = _trigger_and_view(ws, args)
    below = ws.opened_views.get(trigger.view_id or "")
    if below is None or below.closed:
        raise SlackError("not_found")
    root = below.view.get("root_view_id") or below.id
    stack = [v for v in ws.opened_views.values() if not v.closed and v.view.get("root_view_id") == root]
    if len(stack) >= MAX_VIEW_STACK:
        raise SlackError("push_limit_reached")
    trigger.used = True
    view_id = new_id("V")
    pushed = View(view_id, trigger.user, {**_view_json(ws, view_id, view, root), "previous_view_id": below.id})
    ws.opened_views[view_id] = pushed
    ws.changed()
    return {"view": pushed.view}


@method("views.update")
def views_update(ws: Workspace, args: Args) -> dict[str, Any]:
    view_id, external_id = args.string("view_id"), args.string("external_id")
    if not view_id and not external_id:
        raise invalid_arguments("must provide either view_id or external_id")
    found = [
        v
        for v in ws.opened_views.values()
        if not v.closed and (v.id == view_id or (external_id and v.view.get("external_id") == external_id))
    ]
    view = _view_arg(args)
    if not found:
        raise SlackError("not_found")
    opened = found[0]
    if "hash" in args and args.string("hash") != opened.hash:
        raise SlackError("hash_conflict")
    opened.history.append(opened.view)
    opened.view = _view_json(ws, opened.id, view, opened.view["root_view_id"])
    ws.changed()
    return {"view": opened.view}


@method("files.getUploadURLExternal")
def get_upload_url(ws: Workspace, args: Args) -> dict[str, Any]:
    filename = args.string("filename", required=True)
    length = args.integer("length", 0)
    if length < 1:
        raise invalid_arguments("length must be a positive integer")
    if length > ws.config.max_upload_bytes:
        raise SlackError("file_too_large")
    file_id = new_id("F")
    ws.uploads[file_id] = File(
        file_id,
        filename,
        length,
        ws.config.bot_user_id,
        alt_txt=args.opt("alt_txt"),
        snippet_type=args.opt("snippet_type"),
    )
    token = secrets.token_urlsafe(16)
    ws.upload_tokens[token] = file_id
    return {"upload_url": f"{ws.base_url}upload/v1/{token}", "file_id": file_id}


@method("files.completeUploadExternal")
def complete_upload(ws: Workspace, args: Args) -> dict[str, Any]:
    entries = args.structured("files", error="invalid_arguments")
    if not entries:
        raise missing("files")
    files: list[File] = []
    for entry in entries:
        f = ws.uploads.get(entry.get("id", "")) if isinstance(entry, dict) else None
        if f is None or f.content is None:
            raise SlackError("file_not_found")
        files.append(f)
    channel_refs = [args.string("channel_id")] if "channel_id" in args else []
    channel_refs += [c for c in args.string("channels").split(",") if c]
    channels = [c for c in map(ws.resolve_channel, channel_refs) if c is not None]
    if len(channels) != len(channel_refs):
        raise SlackError("invalid_channel")
    if "thread_ts" in args and len(channels) != 1:
        raise invalid_arguments("thread_ts needs exactly one channel")
    for f, entry in zip(files, entries, strict=True):
        f.title = entry.get("title") or f.title or f.name
        f.completed = True
    for channel in channels:
        thread_ts = thread_arg(ws, channel, args)
        msg = post(ws, channel, thread_ts, {"text": args.string("initial_comment")}, files=[f.id for f in files])
        for f in files:
            f.shares.append((channel.id, msg.ts, thread_ts))
    ws.changed()
    return {"files": [ws.file_json(f) for f in files]}


@method("usergroups.users.list")
def usergroup_users(ws: Workspace, args: Args) -> dict[str, Any]:
    group = args.string("usergroup", required=True)
    if group not in ws.config.usergroups:
        raise SlackError("no_such_subteam")
    return {"users": list(ws.config.usergroups[group])}


@method("users.info")
def users_info(ws: Workspace, args: Args) -> dict[str, Any]:
    user = ws.users.get(args.string("user", required=True))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": ws.user_json(user)}


@method("reactions.add")
def reactions_add(ws: Workspace, args: Args) -> dict[str, Any]:
    channel = channel_arg(ws, args)
    name = args.string("name", required=True).strip(":")
    if not _EMOJI.match(name):
        raise SlackError("invalid_name")
    msg = ws.message(channel.id, args.string("timestamp", required=True))
    if msg is None:
        raise SlackError("message_not_found")
    users = msg.reactions.setdefault(name, [])
    if ws.config.bot_user_id in users:
        raise SlackError("already_reacted")
    users.append(ws.config.bot_user_id)
    ws.changed()
    return {}
