"""views.push as Slack does it: only with a trigger from an interaction inside an open modal,
onto that modal's stack, at most two views on top of the modal, each trigger once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackConfig, SlackEmulator


def modal(title: str) -> dict[str, Any]:
    text = {"type": "mrkdwn", "text": title}
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": [{"type": "section", "text": text}],
    }


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(SlackConfig()) as emulator:
        yield emulator


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as failed:
        await call
    return str(failed.value.response["error"])


async def test_pushes_stack_on_the_modal_the_interaction_was_in(slack: SlackEmulator) -> None:
    client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
    ws = slack.workspace
    root = (await client.views_open(trigger_id=ws.issue_trigger("U_ALICE", "C_INCIDENTS"), view=modal("Root")))["view"]
    # A trigger from a message (not from inside a modal) has no stack to push onto.
    outside = ws.issue_trigger("U_ALICE", "C_INCIDENTS")
    assert await error_of(client.views_push(trigger_id=outside, view=modal("Lost"))) == "not_found"
    inside = ws.issue_trigger("U_ALICE", None, root["id"])
    second = (await client.views_push(trigger_id=inside, view=modal("Second")))["view"]
    assert (second["root_view_id"], second["previous_view_id"]) == (root["id"], root["id"])
    assert second["id"] != root["id"]
    assert await error_of(client.views_push(trigger_id=inside, view=modal("Again"))) == "exchanged_trigger_id"
    third = await client.views_push(trigger_id=ws.issue_trigger("U_ALICE", None, second["id"]), view=modal("Third"))
    assert third["view"]["previous_view_id"] == second["id"] and third["view"]["root_view_id"] == root["id"]
    fourth = client.views_push(trigger_id=ws.issue_trigger("U_ALICE", None, third["view"]["id"]), view=modal("Fourth"))
    assert await error_of(fourth) == "push_limit_reached"
    assert [v.view["title"]["text"] for v in slack.views("U_ALICE", open_only=True)] == ["Root", "Second", "Third"]
    # A closed modal has no stack either.
    ws.opened_views[root["id"]].closed = True
    from_closed = ws.issue_trigger("U_ALICE", None, root["id"])
    assert await error_of(client.views_push(trigger_id=from_closed, view=modal("X"))) == "not_found"
