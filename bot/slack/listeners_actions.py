"""Bolt listeners of buttons: a plan's Confirm / Cancel / Undo / Retry / Extend, and the buttons that run a
`/flk` verb (Diagnose, Triage, the parent message's Notify / Resolve / RCA). Each acks at once and
queues the work for a worker (Notify and Resolve open their modal from here)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.logs import bind
from bot.service.telemetry import COMMANDS
from bot.slack.dispatch import Dispatcher
from bot.slack.interactions import IN_FRONT, Interactions
from bot.slack.render import usage_text
from bot.slack.render_incident import INCIDENT_BLOCK
from bot.slack.steps import Respond
from commands.registry import UsageError, parse


def register(app: AsyncApp, d: Dispatcher, queue: Interactions) -> None:
    @app.action(re.compile(r"^flk_(confirm|cancel|undo|retry_restart|extend)$"))
    async def on_mitigation_button(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        await ack()
        user = body.get("user", {}).get("id", "")
        plan_id = str(action.get("value", ""))[:64]
        name = action["action_id"].removeprefix("flk_")
        bind(user=user)  # the task below inherits it
        key = f"act:{body.get('trigger_id')}:{action.get('action_ts')}"
        payload = {
            "kind": "mitigation",
            "name": name,
            "plan_id": plan_id,
            "user": user,
            "response_url": body.get("response_url"),
        }
        d.rt.spawn(queue.queue(key, payload, respond), name=f"queue mitigation {name}")

    @app.action(re.compile(r"^flk_run:"))
    async def on_run_button(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        await ack()
        value = action.get("value", "")
        try:
            invocation = parse(value)
        except UsageError as exc:
            COMMANDS.labels(verb="?", outcome="usage").inc()
            await respond(text=usage_text(exc.text()), replace_original=False)
            return
        user = body.get("user", {}).get("id", "")
        key = f"act:{body.get('trigger_id')}:{action.get('action_ts')}"
        incident_id = int(action["block_id"].removeprefix(INCIDENT_BLOCK)) if _incident_block(action) else None
        if invocation.verb.name in IN_FRONT:
            work = d.dispatch(invocation, user, respond, value, body.get("trigger_id", ""), incident_id)
            d.rt.spawn(d.once(key, work, verb=invocation.verb.name), name=f"button {invocation.verb.name}")
            return
        payload = {
            "kind": "command",
            "text": value,
            "user": user,
            "incident_id": incident_id,
            "response_url": body.get("response_url"),
        }
        d.rt.spawn(queue.queue(key, payload, respond), name=f"queue button {invocation.verb.name}")


def _incident_block(action: dict[str, Any]) -> bool:
    """A button on an incident's parent message: its block names the incident."""
    rest = str(action.get("block_id", "")).removeprefix(INCIDENT_BLOCK)
    return rest != action.get("block_id") and rest.isdigit()
