"""Bolt listeners: `/flk` and its buttons. Each acks at once and leaves the work to a task."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.logs import bind
from bot.service.runtime import Runtime
from bot.service.telemetry import COMMANDS, count_command, note_outcome
from bot.slack import comms_handlers
from bot.slack.comms import Communications
from bot.slack.comms_ops import CommsOps
from bot.slack.incidents import IncidentThreads
from bot.slack.mitigations import Mitigations
from bot.slack.render import help_blocks, usage_text
from bot.slack.render_incident import INCIDENT_BLOCK, incidents_blocks, status_blocks
from bot.slack.steps import Respond, list_breaching, request_step
from commands.export import rows_for
from commands.incidents import open_incidents, status_of
from commands.registry import Invocation, UsageError, help_lines, parse
from integrations.store import StoreUnavailable

log = logging.getLogger(__name__)


def register(
    app: AsyncApp, rt: Runtime, threads: IncidentThreads, mitigations: Mitigations, comms: Communications, ops: CommsOps
) -> None:
    async def dispatch(
        invocation: Invocation,
        user: str,
        respond: Respond,
        text: str,
        trigger_id: str = "",
        incident_id: int | None = None,
    ) -> None:
        """``incident_id``: the incident whose message the button was on (slash commands name a tenant)."""
        verb, args = invocation.verb.name, invocation.args
        bind(user=user, tenant_id=args.get("tenant"), incident_id=incident_id)
        try:
            if verb == "triage" and args["tenant"] is None:
                await list_breaching(rt, respond)
            elif verb in ("triage", "diagnose", "export"):
                await request_step(rt, threads, verb, text, args, user, respond)
            elif verb == "mitigate":
                await mitigations.request(args, user, respond, text)
            elif verb == "undo":
                await mitigations.undo(args["plan_id"], user, respond)
            elif verb == "verify":
                await mitigations.verify(args, user, respond)
            elif verb == "incidents" or (verb == "status" and args["tenant"] is None):
                text, blocks = incidents_blocks(await open_incidents(rt.store))
                await respond(text=text, blocks=blocks)
            elif verb == "status":
                text, blocks = status_blocks(await status_of(rt.store, args["tenant"]))
                await respond(text=text, blocks=blocks)
            elif verb == "notify":
                await comms.open_notify(args["tenant"], user, respond, trigger_id, incident_id)
            elif verb == "resolve":
                await comms.open_resolve(args["tenant"], user, respond, trigger_id, incident_id)
            elif verb == "rca":
                await comms.post_rca(args["tenant"], user, respond, incident_id)
            elif verb == "silence":
                await comms.silence(args, user, respond)
        except UsageError as exc:
            note_outcome("usage")
            await respond(text=usage_text(str(exc)))
        except StoreUnavailable:
            note_outcome("error")
            await respond(text=":x: The incident store is unavailable; try again in a minute.")

    @app.action(re.compile(r"^flk_(confirm|cancel|undo|retry_restart)$"))
    async def on_mitigation_button(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        await ack()
        user = body.get("user", {}).get("id", "")
        plan_id = str(action.get("value", ""))[:64]
        name = action["action_id"].removeprefix("flk_")
        bind(user=user)  # the task below inherits it
        if name == "confirm":
            work = mitigations.confirm(plan_id, user, respond)
        elif name == "cancel":
            work = mitigations.cancel(plan_id, user, respond)
        elif name == "undo":
            work = mitigations.undo(plan_id, user, respond)
        else:
            work = mitigations.retry_restart(plan_id, user, respond)
        key = f"act:{body.get('trigger_id')}:{action.get('action_ts')}"
        rt.spawn(once(key, work, verb=f"mitigation.{name}", respond=respond), name=f"mitigation {name}")

    @app.command(re.compile(r"^/flk"))
    async def on_command(ack: Any, command: dict[str, Any], respond: Respond) -> None:
        text = command.get("text", "")
        try:
            invocation = parse(text)
            if invocation.verb.name == "export":
                rows_for(invocation.args["n"], rt.config)
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
        work = dispatch(invocation, command.get("user_id", ""), respond, text, command.get("trigger_id", ""))
        rt.spawn(once(key, work, verb=invocation.verb.name), name=f"flk {invocation.verb.name}")

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
        work = dispatch(invocation, user, respond, value, body.get("trigger_id", ""), incident_id)
        rt.spawn(once(key, work, verb=invocation.verb.name), name=f"button {invocation.verb.name}")

    async def once(key: str, work: Any, verb: str | None = None, respond: Respond | None = None) -> None:
        """Slack retries and double deliveries reuse the key: the first one runs, across replicas.
        With ``verb``, the run is counted in /metrics by its outcome (a repeat is not counted).
        With ``respond``, a store outage is told to the person (plans and their state live there)
        instead of leaving them with a button that did nothing."""
        if not await rt.claim(key):
            work.close()
            return
        try:
            if verb is None:
                await work
            else:
                with count_command(verb):
                    await work
        except StoreUnavailable:
            if respond is None:
                raise
            note_outcome("error")
            text = ":x: The incident store is unavailable, so nothing was changed; try again in a minute."
            await respond(text=text, replace_original=False)

    comms_handlers.register(app, rt, comms, ops, once)


def _incident_block(action: dict[str, Any]) -> bool:
    """A button on an incident's parent message: its block names the incident."""
    rest = str(action.get("block_id", "")).removeprefix(INCIDENT_BLOCK)
    return rest != action.get("block_id") and rest.isdigit()
