"""`flk doctor` against the running sandbox: all green, then each dependency broken in turn
fails its own line, with a hint naming what to fix."""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from rich.console import Console
from slack_sdk.web.async_client import AsyncWebClient

from bot.service.doctor import auth_test, doctor, targets_for
from bot.service.settings import load_settings
from commands.doctor import (
    Check,
    Status,
    check_grafana,
    check_kubernetes,
    check_slack,
    kube_permissions,
    run_doctor,
)
from integrations.store import Store
from sandbox.up import Sandbox

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "slack-app-manifest.yaml"
PASSWORD = "s3cret-pw"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite incident store at the schema's head."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('doctor') / 'incidents.sqlite'}"
    store = await Store.connect(url)
    await store.close()
    return url


def env_for(sandbox: Sandbox, database: str, **overrides: str) -> dict[str, str]:
    return {**sandbox.env, "FLK_DATABASE_URL": database, **overrides}


async def checks_for(env: dict[str, str]) -> dict[str, Check]:
    settings, config = load_settings(env)
    async with targets_for(settings, config, str(MANIFEST)) as targets:
        checks = await run_doctor(targets)
    by_name = {c.name: c for c in checks}
    assert len(by_name) == len(checks), "one line per check"
    return by_name


@pytest.fixture
def like_the_shipped_role(sandbox: Sandbox) -> Iterator[None]:
    """The sandbox's RBAC as deploy/k8s grants it: everything the code calls, no secrets."""
    saved = sandbox.kube.rbac.denies
    sandbox.kube.rbac.deny("get", "secrets")
    yield
    sandbox.kube.rbac.reset(saved)


@pytest.fixture(scope="module")
async def green(sandbox: Sandbox, database: str) -> dict[str, Check]:
    saved = sandbox.kube.rbac.denies
    sandbox.kube.rbac.deny("get", "secrets")
    try:
        return await checks_for(env_for(sandbox, database))
    finally:
        sandbox.kube.rbac.reset(saved)


def failing(checks: dict[str, Check]) -> set[str]:
    return {name for name, c in checks.items() if c.status is Status.FAIL}


async def test_all_green_against_the_sandbox(green: dict[str, Check], sandbox: Sandbox) -> None:
    not_ok = {name: c.status for name, c in green.items() if c.status is not Status.OK}
    # The emulator does not send x-oauth-scopes.
    expected = {"slack scopes": Status.WARN}
    if "FLK_GRAFANA_URL" not in sandbox.env:
        expected["grafana"] = Status.SKIP
    assert not_ok == expected, green
    assert "x-oauth-scopes" in green["slack scopes"].detail
    for name in (
        "slack auth",
        "slack socket mode",
        "prometheus",
        "alertmanager",
        "kubernetes",
        "admin API",
        "WORM audit log",
        "tenant repo",
        "database",
    ):
        assert green[name].status is Status.OK, green[name]
    assert "schema at head" in green["database"].detail
    assert "kubernetes: get secrets" in green and "withheld" in green["kubernetes: get secrets"].detail


async def test_every_permission_of_the_role_gets_a_line(green: dict[str, Check], sandbox: Sandbox) -> None:
    lines = {name.removeprefix("kubernetes: ") for name in green if name.startswith("kubernetes: ")}
    settings, config = load_settings(env_for(sandbox, "sqlite://"))
    async with targets_for(settings, config) as targets:
        needed = {str(p) for p in kube_permissions(targets)}
    assert needed and lines == needed | {"get secrets"}
    assert "patch apps/deployments backend" in needed, "the Role names the deployment it may restart"


async def test_exit_status_and_output(
    sandbox: Sandbox, database: str, tmp_path: Path, like_the_shipped_role: None
) -> None:
    out = io.StringIO()
    code = await doctor(env_for(sandbox, database), str(MANIFEST), Console(file=out, width=300, color_system=None))
    text = out.getvalue()
    assert code == 0, text
    assert "✔ prometheus" in text and "failed" in text.splitlines()[-1]
    out = io.StringIO()
    broken = env_for(sandbox, database, FLK_WORM_ROOT=str(tmp_path / "nowhere"))
    assert await doctor(broken, str(MANIFEST), Console(file=out, width=300, color_system=None)) == 1
    line = next(line for line in out.getvalue().splitlines() if "WORM audit log" in line)
    assert line.startswith("✘") and "→ mount the WORM audit log read-only" in line
    assert await doctor({"SLACK_BOT_TOKEN": "x"}, str(MANIFEST), Console(file=io.StringIO())) == 2


def _not_git(tmp: Path) -> str:
    (tmp / "plain").mkdir()
    return str(tmp / "plain")


def _unmigrated(tmp: Path) -> str:
    (tmp / "empty.sqlite").touch()
    return f"sqlite+aiosqlite:///{tmp / 'empty.sqlite'}"


FAULTS = {
    "prometheus": (lambda t: {"FLK_PROMETHEUS_URL": f"http://127.0.0.1:{closed_port()}"}, "FLK_PROMETHEUS_URL"),
    "alertmanager": (lambda t: {"FLK_ALERTMANAGER_URL": f"http://127.0.0.1:{closed_port()}"}, "FLK_ALERTMANAGER_URL"),
    "kubernetes": (lambda t: {"FLK_KUBE_API_URL": f"http://127.0.0.1:{closed_port()}"}, "FLK_KUBE_API_URL"),
    "admin API": (lambda t: {"FLK_ADMIN_URL": f"http://127.0.0.1:{closed_port()}"}, "FLK_ADMIN_URL"),
    # Both Slack lines go through the API URL.
    "slack auth": (lambda t: {"FLK_SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"}, "FLK_SLACK_API_URL"),
    "WORM audit log": (lambda t: {"FLK_WORM_ROOT": str(t / "missing")}, "FLK_WORM_ROOT"),
    "tenant repo": (lambda t: {"FLK_TENANT_REPO": _not_git(t)}, "FLK_TENANT_REPO"),
    "database": (
        lambda t: {"FLK_DATABASE_URL": f"postgresql+psycopg://flk:{PASSWORD}@127.0.0.1:{closed_port()}/flk"},
        "FLK_DATABASE_URL",
    ),
}


@pytest.mark.parametrize("line", list(FAULTS))
async def test_a_dead_dependency_fails_its_own_line(
    sandbox: Sandbox, database: str, tmp_path: Path, like_the_shipped_role: None, line: str
) -> None:
    overrides, setting = FAULTS[line]
    checks = await checks_for(env_for(sandbox, database, **overrides(tmp_path)))
    expected = {line, "slack socket mode"} if line == "slack auth" else {line}
    assert failing(checks) == expected, {n: checks[n] for n in failing(checks)}
    assert setting in checks[line].hint or setting in checks[line].detail, checks[line]
    assert all(PASSWORD not in c.detail + c.hint for c in checks.values())


async def test_bad_tokens_and_an_unmigrated_database(
    sandbox: Sandbox, database: str, tmp_path: Path, like_the_shipped_role: None
) -> None:
    checks = await checks_for(
        env_for(
            sandbox,
            database,
            SLACK_BOT_TOKEN="xoxb-wrong",
            SLACK_APP_TOKEN="xapp-wrong",
            FLK_KUBE_TOKEN="wrong",
            FLK_DATABASE_URL=_unmigrated(tmp_path),
        )
    )
    assert failing(checks) == {"slack auth", "slack socket mode", "kubernetes", "database"}
    assert "invalid_auth" in checks["slack auth"].detail and "SLACK_BOT_TOKEN" in checks["slack auth"].hint
    assert checks["slack scopes"].status is Status.SKIP
    assert "token" in checks["kubernetes"].detail
    assert "schema at nothing" in checks["database"].detail and "upgrade" in checks["database"].hint
    assert not any(name.startswith("kubernetes: ") for name in checks), "no per-permission lines without access"


async def test_each_permission_denied_in_turn_fails_its_line(
    sandbox: Sandbox, database: str, like_the_shipped_role: None
) -> None:
    settings, config = load_settings(env_for(sandbox, database))
    role = sandbox.kube.rbac.denies
    async with targets_for(settings, config) as targets:
        for permission in kube_permissions(targets):
            sandbox.kube.rbac.deny(permission.verb, permission.rbac_resource)
            try:
                checks = {c.name: c for c in await check_kubernetes(targets)}
            finally:
                sandbox.kube.rbac.reset(role)
            assert failing(checks) == {f"kubernetes: {permission}"}
            assert "Role" in checks[f"kubernetes: {permission}"].hint
        sandbox.kube.rbac.allow("get", "secrets")
        try:
            checks = {c.name: c for c in await check_kubernetes(targets)}
        finally:
            sandbox.kube.rbac.reset(role)
    secrets = checks["kubernetes: get secrets"]
    assert secrets.status is Status.WARN and "secret values" in secrets.hint


# -- scopes: Slack's x-oauth-scopes against the manifest ------------------------------------------


@pytest.fixture
async def slack_granting() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A loopback Slack whose auth.test reports the scopes the test sets."""
    granted = {"scopes": ""}

    async def auth(_: web.Request) -> web.Response:
        body = {"ok": True, "user": "flk", "team": "Example"}
        return web.json_response(body, headers={"x-oauth-scopes": granted["scopes"]})

    app = web.Application()
    app.router.add_post("/api/auth.test", auth)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/", granted
    await runner.cleanup()


async def test_granted_scopes_compared_with_the_manifest(slack_granting: tuple[str, dict[str, str]]) -> None:
    url, granted = slack_granting
    client = AsyncWebClient(token="xoxb-test", base_url=url)
    wanted = sorted(yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["oauth_config"]["scopes"]["bot"])

    async def scopes(header: str) -> Check:
        granted["scopes"] = header
        auth, line = await check_slack(lambda: auth_test(client), MANIFEST)
        assert auth.status is Status.OK and auth.detail == "bot @flk in Example"
        return line

    assert (await scopes(",".join(wanted))).status is Status.OK
    missing = await scopes(",".join(wanted[1:]))
    assert missing.status is Status.FAIL and missing.detail == f"missing: {wanted[0]}" and "reinstall" in missing.hint
    extra = await scopes(",".join([*wanted, "chat:write.public"]))
    assert extra.status is Status.WARN and "chat:write.public" in extra.detail
    unreadable = (await check_slack(lambda: auth_test(client), MANIFEST.parent / "none.yaml"))[1]
    assert unreadable.status is Status.WARN and "--slack-manifest" in unreadable.hint


# -- Grafana: reachable, and the token accepted --------------------------------------------------


@pytest.fixture
async def grafana() -> AsyncIterator[str]:
    """A loopback Grafana: /api/health for anyone, /api/annotations for the token "good"."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"database": "ok", "version": "11.0.0"})

    async def annotations(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer good":
            return web.json_response({"message": "Invalid API key"}, status=401)
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/annotations", annotations)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_grafana_reachable_and_token_accepted(grafana: str) -> None:
    (ok,) = await check_grafana(grafana, "good", 5)
    assert ok.status is Status.OK and "11.0.0" in ok.detail
    (refused,) = await check_grafana(grafana, "bad", 5)
    assert refused.status is Status.FAIL and "refused the token" in refused.detail
    assert "FLK_GRAFANA_TOKEN" in refused.hint and "bad" not in refused.detail + refused.hint
    (tokenless,) = await check_grafana(grafana, None, 5)
    assert tokenless.status is Status.WARN and "FLK_GRAFANA_TOKEN" in tokenless.hint
    (dead,) = await check_grafana(f"http://127.0.0.1:{closed_port()}", "good", 5)
    assert dead.status is Status.FAIL and "cannot reach" in dead.detail
    assert (await check_grafana(None, None, 5))[0].status is Status.SKIP
