"""Bolt listeners of Events API events: a :pushpin: on a thread message pins it into the timeline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.runtime import Runtime
from bot.slack.comms_ops import CommsOps


def register(app: AsyncApp, rt: Runtime, ops: CommsOps) -> None:
    @app.event("reaction_added")
    async def on_reaction(event: dict[str, Any]) -> None:
        rt.spawn(ops.on_reaction(event), name="timeline note")
