"""The emulator and driver against a real Bolt app: over signed HTTP and over Socket Mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackConfig, SlackDriver, SlackEmulator

MODAL = {
    "type": "modal",
    "callback_id": "notify",
    "private_metadata": "incident-42",
    "title": {"type": "plain_text", "text": "Notify"},
    "submit": {"type": "plain_text", "text": "Post"},
    "blocks": [
        {
            "type": "input",
            "block_id": "body",
            "label": {"type": "plain_text", "text": "Notice"},
            "element": {"type": "plain_text_input", "action_id": "text", "initial_value": "draft"},
        },
        {
            "type": "input",
            "block_id": "sev",
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "severity",
                "options": [
                    {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                    {"text": {"type": "plain_text", "text": "Low"}, "value": "low"},
                ],
            },
        },
    ],
}


def build_app(slack: SlackEmulator) -> tuple[AsyncApp, dict[str, list[Any]]]:
    """A small Bolt app: /flk posts into the channel, opens a modal or answers at once."""
    seen: dict[str, list[Any]] = {"commands": [], "actions": [], "submissions": [], "reactions": []}
    client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
    app = AsyncApp(client=client, signing_secret=slack.config.signing_secret)

    @app.command("/flk")
    async def flk(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        seen["commands"].append(command)
        if command["text"] == "modal":
            await ack()
            await client.views_open(trigger_id=command["trigger_id"], view=MODAL)
        elif command["text"] == "quick":
            await ack(text="working on it")
        else:
            await ack()
            await client.chat_postMessage(
                channel=command["channel_id"],
                text=f"triage {command['text']}",
                blocks=[
                    {"type": "section", "text": {"type": "mrkdwn", "text": f"triage *{command['text']}*"}},
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "confirm",
                                "value": command["text"],
                                "text": {"type": "plain_text", "text": "Confirm"},
                            }
                        ],
                    },
                ],
            )

    @app.action("confirm")
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen["actions"].append(body)
        await respond(text=f"confirmed {body['actions'][0]['value']}", replace_original=True)

    @app.view("notify")
    async def notify(ack: AsyncAck, view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        seen["submissions"].append(view)
        if values["body"]["text"]["value"] == "":
            await ack(response_action="errors", errors={"body": "say something"})
        else:
            await ack()

    @app.event("reaction_added")
    async def reaction(event: dict[str, Any]) -> None:
        seen["reactions"].append(event)

    return app, seen


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(SlackConfig()) as emulator:
        yield emulator


@pytest.fixture
async def http_bot(slack: SlackEmulator) -> AsyncIterator[tuple[SlackDriver, dict[str, list[Any]]]]:
    app, seen = build_app(slack)
    runner = web.AppRunner(app.web_app(path="/slack/events"), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    async with SlackDriver(slack, f"http://127.0.0.1:{port}/slack/events") as driver:
        yield driver, seen
    await runner.cleanup()


@pytest.fixture
async def socket_bot(slack: SlackEmulator) -> AsyncIterator[tuple[SlackDriver, dict[str, list[Any]]]]:
    app, seen = build_app(slack)
    handler = AsyncSocketModeHandler(app, slack.config.app_token)
    await handler.connect_async()
    await slack.wait_for_socket()
    yield SlackDriver(slack), seen
    await handler.close_async()


async def test_socket_mode_slash_command_is_acked_by_bolt(
    slack: SlackEmulator, socket_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = socket_bot
    assert slack.calls("apps.connections.open")[0].ok
    delivery = await driver.slash("acme")
    assert delivery.status == 200
    assert delivery.elapsed < slack.config.ack_timeout
    assert seen["commands"][0]["text"] == "acme"
    assert seen["commands"][0]["response_url"].startswith(slack.base_url)
    posted = await slack.wait_for(lambda: slack.channel_messages("C_INCIDENTS"))
    assert posted[0].text == "triage acme"


async def test_socket_mode_button_and_response_url(
    slack: SlackEmulator, socket_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = socket_bot
    await driver.slash("globex")
    msg = (await slack.wait_for(lambda: slack.channel_messages("C_INCIDENTS")))[0]
    delivery = await driver.click("confirm")
    assert delivery.acked
    assert seen["actions"][0]["container"] == {
        "type": "message",
        "message_ts": msg.ts,
        "channel_id": "C_INCIDENTS",
        "is_ephemeral": False,
    }
    await slack.wait_for(lambda: slack.calls("response_url"))
    assert slack.message("C_INCIDENTS", msg.ts).text == "confirmed globex"  # type: ignore[union-attr]
    assert slack.message("C_INCIDENTS", msg.ts).edits[0]["text"] == "triage globex"  # type: ignore[union-attr]


async def test_socket_mode_without_ack_times_out(slack: SlackEmulator) -> None:
    slack.config.ack_timeout = 0.2
    client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
    app = AsyncApp(client=client, signing_secret=slack.config.signing_secret)

    @app.command("/flk")
    async def never_acks(command: dict[str, Any]) -> None:
        await asyncio.sleep(1)

    handler = AsyncSocketModeHandler(app, slack.config.app_token)
    await handler.connect_async()
    try:
        delivery = await SlackDriver(slack).slash("slow")
    finally:
        await handler.close_async()
    assert delivery.status == 408
    assert not delivery.acked


async def test_app_token_is_needed_for_socket_mode(slack: SlackEmulator) -> None:
    client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        await client.apps_connections_open(app_token=slack.config.bot_token)
    assert refused.value.response.data == {"ok": False, "error": "not_allowed_token_type"}


async def test_signed_http_slash_command_verified_by_bolt(
    slack: SlackEmulator, http_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = http_bot
    delivery = await driver.slash("acme", user="U_BOB")
    assert delivery.status == 200
    command = seen["commands"][0]
    assert (command["user_id"], command["user_name"], command["channel_name"]) == ("U_BOB", "bob", "incidents")
    assert (await slack.wait_for(lambda: slack.channel_messages("C_INCIDENTS")))[0].text == "triage acme"
    assert slack.calls("auth.test")[0].ok


@pytest.mark.parametrize("signature", ["wrong", "stale", "none"])
async def test_bolt_refuses_bad_signatures(http_bot: tuple[SlackDriver, dict[str, list[Any]]], signature: str) -> None:
    driver, seen = http_bot
    delivery = await driver.slash("acme", signature=signature)  # type: ignore[arg-type]
    assert delivery.status == 401
    assert seen["commands"] == []


async def test_retry_headers_reach_bolt(http_bot: tuple[SlackDriver, dict[str, list[Any]]]) -> None:
    driver, seen = http_bot
    delivery = await driver.slash("acme", retry_num=1, retry_reason="http_timeout")
    assert delivery.acked
    assert seen["commands"][0]["text"] == "acme"


async def test_command_response_becomes_an_ephemeral(
    slack: SlackEmulator, http_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, _ = http_bot
    await driver.slash("quick", user="U_CAROL")
    [eph] = slack.ephemerals(user="U_CAROL")
    assert (eph.text, eph.channel, eph.source) == ("working on it", "C_INCIDENTS", "command_response")
    assert slack.channel_messages("C_INCIDENTS") == []


async def test_modal_open_and_submit_over_http(
    slack: SlackEmulator, http_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = http_bot
    await driver.slash("modal")
    [view] = await slack.wait_for(lambda: slack.views(open_only=True))
    assert (view.callback_id, view.private_metadata, view.user) == ("notify", "incident-42", "U_ALICE")

    refused = await driver.submit_view(values={"text": "", "severity": "high"})
    assert refused.json() == {"response_action": "errors", "errors": {"body": "say something"}}
    assert view.errors == {"body": "say something"} and not view.closed

    accepted = await driver.submit_view(view.id, values={"text": "all good", "severity": "low"})
    assert accepted.acked and view.closed
    state = seen["submissions"][-1]["state"]["values"]
    assert state["body"]["text"] == {"type": "plain_text_input", "value": "all good"}
    assert state["sev"]["severity"]["selected_option"]["value"] == "low"


async def test_reaction_added_event_over_http(
    slack: SlackEmulator, http_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = http_bot
    msg = slack.add_user_message("incidents", "U_ALICE", "is acme down?")
    delivery = await driver.reaction_added("C_INCIDENTS", msg.ts, "eyes", user="U_BOB")
    assert delivery.acked
    await slack.wait_for(lambda: seen["reactions"])
    event = seen["reactions"][0]
    assert event["item"] == {"type": "message", "channel": "C_INCIDENTS", "ts": msg.ts}
    assert msg.reactions == {"eyes": ["U_BOB"]}


async def test_socket_mode_modal_errors_and_events(
    slack: SlackEmulator, socket_bot: tuple[SlackDriver, dict[str, list[Any]]]
) -> None:
    driver, seen = socket_bot
    await driver.slash("modal")
    [view] = await slack.wait_for(lambda: slack.views(open_only=True))
    refused = await driver.submit_view(values={"text": ""})
    assert refused.json() == {"response_action": "errors", "errors": {"body": "say something"}}
    assert not view.closed
    assert (await driver.submit_view(values={"text": "ok"})).acked and view.closed

    msg = slack.add_user_message("C_INCIDENTS", "U_BOB", "acme is slow")
    assert (await driver.reaction_added("C_INCIDENTS", msg.ts, "rotating_light", retry_num=1)).acked
    [event] = await slack.wait_for(lambda: seen["reactions"])
    assert (event["reaction"], event["user"]) == ("rotating_light", "U_ALICE")
