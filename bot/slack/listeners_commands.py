"""The Bolt listener of `/flk`: parsed and acked at once (a usage line or the help when the text
is not a command), the work queued for a worker (the modal openers run here, in a task)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.telemetry import COMMANDS
from bot.slack.dispatch import Dispatcher
from bot.slack.interactions import IN_FRONT, Interactions
from bot.slack.render import help_blocks, usage_text
from bot.slack.steps import Respond
from commands.export import rows_for
from commands.registry import UsageError, help_lines, parse


def register(app: AsyncApp, d: Dispatcher, queue: Interactions) -> None:
    @app.command(re.compile(r"^/flk"))
    async def on_command(ack: Any, command: dict[str, Any], respond: Respond) -> None:
        text = command.get("text", "")
        cap = d.rt.config.limits.command_text_chars
        if len(text) > cap:
            COMMANDS.labels(verb="?", outcome="usage").inc()
            await ack(
                text=f":x: That command is {len(text):,} characters long; at most {cap:,} are read. Nothing was done."
            )
            return
        try:
            invocation = parse(text)
            if invocation.verb.name == "export":
                rows_for(invocation.args["n"], d.rt.config)
        except UsageError as exc:
            COMMANDS.labels(verb="?", outcome="usage").inc()
            await ack(text=usage_text(exc.text(command.get("command", "/flk"))))
            return
        if invocation.verb.name == "help":
            COMMANDS.labels(verb="help", outcome="ok").inc()
            await ack(text="flk help", blocks=help_blocks(help_lines(command.get("command", "/flk"))))
            return
        await ack(text=f":hourglass_flowing_sand: `/flk {invocation.verb.name}` started…")
        key = f"cmd:{command.get('trigger_id') or command.get('response_url')}"
        user, trigger = command.get("user_id", ""), command.get("trigger_id", "")
        if invocation.verb.name in IN_FRONT:
            work = d.dispatch(invocation, user, respond, text, trigger)
            d.rt.spawn(d.once(key, work, verb=invocation.verb.name), name=f"flk {invocation.verb.name}")
            return
        payload = {"kind": "command", "text": text, "user": user, "response_url": command.get("response_url")}
        d.rt.spawn(queue.queue(key, payload, respond), name=f"queue flk {invocation.verb.name}")
