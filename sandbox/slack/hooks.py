"""The non-API URLs Slack hands out: response_url, file upload URLs, file downloads."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from sandbox.slack.api import WORKSPACE, slack_json
from sandbox.slack.args import Args
from sandbox.slack.errors import SlackError
from sandbox.slack.methods_chat import content, post, thread_arg
from sandbox.slack.models import Call, Ephemeral, ResponseUrl
from sandbox.slack.workspace import Workspace


def _expired(ws: Workspace, ru: ResponseUrl) -> bool:
    too_old = time.monotonic() - ru.created > ws.config.response_url_ttl
    return too_old or ru.uses >= ws.config.response_url_max_uses


def _apply(ws: Workspace, ru: ResponseUrl, body: dict[str, Any]) -> None:
    """What Slack does with one response_url post."""
    source_eph = next(
        (e for e in ws.ephemeral_messages if ru.source_ephemeral and e.ts == ru.source_ts and not e.deleted), None
    )
    source_msg = None if ru.source_ephemeral or not ru.source_ts else ws.message(ru.channel, ru.source_ts)
    args = Args(body)
    if args.flag("delete_original"):
        if source_eph is None and source_msg is None:
            raise SlackError("message_not_found", status=404)
        if source_eph is not None:
            source_eph.deleted = True
        if source_msg is not None:
            source_msg.deleted = True
        ws.changed()
        return
    fields = content(args)
    if args.flag("replace_original") and (source_eph is not None or source_msg is not None):
        if source_msg is not None:
            ws.edit_message(source_msg, **fields)
        elif source_eph is not None:
            source_eph.edits.append({"text": source_eph.text, "blocks": source_eph.blocks})
            source_eph.text, source_eph.blocks = fields["text"], fields.get("blocks", [])
            ws.changed()
        return
    channel = ws.channels[ru.channel]
    thread_ts = thread_arg(ws, channel, args)
    if body.get("response_type") == "in_channel":
        post(ws, channel, thread_ts, fields)
    else:
        eph = Ephemeral(
            ru.channel,
            ru.user,
            ws.next_ts(),
            fields["text"],
            fields.get("blocks", []),
            thread_ts or ru.thread_ts,
            source="response_url",
        )
        ws.ephemeral_messages.append(eph)
        ws.changed()


async def handle_response_url(request: web.Request) -> web.Response:
    """POST to a response_url: ephemeral by default, ``in_channel``, ``replace_original``,
    ``delete_original``; usable ``response_url_max_uses`` times within ``response_url_ttl``."""
    ws = request.app[WORKSPACE]
    ru = ws.response_urls.get(request.match_info["token"])
    body: dict[str, Any] = {}
    try:
        if ru is None:
            raise SlackError("no_service", status=404)
        if _expired(ws, ru):
            raise SlackError("expired_url", status=404)
        try:
            raw = await request.text()
            if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                raw = str((await request.post()).get("payload", ""))
            parsed = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_payload", status=400) from None
        if not isinstance(parsed, dict):
            raise SlackError("invalid_payload", status=400)
        body = parsed
        ru.uses += 1
        _apply(ws, ru, body)
        result, status = {"ok": True}, 200
    except SlackError as e:
        result, status = {"ok": False, "error": e.code}, e.status if e.status != 200 else 400
    ws.record(Call("response_url", body, result["ok"], result.get("error"), status))
    return slack_json(result, status)


async def handle_upload(request: web.Request) -> web.Response:
    """The upload URL from files.getUploadURLExternal: raw bytes or a multipart ``file`` part."""
    ws = request.app[WORKSPACE]
    file_id = ws.upload_tokens.get(request.match_info["token"])
    f = ws.uploads.get(file_id or "")
    if f is None or f.completed:
        return web.Response(status=404, text="upload_url_not_found", content_type="text/plain")
    if request.content_type == "multipart/form-data":
        part = (await request.post()).get("file")
        data = part.file.read() if isinstance(part, web.FileField) else str(part or "").encode()
    else:
        data = await request.read()
    f.content = data
    ws.changed()
    return web.Response(text=f"OK - {len(data)}", content_type="text/plain")


async def handle_file_download(request: web.Request) -> web.Response:
    """``url_private`` of a file: needs the bot token, like Slack."""
    ws = request.app[WORKSPACE]
    if request.headers.get("Authorization") != f"Bearer {ws.config.bot_token}":
        return web.Response(status=401, text="not_authed", content_type="text/plain")
    f = ws.uploads.get(request.match_info["file_id"])
    if f is None or not f.completed:
        return web.Response(status=404, text="file_not_found", content_type="text/plain")
    return web.Response(body=f.content or b"", content_type="application/octet-stream")
