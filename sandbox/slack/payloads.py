"""What Slack sends an app, built from the emulator's state: slash command forms,
block_actions and view_submission payloads, Events API callbacks."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sandbox.slack.workspace import Workspace


def user_ref(ws: Workspace, user: str) -> dict[str, Any]:
    found = ws.users.get(user)
    name = found.name if found else user
    return {"id": user, "username": name, "name": name, "team_id": ws.config.team_id}


def team_ref(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.config.team_id, "domain": ws.config.team_domain}


def action_ts() -> str:
    return f"{time.time():.6f}"


def slash_command(
    ws: Workspace, *, command: str, text: str, user: str, channel: str, response_url: str, trigger_id: str
) -> dict[str, str]:
    """The form fields of a slash command (Socket Mode sends the same fields as JSON)."""
    found = ws.users.get(user)
    return {
        "token": ws.config.verification_token,
        "team_id": ws.config.team_id,
        "team_domain": ws.config.team_domain,
        "channel_id": channel,
        "channel_name": ws.channels[channel].name if channel in ws.channels else channel,
        "user_id": user,
        "user_name": found.name if found else user,
        "command": command,
        "text": text,
        "api_app_id": ws.config.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    options = [o for g in element.get("option_groups", []) for o in g.get("options", [])]
    options += element.get("options", [])
    for option in options:
        if option.get("value") == value:
            return option
    if element.get("type", "").endswith("external_select"):
        return {"text": {"type": "plain_text", "text": value}, "value": value}
    raise ValueError(f"{element.get('action_id')!r} has no option with value {value!r}")


def element_value(element: dict[str, Any], given: Any) -> dict[str, Any]:
    """An element's value the way Slack reports it (in ``actions`` and in ``state.values``).

    ``given`` is a plain value: an option's value, a list of them, a user id, a date...;
    None means the element's initial value (what the user saw and left alone).
    """
    kind = str(element.get("type"))
    out: dict[str, Any] = {"type": kind}
    if kind in ("static_select", "external_select", "radio_buttons", "overflow"):
        chosen = _option(element, given) if given is not None else element.get("initial_option")
        out["selected_option"] = chosen
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        chosen_list = [_option(element, v) for v in given] if given is not None else None
        out["selected_options"] = chosen_list if chosen_list is not None else element.get("initial_options", [])
    elif kind in (
        "users_select",
        "multi_users_select",
        "conversations_select",
        "channels_select",
        "multi_conversations_select",
        "multi_channels_select",
    ):
        noun = {"users": "user", "conversations": "conversation", "channels": "channel"}[
            kind.removeprefix("multi_").removesuffix("_select")
        ]
        multi = kind.startswith("multi_")
        key = f"selected_{noun}s" if multi else f"selected_{noun}"
        out[key] = given if given is not None else element.get(f"initial_{noun}s" if multi else f"initial_{noun}")
    elif kind == "datepicker":
        out["selected_date"] = given if given is not None else element.get("initial_date")
    elif kind == "timepicker":
        out["selected_time"] = given if given is not None else element.get("initial_time")
    else:
        out["value"] = given if given is not None else element.get("initial_value")
    return out


def find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(block, element) of the interactive element with ``action_id``, if present."""
    for block in blocks:
        candidates = list(block.get("elements", [])) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None


def action(block: dict[str, Any], element: dict[str, Any], given: Any) -> dict[str, Any]:
    """One entry of a block_actions payload's ``actions``."""
    out: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block.get("block_id")}
    if element.get("type") == "button":
        out.update(type="button", text=element.get("text"), action_ts=action_ts())
        if "value" in element:
            out["value"] = element["value"]
        if "style" in element:
            out["style"] = element["style"]
        return out
    out.update(element_value(element, given))
    out["action_ts"] = action_ts()
    return out


def state_values(blocks: list[dict[str, Any]], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``view.state.values`` for a submission: every input block, ``given`` keyed by action_id."""
    unknown = set(given)
    values: dict[str, dict[str, Any]] = {}
    for block in blocks:
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        action_id = str(element.get("action_id"))
        unknown.discard(action_id)
        values.setdefault(str(block.get("block_id")), {})[action_id] = element_value(element, given.get(action_id))
    if unknown:
        raise ValueError(f"the view has no input with action_id {sorted(unknown)}")
    return values


def interaction(ws: Workspace, kind: str, user: str, trigger_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "user": user_ref(ws, user),
        "api_app_id": ws.config.app_id,
        "token": ws.config.verification_token,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        **fields,
    }


def event_callback(ws: Workspace, event: dict[str, Any]) -> dict[str, Any]:
    """An Events API ``event_callback`` wrapping ``event`` (``event_ts`` filled in if missing)."""
    now = time.time()
    event = {"event_ts": f"{now:.6f}", **event}
    return {
        "token": ws.config.verification_token,
        "team_id": ws.config.team_id,
        "api_app_id": ws.config.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.config.team_id,
                "user_id": ws.config.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
