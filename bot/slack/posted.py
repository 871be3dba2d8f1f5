"""Posts that must not be made twice (an incident's parent message, a tenant notice): each carries
Slack message metadata naming its incident and kind, so that a retry after the store failed to
record the post (a blip between Slack's answer and the write) finds it instead of posting again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.slack.sender import SlackIO
from integrations.store import Incident

EVENT_TYPE = "flk_post"
# How far before the job was queued an earlier attempt's post may be (clocks differ a little).
_SLACK = timedelta(minutes=1)


def marker(incident: Incident, kind: str) -> dict[str, Any]:
    """The incident's id and opening time: unique even across installations sharing a channel."""
    payload = {"incident_id": incident.id, "opened_at": incident.opened_at.isoformat(), "kind": kind}
    return {"event_type": EVENT_TYPE, "event_payload": payload}


async def posted_before(io: SlackIO, channel: str, incident: Incident, kind: str, since: datetime) -> str | None:
    """The ts of the bot's post of ``kind`` for the incident in ``channel`` since ``since``, if an
    earlier attempt made it; None when there is none."""
    wanted = marker(incident, kind)
    oldest = f"{(since - _SLACK).timestamp():.6f}"
    cursor = None
    for _ in range(5):  # 5 pages of 200: far more than a channel gets between two attempts
        page = await io.client.conversations_history(
            channel=channel, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor
        )
        for message in page.get("messages", []):
            if message.get("metadata") == wanted:
                return str(message["ts"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None
