"""Property tests against the real Bolt app: whatever text, button value or Alertmanager body
arrives, the bot answers without a 5xx, changes nothing in the cluster or the channels from
anything malformed or unauthorised, and tells the person who sent it (with the usage line)."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from commands.registry import REGISTRY, UsageError, parse
from sandbox.slack import payloads
from sandbox.up import Sandbox
from tests.bot.harness import Harness, running
from tests.bot.test_telemetry import scrape, scraped_until

PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
USERS = st.sampled_from(["U_ALICE", "U_CAROL"])
NASTY = ["<!channel>", "<@U_ALICE>", "'", '"', "`", "\\", "../", "{", "}", ";", "|", "=", "\n", "\u202e", "x" * 200]
WORD = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_.:/", min_size=1, max_size=30),
    st.sampled_from(NASTY),
    st.text(min_size=1, max_size=12),
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(WORD, max_size=6).map(" ".join),
    st.tuples(st.sampled_from(sorted(REGISTRY)), st.lists(WORD, max_size=5)).map(lambda t: " ".join([t[0], *t[1]])),
)


@pytest.fixture(scope="module")
async def quiet(sandbox: Sandbox) -> AsyncIterator[Harness]:
    """A bot of its own (no alert reaches it), with U_ALICE authorised and U_CAROL not."""
    async with running(sandbox) as h:
        yield h


def world_state(h: Harness) -> tuple[Any, ...]:
    """What must not move: every ConfigMap's data, and the count of messages in every channel."""
    ns = h.sandbox.live.world.namespace
    maps = tuple(
        sorted((o["metadata"]["name"], json.dumps(o.get("data"))) for o in h.sandbox.kube_store.list("configmaps", ns))
    )
    slack = h.sandbox.slack
    channels = tuple(len(slack.channel_messages(c, replies=True)) for c in slack.workspace.channels)
    return maps, channels


def usage_count(samples: dict) -> float:
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "flk_bot_commands_total" and ("outcome", "usage") in labels
    )


@PROPERTY
@given(text=TEXT, user=USERS)
async def test_malformed_commands_get_the_usage_line_and_change_nothing(quiet: Harness, text: str, user: str) -> None:
    try:
        parse(text)
    except UsageError:
        pass
    else:
        assume(False)  # a well-formed command is not this test's business
    before, samples = world_state(quiet), await scrape(quiet)
    delivery = await quiet.driver.slash(text, user=user)
    assert delivery.status == 200, delivery
    assert "Usage: `/flk" in delivery.body or "Try `/flk help`" in delivery.body, delivery.body
    after = await scraped_until(quiet, lambda s: usage_count(s) >= usage_count(samples) + 1, wait_s=5)
    assert usage_count(after) == usage_count(samples) + 1
    assert world_state(quiet) == before


def forged_click(h: Harness, action_id: str, value: str, user: str) -> dict[str, Any]:
    """A block_actions payload for a button the bot never posted, valued as an attacker likes."""
    ws = h.sandbox.slack.workspace
    channel = h.sandbox.slack.channel_id(h.channel)
    trigger_id = ws.issue_trigger(user, channel)
    response_url = ws.issue_response_url("actions", channel, user)
    block = {"type": "actions", "block_id": "forged", "elements": []}
    element = {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": "x"}}
    return payloads.interaction(
        ws,
        "block_actions",
        user,
        trigger_id,
        container={"type": "message", "message_ts": "1700000000.000100", "channel_id": channel, "is_ephemeral": False},
        channel={"id": channel, "name": ws.channels[channel].name},
        state={"values": {}},
        response_url=response_url,
        actions=[payloads.action(block, element, None)],
    )


PLAN_IDS = st.one_of(st.text(alphabet="0123456789abcdef", min_size=6, max_size=32), st.text(max_size=80))


@PROPERTY
@given(
    action_id=st.sampled_from(["flk_confirm", "flk_cancel", "flk_undo", "flk_retry_restart"]),
    value=PLAN_IDS,
    user=USERS,
)
async def test_buttons_naming_plans_that_do_not_exist_change_nothing(
    quiet: Harness, action_id: str, value: str, user: str
) -> None:
    before = world_state(quiet)
    eph = len(quiet.sandbox.slack.ephemerals(user=user))
    delivery = await quiet.driver._interactive(forged_click(quiet, action_id, value, user), False, "valid", None, None)
    assert delivery.status == 200, delivery

    def told() -> bool:
        return len(quiet.sandbox.slack.ephemerals(user=user)) > eph

    await quiet.sandbox.slack.wait_for(told, timeout=10)
    said = quiet.sandbox.slack.ephemerals(user=user)[-1].all_text()
    assert "unknown" in said or "Only members of the authorised groups" in said, said
    assert world_state(quiet) == before


ALERT_BODIES = st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=20)), max_size=5).map(
        json.dumps
    ),
    st.lists(
        st.fixed_dictionaries(
            {
                "status": st.sampled_from(["firing", "resolved", "??"]),
                "labels": st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4),
            }
        ),
        max_size=3,
    ).map(lambda alerts: json.dumps({"version": "4", "status": "firing", "alerts": alerts})),
)


@PROPERTY
@given(body=ALERT_BODIES)
async def test_alertmanager_bodies_never_cause_a_5xx(quiet: Harness, body: str) -> None:
    token = quiet.sandbox.env["FLK_ALERT_WEBHOOK_TOKEN"]
    before = await quiet.bot.rt.store.open_incidents()  # type: ignore[union-attr]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{quiet.bot.url}/alerts/alertmanager", data=body.encode(), headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        status = response.status
    assert status < 500, (status, body)
    if status >= 400:
        assert await quiet.bot.rt.store.open_incidents() == before  # type: ignore[union-attr]
