"""Bolt listeners of modal submissions: the tenant notice and the resolve form. A submission that
must change nothing says why on the modal; the work runs after the ack."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.telemetry import note_outcome
from bot.slack.comms_views import Target
from bot.slack.dispatch import Dispatcher
from bot.slack.render import usage_text
from commands.comms import TemplateError
from commands.flows.actors import Refused
from commands.registry import UsageError
from integrations.errors import BackendError
from integrations.store import StoreUnavailable

log = logging.getLogger(__name__)


def register(app: AsyncApp, d: Dispatcher) -> None:
    rt, comms, once = d.rt, d.comms, d.once

    async def tell(user: str, text: str) -> None:
        """A view submission has no response URL: a word to the person in the incident channel."""
        await rt.io.client.chat_postEphemeral(channel=rt.settings.incident_channel, user=user, text=text)

    async def after_submit(user: str, what: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Refused as exc:
            note_outcome("refused")
            await tell(user, f":no_entry: {exc} Nothing was sent.")
        except (UsageError, ValueError) as exc:
            note_outcome("usage")
            await tell(user, usage_text(str(exc)))
        except TemplateError as exc:
            note_outcome("error")
            await tell(user, f":x: The {what} template failed: {exc}")
        except BackendError as exc:
            note_outcome("error")
            await tell(user, f":x: The {what} was not completed: {exc.system}: {exc.reason}")
        except StoreUnavailable:
            note_outcome("error")
            text = f":x: The incident store is unavailable, so the {what} was not sent; open it again in a minute."
            await tell(user, text)

    def first_block(view: dict[str, Any]) -> str:
        inputs = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input" and b.get("block_id")]
        return inputs[0] if inputs else "none"

    @app.view("flk_notify")  # comms_views.NOTIFY
    async def on_notify(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        target = Target.of(view)
        if target is None or target.tenant is None:
            await ack(response_action="errors", errors={first_block(view): "This form is not from flk; open it again."})
            return
        await ack()
        user = body.get("user", {}).get("id", "")
        work = after_submit(user, "tenant notice", lambda: comms.submit_notify(view, user))
        rt.spawn(once(f"view:{view['id']}", work, verb="notify.submit"), name="notify submitted")

    @app.view("flk_resolve")  # comms_views.RESOLVE
    async def on_resolve(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        # Checked before the ack so that the person sees it on the modal and nothing changes.
        try:
            refusal = await comms.check_resolve(view)
        except StoreUnavailable:
            refusal = "The incident store is unavailable; nothing changed. Submit again in a minute."
        if refusal:
            await ack(response_action="errors", errors={first_block(view): refusal[:150]})
            return
        await ack()
        user = body.get("user", {}).get("id", "")
        work = after_submit(user, "resolve", lambda: comms.submit_resolve(view, user))
        rt.spawn(once(f"view:{view['id']}", work, verb="resolve.submit"), name="resolve submitted")
