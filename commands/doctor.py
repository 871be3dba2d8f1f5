"""`flk doctor`: every configured connection checked once, one line each with a fix hint.

Slack-free: the Slack checks call the small functions ``bot.service.doctor`` passes in.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiohttp
import yaml
from sqlalchemy.engine import make_url

from commands.context import Context
from integrations.errors import BackendError
from integrations.kube_access import WITHHELD, Permission, can_i, required_permissions
from integrations.store import StoreError, normalise_url, safe_url
from integrations.store.engine import create_engine, current_revision, head_revision

DEFAULT_MANIFEST = "deploy/slack-app-manifest.yaml"
ROLE_HINT = "grant it in the bot's Role (deploy/k8s/base/role.yaml) and apply it"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class SlackIdentity:
    """What `auth.test` said: who the token is, and the scopes Slack reports having granted."""

    bot: str
    team: str
    scopes: frozenset[str] | None  # None when the answer carried no x-oauth-scopes header


class ProbeError(Exception):
    """A probe's failure, in one line that is safe to print."""


SlackAuth = Callable[[], Awaitable[SlackIdentity]]
Probe = Callable[[], Awaitable[None]]


@dataclass
class Targets:
    """What to check: the bot's own backend clients and the settings that name the rest."""

    ctx: Context
    slack_auth: SlackAuth
    manifest: Path
    socket_mode: Probe | None = None  # set when SLACK_APP_TOKEN is
    database_url: str | None = None
    alertmanager_url: str | None = None
    grafana_url: str | None = None
    grafana_token: str | None = None
    admin_via_proxy: bool = False
    timeout_s: float = 5.0


def manifest_scopes(path: Path) -> frozenset[str]:
    """The bot scopes a Slack app manifest asks for; ValueError when it cannot be read."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        scopes = document["oauth_config"]["scopes"]["bot"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read the bot scopes from {path} ({type(exc).__name__})") from None
    return frozenset(str(s) for s in scopes)


async def check_slack(auth: SlackAuth, manifest: Path) -> list[Check]:
    try:
        me = await auth()
    except ProbeError as exc:
        hint = "check SLACK_BOT_TOKEN (xoxb-…) and FLK_SLACK_API_URL; reinstall the app if the token was revoked"
        return [
            Check("slack auth", Status.FAIL, str(exc), hint),
            Check("slack scopes", Status.SKIP, "auth.test failed"),
        ]
    return [Check("slack auth", Status.OK, f"bot {me.bot} in {me.team}"), _scopes(me.scopes, manifest)]


def _scopes(granted: frozenset[str] | None, manifest: Path) -> Check:
    if granted is None:
        return Check("slack scopes", Status.WARN, "Slack did not report the granted scopes (no x-oauth-scopes)")
    try:
        wanted = manifest_scopes(manifest)
    except ValueError as exc:
        return Check(
            "slack scopes", Status.WARN, f"{exc}; granted: {', '.join(sorted(granted))}", "pass --slack-manifest PATH"
        )
    if missing := wanted - granted:
        hint = f"add them under OAuth & Permissions (or update the app from {manifest}) and reinstall the app"
        return Check("slack scopes", Status.FAIL, f"missing: {', '.join(sorted(missing))}", hint)
    if extra := granted - wanted:
        hint = f"remove them (the bot does not use them) and reinstall the app from {manifest}"
        return Check("slack scopes", Status.WARN, f"granted beyond the manifest: {', '.join(sorted(extra))}", hint)
    return Check("slack scopes", Status.OK, f"the manifest's {len(wanted)} scopes, no more")


async def check_socket_mode(probe: Probe | None) -> list[Check]:
    if probe is None:
        return [Check("slack socket mode", Status.SKIP, "SLACK_APP_TOKEN not set (HTTP mode)")]
    try:
        await probe()
    except ProbeError as exc:
        hint = "SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write, Socket Mode enabled"
        return [Check("slack socket mode", Status.FAIL, str(exc), hint)]
    return [Check("slack socket mode", Status.OK, "apps.connections.open answered")]


async def check_prometheus(ctx: Context) -> list[Check]:
    metric = ctx.config.metrics.ingest
    try:
        series = await ctx.prometheus.scalar(f"count({metric})")
    except BackendError as exc:
        return [Check("prometheus", Status.FAIL, exc.reason, "check FLK_PROMETHEUS_URL and that Prometheus is up")]
    if not series:
        hint = "check that Prometheus scrapes the backend (or metrics.ingest in FLK_CONFIG)"
        return [Check("prometheus", Status.WARN, f"answers, but has no {metric} series", hint)]
    return [Check("prometheus", Status.OK, f"{series:g} {metric} series")]


async def _get_json(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> object:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), headers=headers) as session,
            session.get(url) as response,
        ):
            if response.status in (401, 403):
                raise ProbeError(f"{url.partition('?')[0]} refused the token (HTTP {response.status})")
            if response.status >= 400:
                raise ProbeError(f"{url} answered HTTP {response.status}")
            return await response.json(content_type=None)
    except TimeoutError:
        raise ProbeError(f"no answer from {url} within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise ProbeError(f"cannot reach {url} ({type(exc).__name__})") from None
    except ValueError:
        raise ProbeError(f"{url} answered something that is not JSON") from None


async def check_alertmanager(url: str | None, timeout_s: float) -> list[Check]:
    if not url:
        return [Check("alertmanager", Status.SKIP, "FLK_ALERTMANAGER_URL not set")]
    try:
        status = await _get_json(f"{url}/api/v2/status", timeout_s)
    except ProbeError as exc:
        return [Check("alertmanager", Status.FAIL, str(exc), "check FLK_ALERTMANAGER_URL and that Alertmanager is up")]
    info = status if isinstance(status, dict) else {}
    version = (info.get("versionInfo") or {}).get("version", "?")
    cluster = (info.get("cluster") or {}).get("status", "?")
    return [Check("alertmanager", Status.OK, f"version {version}, cluster {cluster}")]


async def check_grafana(url: str | None, token: str | None, timeout_s: float) -> list[Check]:
    if not url:
        return [Check("grafana", Status.SKIP, "FLK_GRAFANA_URL not set: no dashboard annotations on resolve")]
    base = url.rstrip("/")
    try:
        health = await _get_json(f"{base}/api/health", timeout_s)
        if token:
            # Annotations are what the bot writes; reading one proves the token is accepted.
            await _get_json(f"{base}/api/annotations?limit=1", timeout_s, {"Authorization": f"Bearer {token}"})
    except ProbeError as exc:
        return [Check("grafana", Status.FAIL, str(exc), "check FLK_GRAFANA_URL and FLK_GRAFANA_TOKEN")]
    version = health.get("version", "?") if isinstance(health, dict) else "?"
    if not token:
        hint = "set FLK_GRAFANA_TOKEN (a service account token that may write annotations)"
        return [Check("grafana", Status.WARN, f"version {version} answers, but no token is set", hint)]
    return [Check("grafana", Status.OK, f"version {version}; the token is accepted")]


def kube_permissions(targets: Targets) -> list[Permission]:
    """What the bot's Role must allow: the code's calls, narrowed to the objects the Role names."""
    resources = targets.ctx.config.resources
    needed = set(required_permissions()) - set(WITHHELD)
    if targets.admin_via_proxy:
        needed.add(Permission("get", "services", subresource="proxy", name=resources.admin_service.split(":")[0]))
    # The Role allows restarts of the configured backend deployment only.
    named = {("apps", "deployments"): resources.deployment}
    return sorted(
        Permission(p.verb, p.resource, p.group, p.subresource, named.get((p.group, p.resource), p.name)) for p in needed
    )


async def check_kubernetes(targets: Targets) -> list[Check]:
    kube = targets.ctx.kube
    needed = kube_permissions(targets)
    withheld = sorted(WITHHELD)
    try:
        answers = await asyncio.gather(*(can_i(kube, p) for p in [*needed, *withheld]))
    except BackendError as exc:
        hint = "check FLK_KUBE_API_URL and FLK_KUBE_TOKEN, or the in-cluster service account"
        return [Check("kubernetes", Status.FAIL, exc.reason, hint)]
    where = f"namespace {kube.namespace}"
    checks = [Check("kubernetes", Status.OK, f"the API server answers access reviews ({where})")]
    for permission, allowed in zip(needed, answers[: len(needed)], strict=True):
        if allowed:
            checks.append(Check(f"kubernetes: {permission}", Status.OK, f"allowed in {where}"))
        else:
            checks.append(Check(f"kubernetes: {permission}", Status.FAIL, f"denied in {where}", ROLE_HINT))
    for permission, allowed in zip(withheld, answers[len(needed) :], strict=True):
        if allowed:
            hint = "the shipped Role leaves it out: the bot can read secret values"
            checks.append(Check(f"kubernetes: {permission}", Status.WARN, f"allowed ({WITHHELD[permission]})", hint))
        else:
            checks.append(
                Check(f"kubernetes: {permission}", Status.OK, f"withheld, as the shipped Role intends ({where})")
            )
    return checks


async def check_admin(targets: Targets) -> list[Check]:
    try:
        flags = await targets.ctx.admin.flags()
    except BackendError as exc:
        hint = "check FLK_ADMIN_URL" + (
            " (unset: reached through the API server's services/proxy)" if targets.admin_via_proxy else ""
        )
        return [Check("admin API", Status.FAIL, exc.reason, hint)]
    return [Check("admin API", Status.OK, f"/admin/flags answered ({len(flags)} flags)")]


def _worm(root: Path) -> Check:
    hint = f"mount the WORM audit log read-only at {root} (FLK_WORM_ROOT)"
    if not root.is_dir():
        return Check("WORM audit log", Status.FAIL, f"{root} is not a directory", hint)
    if not os.access(root, os.R_OK | os.X_OK):
        return Check("WORM audit log", Status.FAIL, f"{root} is not readable by this user", hint)
    years = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not years:
        return Check("WORM audit log", Status.WARN, f"{root} is readable but holds no YYYY/MM/DD folders", hint)
    return Check("WORM audit log", Status.OK, f"{root} readable ({years[0]}–{years[-1]})")


async def check_worm(ctx: Context) -> list[Check]:
    if ctx.worm is None:
        return [Check("WORM audit log", Status.SKIP, "FLK_WORM_ROOT not set: scenario B samples and export are off")]
    return [await asyncio.to_thread(_worm, ctx.worm.root)]


async def check_tenant_repo(ctx: Context, timeout_s: float) -> list[Check]:
    if ctx.repo is None:
        return [Check("tenant repo", Status.SKIP, "FLK_TENANT_REPO not set: triage shows no config history")]
    path = ctx.repo.path
    hint = "point FLK_TENANT_REPO at a clone of the tenant config repository (e.g. kept fresh by git-sync)"
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(path),
            "log",
            "-1",
            "--format=%h %cI",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return [Check("tenant repo", Status.FAIL, "git is not installed", "install git (the image has it)")]
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        return [Check("tenant repo", Status.FAIL, f"git log took longer than {timeout_s:g} s", hint)]
    if process.returncode != 0:
        return [Check("tenant repo", Status.FAIL, f"{path} is not a git repository with commits", hint)]
    return [Check("tenant repo", Status.OK, f"{path} at {out.decode(errors='replace').strip()}")]


async def check_database(url: str | None, timeout_s: float) -> list[Check]:
    hint = "check FLK_DATABASE_URL and that the database server is up"
    try:
        parsed = make_url(normalise_url(url))
    except (StoreError, ValueError) as exc:
        return [Check("database", Status.FAIL, str(exc), hint)]
    shown = safe_url(parsed)
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if sqlite_file and not await asyncio.to_thread(os.path.exists, sqlite_file):
        return [Check("database", Status.WARN, f"{shown} does not exist yet", "the bot creates it when it starts")]
    engine = create_engine(url, pool_size=1, connect_timeout=timeout_s)
    try:
        current = await asyncio.wait_for(current_revision(engine), timeout_s)
    except (StoreError, TimeoutError) as exc:
        return [Check("database", Status.FAIL, f"{shown}: {exc or 'no answer'}", hint)]
    finally:
        await engine.dispose()
    head = head_revision()
    if current != head:
        hint = "start the bot once (it migrates at start-up) or run `python -m integrations.store upgrade`"
        return [Check("database", Status.FAIL, f"{shown}: schema at {current or 'nothing'}, head is {head}", hint)]
    return [Check("database", Status.OK, f"{shown}: schema at head ({head})")]


async def _guarded(name: str, coro: Awaitable[list[Check]]) -> list[Check]:
    """A check that breaks in an unforeseen way is a failed line, not a stack trace."""
    try:
        return await coro
    except Exception as exc:
        return [Check(name, Status.FAIL, f"unexpected {type(exc).__name__}", "run with the bot's logs at DEBUG")]


async def run_doctor(targets: Targets) -> list[Check]:
    """Every check, concurrently; the lines come back in a fixed order."""
    t = targets.timeout_s
    groups = await asyncio.gather(
        _guarded("slack", check_slack(targets.slack_auth, targets.manifest)),
        _guarded("slack socket mode", check_socket_mode(targets.socket_mode)),
        _guarded("prometheus", check_prometheus(targets.ctx)),
        _guarded("alertmanager", check_alertmanager(targets.alertmanager_url, t)),
        _guarded("kubernetes", check_kubernetes(targets)),
        _guarded("admin API", check_admin(targets)),
        _guarded("WORM audit log", check_worm(targets.ctx)),
        _guarded("tenant repo", check_tenant_repo(targets.ctx, t)),
        _guarded("database", check_database(targets.database_url, t)),
        _guarded("grafana", check_grafana(targets.grafana_url, targets.grafana_token, t)),
    )
    return [check for group in groups for check in group]


def failed(checks: list[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)
