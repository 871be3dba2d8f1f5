"""Bolt listeners of modal submissions: the tenant notice and the resolve form. A submission that
must change nothing says why on the modal (in the request); the work is queued for a worker."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.comms_views import Target
from bot.slack.dispatch import Dispatcher
from bot.slack.interactions import Interactions
from integrations.store import StoreUnavailable


def register(app: AsyncApp, d: Dispatcher, queue: Interactions) -> None:
    rt, comms = d.rt, d.comms

    def first_block(view: dict[str, Any]) -> str:
        inputs = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input" and b.get("block_id")]
        return inputs[0] if inputs else "none"

    def submitted(kind: str, body: dict[str, Any], view: dict[str, Any]) -> None:
        payload = {"kind": kind, "user": body.get("user", {}).get("id", ""), "view": view}
        rt.spawn(queue.queue(f"view:{view['id']}", payload, None), name=f"queue {kind}")

    @app.view("flk_notify")  # comms_views.NOTIFY
    async def on_notify(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        target = Target.of(view)
        if target is None or target.tenant is None:
            await ack(response_action="errors", errors={first_block(view): "This form is not from flk; open it again."})
            return
        await ack()
        submitted("notify.submit", body, view)

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
        submitted("resolve.submit", body, view)
