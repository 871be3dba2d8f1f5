"""The Web API endpoint: ``/api/<method>``. Parses the request the way Slack does (query
string, form or multipart fields, JSON body with a Bearer token), checks the token and the
rate limits, runs the method and answers in Slack's shape. Never a stack trace."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from aiohttp import web

from sandbox.slack import methods_chat, methods_misc  # noqa: F401  (they register the methods)
from sandbox.slack.args import Args
from sandbox.slack.errors import SlackError
from sandbox.slack.models import Call
from sandbox.slack.registry import APP_TOKEN_METHODS, METHODS
from sandbox.slack.workspace import Workspace

log = logging.getLogger(__name__)
WORKSPACE: web.AppKey[Workspace] = web.AppKey("workspace", Workspace)
_dumps = partial(json.dumps, separators=(",", ":"), ensure_ascii=False)
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def slack_json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


async def read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The call's arguments and its token (Authorization header first, then a token field)."""
    values: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = json.loads(await request.text())
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            # Slack ignores a token inside a JSON body: JSON calls must send a Bearer header.
            body.pop("token", None)
            values.update(body)
        elif ctype in _FORMS:
            try:
                form = await request.post()
            except ValueError:
                raise SlackError("invalid_form_data") from None
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
        elif ctype == "application/octet-stream" and not request.headers.get("Content-Type"):
            raise SlackError("missing_post_type")
        else:
            raise SlackError("invalid_post_type")
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    form_token = values.pop("token", None)
    return values, token or (form_token if isinstance(form_token, str) else None)


def check_token(ws: Workspace, method: str, token: str | None) -> None:
    if not token:
        raise SlackError("not_authed")
    wants_app_token = method in APP_TOKEN_METHODS
    if token == ws.config.app_token:
        if not wants_app_token:
            raise SlackError("not_allowed_token_type")
    elif token == ws.config.bot_token:
        if wants_app_token:
            raise SlackError("not_allowed_token_type")
    else:
        raise SlackError("invalid_auth")


def injected(code: str) -> SlackError:
    """A fault asked for by a test or the world panel, in the status Slack sends it with."""
    if code == "internal_error":
        return SlackError(code, status=500)
    if code == "ratelimited":
        return SlackError(code, status=429, headers={"Retry-After": "1"})
    return SlackError(code)


async def handle_api(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE]
    name = request.match_info["method"]
    handler = METHODS.get(name)
    if handler is None:
        return slack_json({"ok": False, "error": "unknown_method", "req_method": name}, status=404)
    args = Args({})
    headers: dict[str, str] = {}
    try:
        values, token = await read_args(request)
        args = Args(values)
        check_token(ws, name, token)
        if ws.failing.get(name):
            ws.failing[name] -= 1
            raise injected(ws.failing_with.get(name, "internal_error"))
        retry_after = ws.limiter.check(name)
        if retry_after:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
        body, status = {"ok": True, **handler(ws, args)}, 200
    except SlackError as e:
        body, status, headers = e.body(), e.status, e.headers
    except Exception:
        log.exception("Slack emulator: %s failed", name)
        body, status = {"ok": False, "error": "internal_error"}, 500
    ws.record(Call(name, args.public(), body["ok"], body.get("error"), status))
    return slack_json(body, status, headers)
