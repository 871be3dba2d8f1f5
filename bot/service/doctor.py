"""`flk doctor`: the Slack probes for ``commands.doctor`` and the terminal report."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import aiohttp
from kubernetes_asyncio.config import ConfigException
from rich.console import Console
from rich.text import Text
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.service.context import build_context
from bot.service.settings import Settings, SettingsError, load_settings
from commands.config import RunbookConfig
from commands.doctor import DEFAULT_MANIFEST, Check, ProbeError, SlackIdentity, Status, Targets, failed, run_doctor

EXIT_USAGE = 2
_LOOK = {
    Status.OK: ("✔", "green"),
    Status.WARN: ("!", "yellow"),
    Status.FAIL: ("✘", "red"),
    Status.SKIP: ("–", "dim"),
}


async def _answer(method: str, base_url: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    try:
        return await call
    except SlackApiError as exc:
        raise ProbeError(f"{method}: {exc.response.get('error', 'error')}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ProbeError(f"cannot reach {base_url} ({type(exc).__name__})") from None


async def auth_test(client: AsyncWebClient) -> SlackIdentity:
    """`auth.test`; the scopes come from its ``x-oauth-scopes`` header, as Slack reports them."""
    response = await _answer("auth.test", client.base_url, client.auth_test())
    header = next((v for k, v in response.headers.items() if k.lower() == "x-oauth-scopes"), None)
    scopes = frozenset(s.strip() for s in header.split(",") if s.strip()) if header is not None else None
    return SlackIdentity(bot=f"@{response.get('user', '?')}", team=str(response.get("team", "?")), scopes=scopes)


async def connections_open(client: AsyncWebClient, app_token: str) -> None:
    """The app-level token works for Socket Mode (the WebSocket URL it returns is not used)."""
    await _answer("apps.connections.open", client.base_url, client.apps_connections_open(app_token=app_token))


def print_checks(checks: list[Check], console: Console) -> None:
    width = max(len(c.name) for c in checks)
    for c in checks:
        icon, style = _LOOK[c.status]
        line = Text(f"{icon} ", style=style)
        line.append(f"{c.name:<{width}}  ", style="bold")
        line.append(c.detail)
        if c.hint and c.status is not Status.OK:
            line.append(f"  → {c.hint}", style="italic")
        console.print(line, soft_wrap=True)
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    console.print(
        f"{counts[Status.OK]} ok, {counts[Status.WARN]} warnings, {counts[Status.FAIL]} failed, "
        f"{counts[Status.SKIP]} not configured",
        markup=False,
    )


@asynccontextmanager
async def targets_for(settings: Settings, config: RunbookConfig, manifest: str | None = None) -> AsyncIterator[Targets]:
    """What `flk doctor` checks: the bot's own backend clients, and Slack through the bot token."""
    timeout = config.timeouts.probe_s
    ctx = await build_context(settings, config)
    # No retry handlers: a Slack that does not answer is reported at once.
    slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=math.ceil(timeout),
        retry_handlers=[],
    )
    app_token = settings.slack_app_token
    try:
        yield Targets(
            ctx=ctx,
            slack_auth=partial(auth_test, slack),
            manifest=Path(manifest or DEFAULT_MANIFEST),
            socket_mode=partial(connections_open, slack, app_token.get_secret_value()) if app_token else None,
            database_url=settings.database_url,
            alertmanager_url=settings.alertmanager_url,
            grafana_url=settings.grafana_url,
            grafana_token=settings.grafana_token.get_secret_value() if settings.grafana_token else None,
            admin_via_proxy=settings.admin_url is None,
            timeout_s=timeout,
        )
    finally:
        await ctx.close()


async def doctor(
    environ: Mapping[str, str] | None = None, manifest: str | None = None, console: Console | None = None
) -> int:
    """Check every configured connection; 0 when none failed, 1 otherwise, 2 on bad settings."""
    console = console or Console()
    try:
        settings, config = load_settings(environ)
    except SettingsError as exc:
        console.print(f"flk doctor: {exc}", markup=False)
        return EXIT_USAGE
    try:
        async with targets_for(settings, config, manifest) as targets:
            checks = await run_doctor(targets)
    except ConfigException as exc:
        # Outside a cluster, with FLK_KUBE_API_URL unset, there is no service account to load.
        console.print(f"flk doctor: FLK_KUBE_API_URL is not set and {exc}", markup=False)
        return EXIT_USAGE
    print_checks(checks, console)
    return 1 if failed(checks) else 0
