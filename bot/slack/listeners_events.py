"""Bolt listeners of Events API events: a :pushpin: on a thread message pins it into the timeline
(queued for a worker: reading the message is a Slack call)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service.runtime import Runtime
from bot.slack.interactions import Interactions


def register(app: AsyncApp, rt: Runtime, queue: Interactions) -> None:
    @app.event("reaction_added")
    async def on_reaction(body: dict[str, Any], event: dict[str, Any]) -> None:
        key = f"event:{body.get('event_id') or (event.get('item') or {}).get('ts')}:{event.get('user')}"
        rt.spawn(queue.queue(key, {"kind": "reaction", "event": event}, None), name="queue timeline note")
