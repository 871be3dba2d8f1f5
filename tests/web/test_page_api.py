"""The page's server without a browser: loopback only, JSON only from its own origin, bad input
a short 400 that changes nothing, files served safely, and the event stream sending only what
changed (checked on generated histories of the workspace)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sandbox.web.snapshot import Changes
from tests.web.workspace import Workspace, png


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    async with http.post(url, json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_only_loopback_hosts_and_same_origin_json_are_served(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    base = workspace.page.url
    async with http.get(base, headers={"Host": "evil.example"}) as rebound:
        assert rebound.status == 403
    async with http.get(base) as index:
        assert index.status == 200
        assert "script-src 'self'" in index.headers["Content-Security-Policy"]
        assert index.headers["X-Content-Type-Options"] == "nosniff"
    body = {"user": "U_ALICE", "channel": "C_INCIDENTS", "text": "a note"}
    async with http.post(f"{base}api/post", data={"payload": json.dumps(body)}) as form:
        assert form.status == 403  # a cross-site form cannot post here
    status, _ = await post(http, f"{base}api/post", body, Origin="http://evil.example")
    assert status == 403
    assert workspace.slack.channel_messages("C_INCIDENTS") == []
    status, answer = await post(http, f"{base}api/post", body, Origin=base.rstrip("/"))
    assert status == 200
    assert workspace.slack.message("C_INCIDENTS", answer["ts"]).text == "a note"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("slash", {"channel": "C_INCIDENTS", "text": "/flk help"}, "user: Field required"),
        ("slash", {"user": "U_NOBODY", "channel": "C_INCIDENTS", "text": "/flk help"}, "no person 'U_NOBODY'"),
        ("slash", {"user": "U_BOT", "channel": "C_INCIDENTS", "text": "/flk help"}, "no person 'U_BOT'"),
        ("slash", {"user": "U_ALICE", "channel": "C_NOPE", "text": "/flk help"}, "no channel 'C_NOPE'"),
        ("post", {"user": "U_ALICE", "channel": "C_INCIDENTS", "text": ""}, "text: String should have at least"),
        ("post", {"user": "U_ALICE", "channel": "C_INCIDENTS", "text": "x", "thread_ts": "1.2"}, "no such message"),
        ("click", {"user": "U_ALICE", "action_id": "x", "view_id": "V_NONE"}, "not an open modal of U_ALICE"),
        ("submit", {"user": "U_ALICE", "view_id": "V_NONE"}, "not an open modal of U_ALICE"),
        ("react", {"user": "U_ALICE", "channel": "C_INCIDENTS", "ts": "1.2", "name": "<b>"}, "name: String should"),
        ("react", {"user": "U_ALICE", "channel": "C_INCIDENTS", "ts": "1.2", "name": "pushpin"}, "no such message"),
        ("post", {"user": "U_ALICE", "channel": "C_INCIDENTS", "text": "x", "extra": 1}, "extra: Extra inputs"),
        ("post", ["not", "an", "object"], "expected a JSON object"),
    ],
)
async def test_bad_input_is_one_short_line_and_changes_nothing(
    workspace: Workspace, http: aiohttp.ClientSession, path: str, body: Any, error: str
) -> None:
    calls = len(workspace.slack.calls())
    status, answer = await post(http, f"{workspace.page.url}api/{path}", body)
    assert status == 400
    assert error in answer["error"] and "\n" not in answer["error"], answer
    assert workspace.slack.channel_messages("C_INCIDENTS") == []
    assert len(workspace.slack.calls()) == calls


async def test_files_are_served_as_images_only_when_they_are_pngs(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    client = workspace.client
    await client.files_upload_v2(channel="C_INCIDENTS", filename="chart.png", content=png(), title="chart")
    await client.files_upload_v2(channel="C_INCIDENTS", filename="fake.png", content="<svg onload=x>", title="fake")
    by_name = {f.name: f for f in workspace.slack.files()}
    base = workspace.page.url
    async with http.get(f"{base}files/{by_name['chart.png'].id}/chart.png") as chart:
        assert chart.status == 200 and chart.content_type == "image/png"
        assert (await chart.read()).startswith(b"\x89PNG")
    async with http.get(f"{base}files/{by_name['fake.png'].id}/fake.png") as fake:
        assert fake.content_type == "application/octet-stream"
        assert fake.headers["Content-Disposition"] == "attachment; filename*=UTF-8''fake.png"
    async with http.get(f"{base}files/{by_name['chart.png'].id}/other.png") as renamed:
        assert renamed.status == 404
    async with http.get(f"{base}files/F_NONE/chart.png") as missing:
        assert missing.status == 404


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) pairs from a server-sent event stream."""
    kind, data = "", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif not line and kind:
            yield kind, json.loads(data)
            kind, data = "", ""


async def test_the_stream_sends_the_workspace_then_only_what_changed(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    first = await workspace.client.chat_postMessage(channel="C_INCIDENTS", text="first")
    await workspace.client.chat_postEphemeral(channel="C_INCIDENTS", user="U_DAVE", text="for Dave only")
    async with http.get(f"{workspace.page.url}api/stream?user=U_ALICE") as response:
        stream = events(response)
        assert await anext(stream) == ("hello", {"user": "U_ALICE", "commands": ["/flk"], "world": False})
        kind, patch = await anext(stream)
        assert kind == "patch"
        assert set(patch["upsert"]) == {"d", f"m:C_INCIDENTS:{first['ts']}"}  # Dave's ephemeral is not Alice's
        kind, status = await anext(stream)
        assert (kind, status) == ("world", {"bot": "no bot connected"})
        await workspace.client.chat_update(channel="C_INCIDENTS", ts=first["ts"], text="first, edited")
        kind, patch = await anext(stream)
        assert kind == "patch"
        assert list(patch["upsert"]) == [f"m:C_INCIDENTS:{first['ts']}"]
        assert patch["upsert"][f"m:C_INCIDENTS:{first['ts']}"]["edited"] is True
        assert patch["remove"] == []


def random_history(rng: random.Random, steps: int) -> list[dict[str, dict[str, Any]]]:
    """Workspace states over time: items appear, change, stay or go."""
    states, current = [], {}
    for _ in range(steps):
        for _ in range(rng.randint(0, 4)):
            key = f"m:C:{rng.randint(0, 12)}"
            if rng.random() < 0.2:
                current.pop(key, None)
            else:
                current[key] = {"kind": "message", "text": rng.choice(["", "a", "ab"]), "n": rng.randint(0, 2)}
        states.append({k: dict(v) for k, v in current.items()})
    return states


@pytest.mark.parametrize("seed", range(40))
def test_patches_rebuild_every_state_of_a_generated_history(seed: int) -> None:
    rng = random.Random(seed)
    changes, seen = Changes(), {}
    previous: dict[str, Any] | None = None
    for state in random_history(rng, steps=30):
        patch = changes.since_last(state)
        if state == previous:
            assert patch is None
        if patch is not None:
            assert set(patch["upsert"]).isdisjoint(patch["remove"])
            assert all(state[key] != (previous or {}).get(key) for key in patch["upsert"])
            for key in patch["remove"]:
                del seen[key]
            seen.update(patch["upsert"])
        assert seen == state
        previous = state
