"""Slack deliveries the front acks and a worker runs: a `/flk` command, a button, a modal
submission, a reaction. The front parses, acks and queues one ``interaction`` job (a store
insert, after the ack); whichever worker claims it answers through the delivery's response URL.
Slack's retries of one delivery are one job (its key), across replicas.

What must answer inside the request stays in the front (see the listeners): usage lines and
help in the ack, a modal's own errors, and the modals of notify and resolve, whose trigger is
valid for 3 s only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.service.telemetry import note_outcome
from bot.slack.comms_ops import CommsOps
from bot.slack.dispatch import Dispatcher
from bot.slack.render import usage_text
from bot.slack.steps import Respond
from commands.comms import TemplateError
from commands.flows.actors import Refused
from commands.flows.jobs import Job, JobQueue
from commands.registry import UsageError, parse
from integrations.errors import BackendError
from integrations.store import JobItem, StoreUnavailable

log = logging.getLogger(__name__)

# Verbs that open a modal: run in the front, inside the trigger's 3 s.
IN_FRONT = frozenset({"notify", "resolve"})
_STORE_DOWN = ":x: The incident store is unavailable, so nothing was changed; try again in a minute."


async def _no_response(**_: Any) -> None:
    """A delivery without a response URL (a reaction) answers nobody."""


class Interactions:
    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    async def queue(self, key: str, payload: dict[str, Any], respond: Respond | None) -> None:
        """The front's whole share of the work after the ack: one insert (dropped when Slack
        retried a delivery already queued)."""
        try:
            await self.jobs.enqueue(Job.INTERACTION, payload, key=key)
        except StoreUnavailable:
            note_outcome("error")
            log.warning("%s not queued: incident store unavailable", payload.get("kind"))
            if respond is not None:
                await respond(text=_STORE_DOWN, replace_original=False)


class InteractionRunner:
    """The worker's side: the delivery's work, done as the front once did it in a task."""

    def __init__(self, d: Dispatcher, ops: CommsOps) -> None:
        self.d = d
        self.ops = ops

    async def op_interaction(self, item: JobItem) -> None:
        try:
            await self._run(item.payload)
        except StoreUnavailable:
            raise  # the queue retries it once the store is back
        except Exception:
            # Run once, as when it ran in a task of the front: a bug must not answer 20 times.
            log.exception("%s failed", item.payload.get("kind"))

    async def _run(self, p: dict[str, Any]) -> None:
        url = p.get("response_url")
        respond: Respond = AsyncRespond(response_url=url) if url else _no_response
        kind, user = p["kind"], p.get("user", "")
        if kind == "command":
            invocation = parse(p["text"])
            work = self.d.dispatch(invocation, user, respond, p["text"], p.get("trigger_id", ""), p.get("incident_id"))
            await self.d.run(work, verb=invocation.verb.name)
        elif kind == "mitigation":
            name = p["name"]
            actions = {
                "confirm": self.d.mitigations.confirm,
                "cancel": self.d.mitigations.cancel,
                "undo": self.d.mitigations.undo,
                "retry_restart": self.d.mitigations.retry_restart,
                "extend": self.d.mitigations.extend,
            }
            work = actions[name](p["plan_id"], user, respond)
            await self.d.run(work, verb=f"mitigation.{name}", respond=respond)
        elif kind == "notify.submit":
            view, comms = p["view"], self.d.comms
            await self.d.run(self._submitted(user, "tenant notice", lambda: comms.submit_notify(view, user)), kind)
        elif kind == "resolve.submit":
            view, comms = p["view"], self.d.comms
            await self.d.run(self._submitted(user, "resolve", lambda: comms.submit_resolve(view, user)), kind)
        elif kind == "reaction":
            await self.ops.on_reaction(p["event"])
        else:
            log.error("interaction of an unknown kind %r dropped", kind)

    async def _tell(self, user: str, text: str) -> None:
        """A view submission has no response URL: a word to the person in the incident channel."""
        rt = self.d.rt
        await rt.io.client.chat_postEphemeral(channel=rt.settings.incident_channel, user=user, text=text)

    async def _submitted(self, user: str, what: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Refused as exc:
            note_outcome("refused")
            await self._tell(user, f":no_entry: {exc} Nothing was sent.")
        except (UsageError, ValueError) as exc:
            note_outcome("usage")
            await self._tell(user, usage_text(str(exc)))
        except TemplateError as exc:
            note_outcome("error")
            await self._tell(user, f":x: The {what} template failed: {exc}")
        except BackendError as exc:
            note_outcome("error")
            await self._tell(user, f":x: The {what} was not completed: {exc.system}: {exc.reason}")
        except StoreUnavailable:
            note_outcome("error")
            text = f":x: The incident store is unavailable, so the {what} was not sent; open it again in a minute."
            await self._tell(user, text)
