"""What a person does on the page reaches a real Bolt app as Slack sends it: slash commands,
button clicks (after their confirm dialog), modal inputs as ``view.state.values``, field errors
from ``response_action: errors`` under their inputs, reactions as ``reaction_added``. Here the
app is a small Bolt app over Socket Mode (the page's default transport); the product bot's own
flow is in test_incident_flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from tests.web.workspace import Workspace


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"text": plain(v.capitalize()), "value": v} for v in values]


def field(block_id: str, label: str, element: dict[str, Any], optional: bool = False) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "optional": optional,
        "element": {"action_id": block_id, **element},
    }


# fmt: off
FORM = {
    "type": "modal",
    "callback_id": "form",
    "title": plain("Every input"),
    "submit": plain("Send"),
    "close": plain("Cancel"),
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Fill *everything*"},
         "accessory": {"type": "button", "text": plain("More options"), "action_id": "more"}},
        field("summary", "Summary", {"type": "plain_text_input", "initial_value": "draft"}),
        field("details", "Details", {"type": "plain_text_input", "multiline": True}),
        field("severity", "Severity", {"type": "static_select", "options": options("p1", "p2", "p3"),
                                       "initial_option": options("p2")[0]}),
        field("notify", "Notify", {"type": "checkboxes", "options": options("tenant", "stakeholders"),
                                   "initial_options": options("tenant")}, optional=True),
        field("mode", "Mode", {"type": "radio_buttons", "options": options("now", "later")}),
        field("day", "Day", {"type": "datepicker"}, optional=True),
    ],
}
# fmt: on
PUSHED = {
    "type": "modal",
    "callback_id": "more",
    "title": plain("More options"),
    "close": plain("Back"),
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Pushed by the app"}}],
}
PLAN = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Mitigation `degraded-mode` for `acme`: dry run*"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": plain("Confirm"),
                "action_id": "confirm",
                "value": "plan-1",
                "style": "danger",
                "confirm": {
                    "title": plain("Apply this change?"),
                    "text": plain("degraded-mode for acme"),
                    "confirm": plain("Apply"),
                    "deny": plain("Back"),
                },
            },
            {"type": "button", "text": plain("Cancel"), "action_id": "cancel", "value": "plan-1"},
        ],
    },
]


@pytest.fixture
async def app(workspace: Workspace) -> AsyncIterator[dict[str, list[Any]]]:
    """A Bolt app on the emulator over Socket Mode; yields what it received."""
    slack = workspace.slack
    seen: dict[str, list[Any]] = {"commands": [], "actions": [], "views": [], "reactions": []}
    bolt = AsyncApp(
        client=AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url),
        signing_secret=slack.config.signing_secret,
    )

    @bolt.command("/flk")
    async def command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        seen["commands"].append(command)
        if command["text"] == "form":
            await ack()
            await client.views_open(trigger_id=command["trigger_id"], view=FORM)
        else:
            await ack(text=f"planned: {command['text']}")
            await client.chat_postMessage(channel=command["channel_id"], text="plan", blocks=PLAN)

    @bolt.action("confirm")
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen["actions"].append(body)
        await respond(text=f":white_check_mark: applied by <@{body['user']['id']}>", replace_original=False)

    @bolt.action("more")
    async def more(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen["actions"].append(body)
        await client.views_push(trigger_id=body["trigger_id"], view=PUSHED)

    @bolt.view("form")
    async def submitted(ack: AsyncAck, view: dict[str, Any]) -> None:
        seen["views"].append(view["state"]["values"])
        if view["state"]["values"]["mode"]["mode"]["selected_option"]["value"] != "later":
            await ack(response_action="errors", errors={"mode": "Only later is possible today."})
        else:
            await ack()

    @bolt.event("reaction_added")
    async def reaction(event: dict[str, Any]) -> None:
        seen["reactions"].append(event)

    handler = AsyncSocketModeHandler(bolt, slack.config.app_token)
    await handler.connect_async()
    await slack.wait_for_socket()
    yield seen
    await handler.close_async()


async def slash(page: Page, text: str) -> None:
    await page.locator("#composer-input").fill(text)
    await page.locator("#composer-input").press("Enter")


async def test_a_modal_sends_every_input_and_shows_the_apps_field_errors(
    workspace: Workspace, app: dict[str, list[Any]], page: Page
) -> None:
    await workspace.open(page)
    await expect(page.locator("#bot-status")).to_have_text("bot: Socket Mode (1 connected)")
    await slash(page, "/flk form")
    modal = page.locator(".modal")
    await expect(modal.locator(".modal-title")).to_have_text("Every input")
    await expect(modal.locator('[data-action-id="summary"]')).to_have_value("draft")
    await expect(modal.locator('[data-action-id="severity"]')).to_have_value("p2")
    # Slack refuses an empty required input without asking the app.
    await modal.locator(".modal-submit").click()
    await expect(modal.locator('[data-block-id="details"] .input-error')).to_have_text(
        "Please complete this required field."
    )
    assert app["views"] == []
    details = "escalations rose at 16:10\nafter the rollout"
    await modal.locator('[data-action-id="details"]').fill(details)
    await modal.locator('[data-action-id="severity"]').select_option("p1")
    await modal.get_by_label("Stakeholders").check()
    await modal.get_by_label("Now").check()
    await modal.locator('[data-action-id="day"]').fill("2026-11-26")
    # A button inside the modal: the app pushes a view on top; going back keeps what was typed.
    await modal.locator('[data-action-id="more"]').click()
    await expect(page.locator(".modal-title")).to_have_text("More options")
    await expect(page.locator(".modal-depth")).to_have_text("2 views")
    assert app["actions"][0]["container"]["type"] == "view"
    await page.locator(".modal-cancel").click()
    await expect(modal.locator(".modal-title")).to_have_text("Every input")
    await expect(modal.locator('[data-action-id="details"]')).to_have_value(details)
    await modal.locator(".modal-submit").click()
    error = modal.locator('[data-block-id="mode"] .input-error')
    await expect(error).to_have_text("Only later is possible today.")
    await expect(modal.locator('[data-block-id="details"] .input-error')).to_be_hidden()
    values = app["views"][0]
    assert values["summary"]["summary"] == {"type": "plain_text_input", "value": "draft"}
    assert values["details"]["details"]["value"] == details
    assert values["severity"]["severity"]["selected_option"]["value"] == "p1"
    assert [o["value"] for o in values["notify"]["notify"]["selected_options"]] == ["tenant", "stakeholders"]
    assert values["day"]["day"] == {"type": "datepicker", "selected_date": "2026-11-26"}
    # What was typed stays while the errors show; fixing the field submits.
    await expect(modal.locator('[data-action-id="details"]')).to_have_value(details)
    await modal.get_by_label("Later").check()
    await modal.locator(".modal-submit").click()
    await expect(page.locator(".modal")).to_have_count(0)
    assert app["views"][1]["mode"]["mode"]["selected_option"]["value"] == "later"
    assert not workspace.slack.views(open_only=True)


async def test_a_confirm_button_asks_first_then_clicks_as_the_chosen_user(
    workspace: Workspace, app: dict[str, list[Any]], page: Page
) -> None:
    await workspace.open(page, user="U_BOB")
    await slash(page, "/flk mitigate acme degraded-mode")
    # The command's immediate answer is Bob's alone.
    await expect(page.locator(".ephemeral")).to_contain_text("planned: mitigate acme degraded-mode")
    assert app["commands"][0]["user_id"] == "U_BOB" and app["commands"][0]["channel_id"] == "C_INCIDENTS"
    confirm = page.locator('.message:not(.ephemeral) [data-action-id="confirm"]')
    await confirm.click()
    await page.locator(".dialog").get_by_text("Back").click()
    await expect(page.locator(".dialog")).to_have_count(0)
    assert app["actions"] == []
    await confirm.click()
    await page.locator(".dialog .dialog-confirm").click()
    await expect(page.locator(".ephemeral").last).to_contain_text("✅ applied by @bob")
    action = app["actions"][0]
    assert action["user"]["id"] == "U_BOB"
    assert action["actions"][0]["value"] == "plan-1"
    assert action["container"]["is_ephemeral"] is False


async def test_a_reaction_is_stored_and_sent_as_reaction_added(
    workspace: Workspace, app: dict[str, list[Any]], page: Page
) -> None:
    parent = await workspace.client.chat_postMessage(channel="C_INCIDENTS", text="incident")
    note = workspace.slack.add_user_message("C_INCIDENTS", "U_CAROL", "tenant says it began at 16:05", parent["ts"])
    await workspace.open(page, user="U_CAROL", thread=parent["ts"])
    message = page.locator(f'#thread .message[data-ts="{note.ts}"]')
    await message.hover()
    await message.get_by_label("Add reaction").click()
    await message.locator('[data-emoji="pushpin"]').click()
    await expect(message.locator('.reaction[data-reaction="pushpin"]')).to_have_text("📌 1")
    await expect(message.locator(".reaction.mine")).to_have_count(1)
    await workspace.slack.wait_for(lambda: app["reactions"])
    event = app["reactions"][0]
    assert (event["user"], event["reaction"], event["item_user"]) == ("U_CAROL", "pushpin", "U_CAROL")
    assert event["item"] == {"type": "message", "channel": "C_INCIDENTS", "ts": note.ts}


async def test_what_slack_says_when_a_command_cannot_run(workspace: Workspace, page: Page) -> None:
    """No app registered /deploy; no bot is connected for /flk: Slackbot says so, to this person."""
    await workspace.open(page)
    await slash(page, "/deploy now")
    notice = page.locator(".ephemeral").last
    await expect(notice).to_contain_text("/deploy is not a valid command")
    await expect(notice.locator(".author")).to_have_text("Slackbot")
    await slash(page, "/flk triage acme")
    await expect(page.locator(".ephemeral").last).to_contain_text("no bot is connected")
    assert workspace.slack.ephemerals() == []
