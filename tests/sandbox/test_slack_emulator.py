"""The Slack Web API emulator as the real slack_sdk AsyncWebClient sees it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import RateLimit, SlackConfig, SlackDriver, SlackEmulator
from sandbox.slack.config import slack_rate_limits
from sandbox.slack.registry import METHODS


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(SlackConfig()) as emulator:
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)


async def error_of(call: Any) -> tuple[str, int, Any]:
    with pytest.raises(SlackApiError) as failed:
        await call
    response = failed.value.response
    return response["error"], response.status_code, response


async def test_post_returns_slack_shaped_message(slack: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="#incidents", text="hello", blocks=[section("*hello*")])
    assert resp["channel"] == "C_INCIDENTS"
    message = resp["message"]
    assert (message["user"], message["bot_id"], message["text"]) == ("U_BOT", "B_SANDBOX", "hello")
    assert message["blocks"][0]["block_id"]  # Slack fills in block ids
    [stored] = slack.channel_messages("C_INCIDENTS")
    assert stored.ts == resp["ts"] and "*hello*" in stored.all_text()


async def test_ts_values_strictly_increase(client: AsyncWebClient) -> None:
    results = await asyncio.gather(*(client.chat_postMessage(channel="C_GENERAL", text=str(i)) for i in range(15)))
    stamps = sorted(r["ts"] for r in results)
    assert len(set(stamps)) == 15
    assert all(len(ts) == 17 and ts[10] == "." for ts in stamps)


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "/blocks/0/text/type"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/blocks/0/fields"),
        ([{"type": "no_such_block"}], "/blocks/0/type"),
        ([{**section("a"), "block_id": "b"}, {**section("c"), "block_id": "b"}], "/blocks/1/block_id"),
        (
            [{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}]}],
            "/blocks/0/elements/0/text/text",
        ),
    ],
    ids=["51-blocks", "section-3001", "header-151", "header-mrkdwn", "11-fields", "unknown", "dup-id", "button"],
)
async def test_invalid_blocks(client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str) -> None:
    error, status, response = await error_of(client.chat_postMessage(channel="C_INCIDENTS", text="t", blocks=blocks))
    assert (error, status) == ("invalid_blocks", 200)
    assert any(f"[json-pointer:{pointer}]" in e for e in response["errors"])


async def test_limits_at_the_edge_are_accepted(client: AsyncWebClient) -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}, *[section("x" * 3000)] * 49]
    assert (await client.chat_postMessage(channel="C_INCIDENTS", text="t" * 40_000, blocks=blocks))["ok"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"channel": "C_INCIDENTS", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "C_INCIDENTS", "text": ""}, "no_text"),
        ({"channel": "C_NOWHERE", "text": "x"}, "channel_not_found"),
        ({"channel": "C_INCIDENTS", "text": "x", "thread_ts": "1"}, "invalid_thread_ts"),
        ({"channel": "C_INCIDENTS", "text": "x", "thread_ts": "1700000000.000001"}, "thread_not_found"),
    ],
)
async def test_post_message_errors(client: AsyncWebClient, kwargs: dict[str, Any], code: str) -> None:
    assert (await error_of(client.chat_postMessage(**kwargs)))[:2] == (code, 200)


async def test_authentication(slack: SlackEmulator) -> None:
    anonymous = AsyncWebClient(base_url=slack.api_url)
    assert (await error_of(anonymous.auth_test()))[0] == "not_authed"
    impostor = AsyncWebClient(token="xoxb-not-ours", base_url=slack.api_url)
    assert (await error_of(impostor.chat_postMessage(channel="C_INCIDENTS", text="x")))[0] == "invalid_auth"
    app_level = AsyncWebClient(token=slack.config.app_token, base_url=slack.api_url)
    assert (await error_of(app_level.auth_test()))[0] == "not_allowed_token_type"
    assert [c.error for c in slack.calls()] == ["not_authed", "invalid_auth", "not_allowed_token_type"]
    assert all("token" not in c.args for c in slack.calls())


async def test_raw_bodies_json_form_and_broken(slack: SlackEmulator) -> None:
    url = f"{slack.api_url}chat.postMessage"
    bearer = {"Authorization": f"Bearer {slack.config.bot_token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"token": slack.config.bot_token, "channel": "C_SRE", "text": "form"}) as r:
            assert (await r.json())["ok"]
        # A JSON body's own token does not count: JSON calls need the Bearer header.
        async with http.post(url, json={"token": slack.config.bot_token, "channel": "C_SRE", "text": "j"}) as r:
            assert await r.json() == {"ok": False, "error": "not_authed"}
        async with http.post(url, data="{not json", headers={**bearer, "Content-Type": "application/json"}) as r:
            assert (r.status, await r.json()) == (200, {"ok": False, "error": "invalid_json"})
        async with http.post(url, data="[1, 2]", headers={**bearer, "Content-Type": "application/json"}) as r:
            assert (await r.json())["error"] == "invalid_json"
        blocks = {"channel": "C_SRE", "text": "t", "blocks": "[{broken"}
        async with http.post(url, data=blocks, headers=bearer) as r:
            assert (await r.json())["error"] == "invalid_blocks_format"
        async with http.post(f"{slack.api_url}no.such", headers=bearer) as r:
            assert (r.status, (await r.json())["error"]) == (404, "unknown_method")
    assert [m.text for m in slack.channel_messages("C_SRE")] == ["form"]


async def test_a_failing_method_answers_without_a_stack_trace(
    slack: SlackEmulator, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ws: Any, args: Any) -> dict[str, Any]:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(METHODS, "auth.test", broken)
    error, status, response = await error_of(client.auth_test())
    assert (error, status) == ("internal_error", 500)
    assert "secret" not in str(response.data) and "Traceback" not in str(response.data)


async def test_ratelimited_with_retry_after_then_retry_handler_succeeds(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.set_rate_limit("users.info", RateLimit(per_minute=60, burst=2))
    for _ in range(2):
        await client.users_info(user="U_ALICE")
    error, status, response = await error_of(client.users_info(user="U_ALICE"))
    assert (error, status) == ("ratelimited", 429)
    assert response.headers["Retry-After"] == "1"

    patient = AsyncWebClient(
        token=slack.config.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    resp = await patient.users_info(user="U_BOB")
    assert resp["user"]["real_name"] == "Bob Brown"
    statuses = [c.status for c in slack.calls("users.info")]
    assert statuses[-2:] == [429, 200]


async def test_per_channel_post_limit(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.set_channel_post_limit(RateLimit(per_minute=60, burst=3))
    for i in range(3):
        await client.chat_postMessage(channel="C_INCIDENTS", text=str(i))
    error, status, _ = await error_of(client.chat_postMessage(channel="C_INCIDENTS", text="burst"))
    assert (error, status) == ("ratelimited", 429)
    assert (await client.chat_postMessage(channel="C_GENERAL", text="other channel"))["ok"]


async def test_slack_own_numbers(client: AsyncWebClient) -> None:
    async with SlackEmulator(SlackConfig(rate_limits=slack_rate_limits(), channel_post_limit=None)) as strict:
        bot = AsyncWebClient(token=strict.config.bot_token, base_url=strict.api_url)
        posted = await bot.chat_postMessage(channel="C_INCIDENTS", text="0")
        for i in range(50):  # Tier 3: 50 per minute
            await bot.chat_update(channel="C_INCIDENTS", ts=posted["ts"], text=str(i))
        error, status, _ = await error_of(bot.chat_update(channel="C_INCIDENTS", ts=posted["ts"], text="x"))
        assert (error, status) == ("ratelimited", 429)
    assert SlackConfig().rate_limits["chat.update"].per_minute > 50  # the lax default


async def test_limits_off(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.set_rate_limit("auth.test", RateLimit(per_minute=1, burst=1))
    slack.set_rate_limits_enabled(False)
    for _ in range(5):
        await client.auth_test()


async def test_threads_and_history(slack: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="incident: acme")
    first = await client.chat_postMessage(channel="C_INCIDENTS", thread_ts=parent["ts"], text="step 1")
    # A reply's ts stands for its parent, as in Slack.
    await client.chat_postMessage(channel="C_INCIDENTS", thread_ts=first["ts"], text="step 2")
    await client.chat_postMessage(channel="C_INCIDENTS", text="unrelated")

    replies = await client.conversations_replies(channel="C_INCIDENTS", ts=parent["ts"])
    texts = [m["text"] for m in replies["messages"]]
    assert texts == ["incident: acme", "step 1", "step 2"]
    assert replies["messages"][0]["reply_count"] == 2
    assert replies["messages"][2]["thread_ts"] == parent["ts"]
    assert [m.text for m in slack.thread("C_INCIDENTS", parent["ts"])] == texts

    history = await client.conversations_history(channel="C_INCIDENTS", limit=1)
    assert [m["text"] for m in history["messages"]] == ["unrelated"] and history["has_more"]
    rest = await client.conversations_history(channel="C_INCIDENTS", cursor=history["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["incident: acme"]
    assert (await error_of(client.conversations_replies(channel="C_INCIDENTS", ts="1.000000")))[0] == (
        "thread_not_found"
    )


async def test_update_keeps_history(slack: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C_INCIDENTS", text="running 0/3", blocks=[section("0/3")])
    updated = await client.chat_update(channel="C_INCIDENTS", ts=posted["ts"], text="running 3/3")
    assert updated["message"]["edited"]["user"] == "U_BOT"
    msg = slack.message("C_INCIDENTS", posted["ts"])
    assert msg is not None and msg.text == "running 3/3" and "0/3" in msg.all_text()  # blocks kept
    assert [e["text"] for e in msg.edits] == ["running 0/3"]
    assert (await error_of(client.chat_update(channel="C_INCIDENTS", ts="1700000000.000001", text="x")))[0] == (
        "message_not_found"
    )
    human = slack.add_user_message("C_INCIDENTS", "U_ALICE", "mine")
    assert (await error_of(client.chat_update(channel="C_INCIDENTS", ts=human.ts, text="x")))[0] == (
        "cant_update_message"
    )


async def test_files_upload_v2_into_a_thread(slack: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="export")
    resp = await client.files_upload_v2(
        channel="C_INCIDENTS",
        thread_ts=parent["ts"],
        filename="escalations.csv",
        content="tenant,count\nacme,3\n",
        title="Escalations",
        initial_comment="latest escalations",
    )
    assert resp["file"]["title"] == "Escalations"
    [f] = slack.files()
    assert (f.name, f.text) == ("escalations.csv", "tenant,count\nacme,3\n")
    [_, share] = slack.thread("C_INCIDENTS", parent["ts"])
    assert share.files == [f.id] and share.text == "latest escalations"
    async with (
        aiohttp.ClientSession() as http,
        http.get(resp["file"]["url_private"], headers={"Authorization": f"Bearer {slack.config.bot_token}"}) as r,
    ):
        assert await r.read() == b"tenant,count\nacme,3\n"


async def test_ephemeral_permalink_reaction_users(slack: SlackEmulator, client: AsyncWebClient) -> None:
    eph = await client.chat_postEphemeral(channel="C_INCIDENTS", user="U_CAROL", text="not allowed")
    assert [e.text for e in slack.ephemerals(user="U_CAROL")] == ["not allowed"] and eph["message_ts"]
    assert slack.ephemerals(user="U_ALICE") == []
    posted = await client.chat_postMessage(channel="C_INCIDENTS", text="x")
    link = await client.chat_getPermalink(channel="C_INCIDENTS", message_ts=posted["ts"])
    assert link["permalink"].endswith("/archives/C_INCIDENTS/p" + posted["ts"].replace(".", ""))
    await client.reactions_add(channel="C_INCIDENTS", timestamp=posted["ts"], name="white_check_mark")
    assert (
        await error_of(client.reactions_add(channel="C_INCIDENTS", timestamp=posted["ts"], name="white_check_mark"))
    )[0] == "already_reacted"
    assert slack.message("C_INCIDENTS", posted["ts"]).reactions == {"white_check_mark": ["U_BOT"]}  # type: ignore[union-attr]
    assert (await client.usergroups_users_list(usergroup="S_ONCALL"))["users"] == ["U_ALICE", "U_BOB"]
    assert (await error_of(client.usergroups_users_list(usergroup="S_NONE")))[0] == "no_such_subteam"
    assert (await error_of(client.users_info(user="U_NOBODY")))[0] == "user_not_found"


async def test_streaming(slack: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="triage acme")
    assert (await error_of(client.chat_startStream(channel="C_INCIDENTS", thread_ts=parent["ts"])))[0] == (
        "missing_recipient_user_id"
    )
    stream = await client.chat_stream(
        channel="C_INCIDENTS",
        thread_ts=parent["ts"],
        recipient_team_id="T_SANDBOX",
        recipient_user_id="U_ALICE",
        buffer_size=4,
    )
    await stream.append(markdown_text="checking ")
    await stream.append(chunks=[{"type": "task_update", "id": "t1", "title": "quota", "status": "complete"}])
    msg = slack.thread("C_INCIDENTS", parent["ts"])[1]
    assert msg.streaming
    await stream.stop(markdown_text="done", blocks=[section("summary")])
    assert (msg.text, msg.streaming) == ("checking done", False)
    [task] = [c for c in msg.chunks if c["type"] == "task_update"]
    assert task["status"] == "complete" and "summary" in msg.all_text()
    late = client.chat_appendStream(channel="C_INCIDENTS", ts=msg.ts, markdown_text="late")
    assert (await error_of(late))[0] == "message_not_in_streaming_state"


async def test_views_and_trigger_expiry(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.config.trigger_ttl = 0.2
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Mitigate"}, "blocks": [section("sure?")]}
    fresh = slack.workspace.issue_trigger("U_ALICE", "C_INCIDENTS")
    opened = await client.views_open(trigger_id=fresh, view=view)
    assert (await error_of(client.views_open(trigger_id=fresh, view=view)))[0] == "exchanged_trigger_id"
    stale = slack.workspace.issue_trigger("U_ALICE", "C_INCIDENTS")
    await asyncio.sleep(0.3)
    assert (await error_of(client.views_open(trigger_id=stale, view=view)))[0] == "expired_trigger_id"
    assert (await error_of(client.views_open(trigger_id="1.2.3", view=view)))[0] == "invalid_arguments"

    view_id = opened["view"]["id"]
    with_title = {**view, "title": {"type": "plain_text", "text": "t" * 25}}
    assert (await error_of(client.views_update(view_id=view_id, view=with_title)))[0] == "invalid_arguments"
    conflict = client.views_update(view_id=view_id, view=view, hash="0.stale")
    assert (await error_of(conflict))[0] == "hash_conflict"
    done = {**view, "blocks": [section("applied")]}
    await client.views_update(view_id=view_id, view=done, hash=opened["view"]["hash"])
    [stored] = slack.views()
    assert "applied" in str(stored.blocks) and len(stored.history) == 1


async def test_response_url_semantics(slack: SlackEmulator, client: AsyncWebClient) -> None:
    url = slack.workspace.issue_response_url("commands", "C_INCIDENTS", "U_ALICE")
    async with aiohttp.ClientSession() as http:

        async def send(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            async with http.post(url, json=body) as r:
                return r.status, await r.json()

        assert await send({"text": "only you"}) == (200, {"ok": True})
        assert await send({"text": "everyone", "response_type": "in_channel"}) == (200, {"ok": True})
        assert await send({"blocks": [section("x" * 3001)]}) == (400, {"ok": False, "error": "invalid_blocks"})
        assert await send({}) == (400, {"ok": False, "error": "no_text"})
        assert (await send({"text": "fifth"}))[0] == 200
        assert await send({"text": "sixth"}) == (404, {"ok": False, "error": "expired_url"})
    assert [e.text for e in slack.ephemerals(user="U_ALICE")] == ["only you", "fifth"]
    assert [m.text for m in slack.channel_messages("C_INCIDENTS")] == ["everyone"]
    assert len(slack.calls("response_url")) == 6


async def test_response_url_replaces_and_deletes_the_clicked_message(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    button = {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}
    posted = await client.chat_postMessage(
        channel="C_INCIDENTS", text="plan", blocks=[{"type": "actions", "elements": [button]}]
    )
    received: list[Any] = []

    async def bot(request: web.Request) -> web.Response:
        received.append(await request.post())
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", bot)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    async with SlackDriver(slack, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events") as driver:
        click = await driver.click("go", user="U_BOB")
    await runner.cleanup()
    assert click.acked and click.response_url and len(received) == 1
    async with aiohttp.ClientSession() as http:
        async with http.post(click.response_url, json={"text": "applied", "replace_original": True}) as r:
            assert r.status == 200
        msg = slack.message("C_INCIDENTS", posted["ts"])
        assert msg is not None and msg.text == "applied" and msg.edits[0]["text"] == "plan"
        async with http.post(click.response_url, json={"delete_original": True}) as r:
            assert r.status == 200
    assert slack.message("C_INCIDENTS", posted["ts"]) is None


async def test_click_on_an_ephemeral_and_replace_it(slack: SlackEmulator, client: AsyncWebClient) -> None:
    button = {"type": "button", "action_id": "undo", "value": "m-1", "text": {"type": "plain_text", "text": "Undo"}}
    await client.chat_postEphemeral(
        channel="C_INCIDENTS", user="U_BOB", text="applied", blocks=[{"type": "actions", "elements": [button]}]
    )
    payloads: list[dict[str, Any]] = []

    async def bot(request: web.Request) -> web.Response:
        payloads.append(json.loads(str((await request.post())["payload"])))
        return web.Response()

    app = web.Application()
    app.router.add_post("/", bot)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    async with SlackDriver(slack, f"http://127.0.0.1:{runner.addresses[0][1]}/") as driver:
        with pytest.raises(LookupError):
            await driver.click("undo", user="U_ALICE")  # Alice cannot see Bob's ephemeral
        click = await driver.click("undo", user="U_BOB")
    await runner.cleanup()
    [payload] = payloads
    assert payload["container"]["is_ephemeral"] and "message" not in payload
    assert payload["actions"][0]["value"] == "m-1" and payload["user"]["id"] == "U_BOB"
    async with (
        aiohttp.ClientSession() as http,
        http.post(str(click.response_url), json={"text": "undone", "replace_original": True}) as r,
    ):
        assert r.status == 200
    assert [e.text for e in slack.ephemerals(user="U_BOB")] == ["undone"]


async def test_wait_for_wakes_on_change_without_polling(slack: SlackEmulator, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C_GENERAL", text="late")

    task = asyncio.create_task(later())
    started = time.monotonic()
    [msg] = await slack.wait_for(lambda: slack.channel_messages("C_GENERAL"), timeout=2)
    assert msg.text == "late" and time.monotonic() - started < 1
    await task
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: slack.channel_messages("C_SRE"), timeout=0.05)
