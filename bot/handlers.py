"""Bolt listeners: `/flk` and its buttons. Each acks at once and leaves the work to a task."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.render import help_blocks, usage_text
from bot.runtime import Runtime
from bot.steps import Respond, list_breaching, triage_in_thread
from bot.telemetry import COMMANDS
from bot.threads import TenantThreads
from commands.registry import Invocation, UsageError, help_lines, parse

log = logging.getLogger(__name__)


def register(app: AsyncApp, rt: Runtime, threads: TenantThreads) -> None:
    async def dispatch(invocation: Invocation, user: str, respond: Respond) -> None:
        verb, args = invocation.verb.name, invocation.args
        if verb == "triage" and args["tenant"] is None:
            await list_breaching(rt, respond)
        elif verb == "triage":
            await triage_in_thread(rt, threads, args["tenant"], user, respond)

    @app.command(re.compile(r"^/flk"))
    async def on_command(ack: Any, command: dict[str, Any], respond: Respond) -> None:
        text = command.get("text", "")
        try:
            invocation = parse(text)
        except UsageError as exc:
            COMMANDS.labels(verb="?", outcome="usage").inc()
            await ack(text=usage_text(exc.text(command.get("command", "/flk"))))
            return
        if invocation.verb.name == "help":
            COMMANDS.labels(verb="help", outcome="ok").inc()
            await ack(text="flk help", blocks=help_blocks(help_lines(command.get("command", "/flk"))))
            return
        # Slack retries carry the same trigger_id: the first delivery wins.
        if not rt.dedupe.claim(f"cmd:{command.get('trigger_id') or command.get('response_url')}"):
            await ack()
            return
        await ack(text=f":hourglass_flowing_sand: `{invocation.verb.name}` started…")
        COMMANDS.labels(verb=invocation.verb.name, outcome="started").inc()
        rt.spawn(dispatch(invocation, command.get("user_id", ""), respond), name=f"flk {invocation.verb.name}")

    @app.action(re.compile(r"^flk_run:"))
    async def on_run_button(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        await ack()
        key = f"act:{body.get('trigger_id')}:{action.get('action_ts')}"
        if not rt.dedupe.claim(key):
            return
        try:
            invocation = parse(action.get("value", ""))
        except UsageError as exc:
            await respond(text=usage_text(exc.text()), replace_original=False)
            return
        user = body.get("user", {}).get("id", "")
        COMMANDS.labels(verb=invocation.verb.name, outcome="button").inc()
        rt.spawn(dispatch(invocation, user, respond), name=f"button {invocation.verb.name}")
