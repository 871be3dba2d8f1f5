"""``Sandbox`` and ``flk sandbox up``: every part answers at the URLs the env names, the CLI
prints one ready line and cleans up on SIGTERM, and a bad world is one line and exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.service.settings import Settings
from sandbox.testing import child_processes, small_world_yaml
from sandbox.up import Sandbox
from sandbox.world.load import WorldError, load_world

REPO = Path(__file__).resolve().parents[2]
ENV_KEYS = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "FLK_SLACK_API_URL",
    "FLK_INCIDENT_CHANNEL",
    "FLK_PROMETHEUS_URL",
    "FLK_ALERTMANAGER_URL",
    "FLK_KUBE_API_URL",
    "FLK_KUBE_TOKEN",
    "FLK_NAMESPACE",
    "FLK_ADMIN_URL",
    "FLK_WORM_ROOT",
    "FLK_TENANT_REPO",
    "FLK_ALERT_WEBHOOK_TOKEN",
    "FLK_GRAFANA_URL",
    "FLK_GRAFANA_TOKEN",
}


async def _get(http: aiohttp.ClientSession, url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_env_names_every_part_and_each_answers(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    env = sandbox.env
    assert set(env) == ENV_KEYS
    assert env["FLK_SLACK_API_URL"].endswith("/")
    tenants = list(sandbox.live.world.tenants)
    namespace = env["FLK_NAMESPACE"]
    assert namespace == sandbox.live.world.namespace

    slack = AsyncWebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["FLK_SLACK_API_URL"])
    assert (await slack.auth_test())["ok"]

    async with aiohttp.ClientSession() as http:
        status, body = await _get(http, f"{env['FLK_KUBE_API_URL']}/api/v1/namespaces/{namespace}/configmaps")
        assert status == 401
        status, body = await _get(
            http, f"{env['FLK_KUBE_API_URL']}/api/v1/namespaces/{namespace}/configmaps", env["FLK_KUBE_TOKEN"]
        )
        assert status == 200
        names = {item["metadata"]["name"] for item in json.loads(body)["items"]}
        assert {f"tenant-{t}" for t in tenants} <= names
        for tenant in tenants:
            status, _ = await _get(http, f"{env['FLK_ADMIN_URL']}/admin/tenants/{tenant}")
            assert status == 200, tenant
        status, body = await _get(http, f"{env['FLK_PROMETHEUS_URL']}/-/ready")
        assert status == 200
        status, body = await _get(http, f"{env['FLK_ALERTMANAGER_URL']}/-/ready")
        assert status == 200

    assert _has_worm_files_and_repo(env)

    # The bot accepts these settings as they are.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.prometheus_url == env["FLK_PROMETHEUS_URL"]


def _has_worm_files_and_repo(env: dict[str, str]) -> bool:
    return any(Path(env["FLK_WORM_ROOT"]).rglob("*.jsonl")) and (Path(env["FLK_TENANT_REPO"]) / ".git").is_dir()


def _any_exists(paths: list[Path]) -> bool:
    return any(path.exists() for path in paths)


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line)
    return {key: value for key, value in pairs}


async def test_cli_up_writes_env_prints_one_ready_line_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    world_file = tmp_path / "world.yaml"
    world_file.write_text(small_world_yaml({"cli-a": 0.004, "cli-b": {"-24h": 0.002, "-1h": 0.03}}, "cli-ns"))
    env_file = tmp_path / "sandbox.env"
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "up",
        "--world",
        str(world_file),
        "--env-file",
        str(env_file),
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(private_tmp)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 40)).decode()
        assert ready.startswith("sandbox ready in "), ready
        env = _read_env_file(env_file)
        assert set(env) == ENV_KEYS
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert env["FLK_NAMESPACE"] == "cli-ns"
        for key in ("FLK_PROMETHEUS_URL", "FLK_ALERTMANAGER_URL", "FLK_KUBE_API_URL", "FLK_ADMIN_URL"):
            assert env[key] in ready, key
        async with aiohttp.ClientSession() as http:
            query = f"{env['FLK_PROMETHEUS_URL']}/api/v1/query?query=flk_ingest_total_by_tenant"
            async with http.get(query) as response:
                result = (await response.json())["data"]["result"]
            # The workspace page, in the ready line, with the world's tenants in its state.
            page = re.search(r"; page (http://127\.0\.0\.1:\d+/);", ready)
            assert page, ready
            async with http.get(f"{page[1]}api/state") as response:
                state = await response.json()
        assert {series["metric"]["tenant_id"] for series in result} == {"cli-a", "cli-b"}
        assert [t["id"] for t in state["status"]["tenants"]] == ["cli-a", "cli-b"]
        assert state["status"]["bot"] == "no bot connected"
        servers = child_processes(proc.pid)
        ports = [urlsplit(env[key]).port for key in env if key.endswith("_URL")] + [urlsplit(page[1]).port]
        workdir = Path(env["FLK_WORM_ROOT"]).parent
        assert len(servers) >= 2 and workdir.is_dir()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert rest == b""
    assert not _any_exists([Path(f"/proc/{pid}") for pid in servers] + [env_file])
    assert workdir.parent == private_tmp
    assert _entries(private_tmp) == []
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, port


def _bad_world(case: str) -> dict:
    world = yaml.safe_load(small_world_yaml({"bad-a": 0.004}))
    tenant = world["tenants"]["bad-a"]
    if case == "unknown key":
        tenant["colour"] = "blue"
    elif case == "missing field":
        del tenant["worm"]
    else:
        tenant["traffic"]["escalation_ratio"] = 1.5
    return world


@pytest.mark.parametrize(
    ("case", "where"),
    [
        ("unknown key", "tenants.bad-a.colour: unknown key"),
        ("missing field", "tenants.bad-a.worm: required field is missing"),
        ("ratio 1.5", "tenants.bad-a.traffic.escalation_ratio: "),
    ],
)
async def test_bad_world_is_one_line_and_exit_2(tmp_path: Path, case: str, where: str) -> None:
    world_file = tmp_path / "bad.yaml"
    world_file.write_text(yaml.safe_dump(_bad_world(case)))
    with pytest.raises(WorldError) as expected:
        load_world(world_file)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "up",
        "--world",
        str(world_file),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert out == b""
    assert err.decode() == f"{expected.value}\n"
    assert err.decode().startswith(f"{world_file}: {where}")


async def test_missing_world_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "up", "--world", str(missing), cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().splitlines() == [f"{missing}: cannot read world spec (No such file or directory)"]


async def test_env_file_in_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env_file = tmp_path / "no-such-folder" / "sandbox.env"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "up", "--env-file", str(env_file), cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().splitlines() == [f"{env_file}: expected a file in an existing folder"]


def test_readme_example_is_a_valid_world(tmp_path: Path) -> None:
    readme = (REPO / "sandbox" / "README.md").read_text()
    example = readme.split("### Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    world_file = tmp_path / "example.yaml"
    world_file.write_text(example)
    world = load_world(world_file)
    assert {t.scenario for t in world.tenants.values()} == {"escalations", "none"}
