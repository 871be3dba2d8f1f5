"""The Slack app manifests against the code: every Web API method the bot calls is covered by a
declared bot scope, no declared scope goes unused, and the command, events and interactivity
match the listeners the Bolt app registers."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bot", "commands", "integrations")
HTTP = ROOT / "deploy" / "slack-app-manifest.yaml"
SOCKET = ROOT / "deploy" / "slack-app-manifest.socket-mode.yaml"

CHAT = frozenset({"chat:write"})
NONE: frozenset[str] = frozenset()
# Incident and notification channels may be public or private: both kinds' scope.
HISTORY = frozenset({"channels:history", "groups:history"})
# Bot-token scopes of each Web API method, from Slack's method reference (docs.slack.dev).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": NONE,
    # Takes the app-level token (connections:write, set on the token, not a bot scope).
    "apps.connections.open": NONE,
    "chat.postMessage": CHAT,
    "chat.postEphemeral": CHAT,
    "chat.update": CHAT,
    "chat.delete": CHAT,
    "chat.startStream": CHAT,
    "chat.appendStream": CHAT,
    "chat.stopStream": CHAT,
    "chat.getPermalink": NONE,
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "usergroups.list": frozenset({"usergroups:read"}),
    "usergroups.users.list": frozenset({"usergroups:read"}),
    "users.info": frozenset({"users:read"}),
    "reactions.add": frozenset({"reactions:write"}),
    "reactions.get": frozenset({"reactions:read"}),
    "views.open": NONE,
    "views.update": NONE,
    "views.push": NONE,
    "views.publish": NONE,
    "conversations.history": HISTORY,
    "conversations.replies": HISTORY,
    "conversations.info": frozenset({"channels:read", "groups:read"}),
}
# Scopes that event subscriptions need (Slack's event reference).
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "reaction_added": frozenset({"reactions:read"}),
    "reaction_removed": frozenset({"reactions:read"}),
    "app_mention": frozenset({"app_mentions:read"}),
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "member_joined_channel": frozenset({"channels:read", "groups:read"}),
}
# Bolt's `say` posts with chat.postMessage; `ack` and `respond` answer without the Web API.
BOLT_HELPERS = {"say": "chat.postMessage"}
LISTENER_KINDS = {"command", "action", "event", "message", "view", "shortcut", "options"}


@cache
def client_methods() -> dict[str, frozenset[str]]:
    """AsyncWebClient method -> the Web API methods it calls (files_upload_v2 calls two)."""
    own = {n for n, v in vars(AsyncWebClient).items() if callable(v) and not n.startswith("_")}

    def calls(name: str, seen: frozenset[str]) -> frozenset[str]:
        source = inspect.getsource(getattr(AsyncWebClient, name))
        found = set(re.findall(r'api_call\(\s*"([\w.]+)"', source))
        for inner in set(re.findall(r"self\.(\w+)\(", source)) & own - seen - {name}:
            found |= calls(inner, seen | {name})
        return frozenset(found)

    return {name: calls(name, frozenset()) for name in own}


def sources(packages: tuple[str, ...] = SCANNED) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def web_api_calls(trees: list[tuple[Path, ast.Module]]) -> dict[str, set[str]]:
    """Web API method -> where the code calls it."""
    methods = client_methods()
    found: dict[str, set[str]] = {}
    for path, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func, called = node.func, set()
            if isinstance(func, ast.Attribute) and func.attr == "api_call" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    called = {str(node.args[0].value)}
            elif isinstance(func, ast.Attribute) and func.attr in methods:
                called = set(methods[func.attr])
            elif isinstance(func, ast.Name) and func.id in BOLT_HELPERS:
                called = {BOLT_HELPERS[func.id]}
            for method in called:
                found.setdefault(method, set()).add(f"{path.parent.name}/{path.name}:{node.lineno}")
    return found


def listeners(trees: list[tuple[Path, ast.Module]]) -> dict[str, list[Any]]:
    """Bolt listener kind -> the values it is registered for (`@app.command(...)` and friends)."""
    found: dict[str, list[Any]] = {kind: [] for kind in LISTENER_KINDS}
    for _, tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LISTENER_KINDS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.args
            ):
                found[node.func.attr].append(_constant(node.args[0]))
    return found


def _constant(node: ast.expr) -> Any:
    """A literal, or the pattern of ``re.compile("...")``."""
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "compile" and node.args:
        return re.compile(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


def handled_events(found: dict[str, list[Any]]) -> set[str]:
    events = {e["type"] if isinstance(e, dict) else e for e in found["event"]}
    if found["message"]:
        events |= {"message.channels", "message.groups"}
    return events


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def trees() -> list[tuple[Path, ast.Module]]:
    return list(sources())


def needed_scopes(trees: list[tuple[Path, ast.Module]]) -> dict[str, set[str]]:
    """Scope -> why the code needs it."""
    needs: dict[str, set[str]] = {}
    for method, where in web_api_calls(trees).items():
        for scope in METHOD_SCOPES[method]:
            needs.setdefault(scope, set()).add(f"{method} ({', '.join(sorted(where))})")
    found = listeners(trees)
    for event in handled_events(found):
        for scope in EVENT_SCOPES[event]:
            needs.setdefault(scope, set()).add(f"event {event}")
    if found["command"]:
        needs.setdefault("commands", set()).add("slash command listener")
    return needs


def test_every_method_the_code_calls_has_a_known_scope(trees: list[tuple[Path, ast.Module]]) -> None:
    unknown = {m: w for m, w in web_api_calls(trees).items() if m not in METHOD_SCOPES}
    assert not unknown, f"add these Web API methods to METHOD_SCOPES (from Slack's reference): {unknown}"
    unknown_events = handled_events(listeners(trees)) - set(EVENT_SCOPES)
    assert not unknown_events, f"add these events to EVENT_SCOPES: {unknown_events}"


@pytest.mark.parametrize("manifest", [HTTP, SOCKET], ids=["http", "socket-mode"])
def test_declared_scopes_are_exactly_the_used_ones(trees: list[tuple[Path, ast.Module]], manifest: Path) -> None:
    declared = set(load(manifest)["oauth_config"]["scopes"]["bot"])
    needs = needed_scopes(trees)
    missing = {scope: sorted(why) for scope, why in needs.items() if scope not in declared}
    assert not missing, f"{manifest.name} lacks scopes the code needs: {missing}"
    unused = declared - set(needs)
    assert not unused, f"{manifest.name} declares scopes no code uses: {sorted(unused)}"
    assert "user" not in load(manifest)["oauth_config"]["scopes"], "the bot acts with its bot token only"


@pytest.mark.parametrize("manifest", [HTTP, SOCKET], ids=["http", "socket-mode"])
def test_command_events_and_interactivity_match_the_listeners(
    trees: list[tuple[Path, ast.Module]], manifest: Path
) -> None:
    doc, found = load(manifest), listeners(trees)
    commands = [c["command"] for c in doc["features"]["slash_commands"]]
    patterns = found["command"]
    assert commands and patterns
    for command in commands:
        assert any(_matches(p, command) for p in patterns), f"no listener for {command}"
    for pattern in patterns:
        assert any(_matches(pattern, c) for c in commands), f"listener {pattern} has no slash command in {manifest}"
    subscribed = set(doc["settings"].get("event_subscriptions", {}).get("bot_events", []))
    assert subscribed == handled_events(found)
    interactive = bool(found["action"] or found["view"] or found["shortcut"] or found["options"])
    assert doc["settings"]["interactivity"]["is_enabled"] is interactive


def _matches(pattern: Any, command: str) -> bool:
    return bool(pattern.search(command)) if isinstance(pattern, re.Pattern) else pattern == command


def _post_routes() -> set[str]:
    """The paths the bot's web app serves POSTs on (bot/service/app.py)."""
    tree = ast.parse((ROOT / "bot" / "service" / "app.py").read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "add_post"
        and isinstance(node.args[0], ast.Constant)
    }


def _urls(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _urls(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _urls(item, key)
    elif key.endswith("url"):
        yield key, str(node)


def test_http_mode_sends_everything_to_the_bots_events_route() -> None:
    doc = load(HTTP)
    assert doc["settings"]["socket_mode_enabled"] is False
    urls = list(_urls(doc))
    assert {key for key, _ in urls} >= {"url", "request_url"}
    routes = _post_routes()
    for _, url in urls:
        match = re.fullmatch(r"https://[^/]+(/.*)", url)
        assert match and match.group(1) in routes, (
            f"{url}: not an https URL of a route in bot/service/app.py ({routes})"
        )


def test_socket_mode_variant_is_the_same_app_without_request_urls() -> None:
    http, socket = load(HTTP), load(SOCKET)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert list(_urls(socket)) == []

    def without_urls(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_urls(v) for k, v in node.items() if not k.endswith("url") and k != "socket_mode_enabled"}
        if isinstance(node, list):
            return [without_urls(v) for v in node]
        return node

    assert without_urls(socket) == without_urls(http)


def test_the_scan_sees_client_methods_api_calls_and_say(tmp_path: Path) -> None:
    """The scanner is not vacuous: it finds each way of calling Slack in a sample module."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "async def f(client, say, app):\n"
        "    await client.chat_postMessage(channel='c', text='t')\n"
        "    await client.files_upload_v2(channel='c', content=b'')\n"
        "    await client.api_call('users.info', params={})\n"
        "    await say('hi')\n"
        "    app.event('reaction_added')(f)\n",
        encoding="utf-8",
    )
    trees = [(sample, ast.parse(sample.read_text(encoding="utf-8")))]
    assert set(web_api_calls(trees)) == {
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "users.info",
    }
    assert handled_events(listeners(trees)) == {"reaction_added"}
