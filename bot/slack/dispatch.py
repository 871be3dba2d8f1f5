"""What a `/flk` command or a button asks for, handed to the step, flow or Slack view that does
it; and ``once``, which runs a delivery once across Slack's retries and the replicas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.service.logs import bind
from bot.service.runtime import Runtime
from bot.service.telemetry import count_command, note_outcome
from bot.slack.comms import Communications
from bot.slack.incidents import IncidentThreads
from bot.slack.mitigations import Mitigations
from bot.slack.render import usage_text
from bot.slack.render_incident import incidents_blocks, status_blocks
from bot.slack.steps import Respond, list_breaching, request_step
from commands.incidents import open_incidents, status_of
from commands.registry import Invocation, UsageError
from integrations.store import StoreUnavailable


@dataclass
class Dispatcher:
    rt: Runtime
    threads: IncidentThreads
    mitigations: Mitigations
    comms: Communications

    async def dispatch(
        self,
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
                await list_breaching(self.rt, respond)
            elif verb in ("triage", "diagnose", "export"):
                await request_step(self.rt, self.threads, verb, text, args, user, respond)
            elif verb == "mitigate":
                await self.mitigations.request(args, user, respond, text)
            elif verb == "undo":
                await self.mitigations.undo(args["plan_id"], user, respond)
            elif verb == "extend":
                await self.mitigations.extend(args["plan_id"], user, respond, args["lasts_s"])
            elif verb == "verify":
                await self.mitigations.verify(args, user, respond)
            elif verb == "incidents" or (verb == "status" and args["tenant"] is None):
                text, blocks = incidents_blocks(await open_incidents(self.rt.store))
                await respond(text=text, blocks=blocks)
            elif verb == "status":
                text, blocks = status_blocks(await status_of(self.rt.store, args["tenant"]))
                await respond(text=text, blocks=blocks)
            elif verb == "notify":
                await self.comms.open_notify(args["tenant"], user, respond, trigger_id, incident_id)
            elif verb == "resolve":
                await self.comms.open_resolve(args["tenant"], user, respond, trigger_id, incident_id)
            elif verb == "rca":
                await self.comms.post_rca(args["tenant"], user, respond, incident_id)
            elif verb == "silence":
                await self.comms.silence(args, user, respond)
        except UsageError as exc:
            note_outcome("usage")
            await respond(text=usage_text(str(exc)))
        except StoreUnavailable:
            note_outcome("error")
            await respond(text=":x: The incident store is unavailable; try again in a minute.")

    async def once(self, key: str, work: Any, verb: str | None = None, respond: Respond | None = None) -> None:
        """Slack retries and double deliveries reuse the key: the first one runs, across replicas
        (for the modal openers that run in the front; queued deliveries are one job per key)."""
        if not await self.rt.claim(key):
            work.close()
            return
        await self.run(work, verb, respond)

    async def run(self, work: Any, verb: str | None = None, respond: Respond | None = None) -> None:
        """With ``verb``, the run is counted in /metrics by its outcome. With ``respond``, a store
        outage is told to the person (plans and their state live there) instead of leaving them
        with a button that did nothing."""
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
