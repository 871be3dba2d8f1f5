"""The real Prometheus and Alertmanager of the sandbox: backfilled history that meets the live
scrape, PromQL answers that agree with the world, alert rules that reach a webhook, and
failures that are one line and leave nothing behind."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from sandbox.prom.backfill import STEP
from sandbox.prom.launcher import Alertmanager, Prometheus, ScrapeTarget
from sandbox.prom.process import LaunchError, free_port
from sandbox.testing import child_processes, sandbox_for, small_world_yaml
from sandbox.up import Sandbox
from sandbox.world.live import COUNTERS, LiveWorld

METRIC = "flk_escalated_by_tenant"
HOUR = 3600.0
WINDOW = 300.0


async def _query(url: str, promql: str, at: float) -> list[dict]:
    client = PrometheusConnect(url, disable_ssl=True, retry=Retry(total=0), timeout=5)
    return await asyncio.to_thread(client.custom_query, promql, params={"time": f"{at:.3f}"})


def _steady(live: LiveWorld, tenant: str, at: float) -> float:
    """``at``, or the latest time before it whose window (plus one history step) holds no
    change of the world: a sampled ``rate()`` bends across a change by design, so an exact
    integral is the right expectation only between changes."""
    while True:
        lo = at - WINDOW - STEP
        changes = [p for p in live.breakpoints(tenant, COUNTERS[METRIC], lo, at) if lo < p < at]
        if not changes:
            return at
        at = max(changes) - 1.0


async def _assert_rates_match_world(sb: Sandbox, at: float) -> None:
    for tenant in sb.live.world.tenants:
        when = _steady(sb.live, tenant, at)
        result = await _query(sb.prometheus_url, f'rate({METRIC}{{tenant_id="{tenant}"}}[5m])', when)
        # One series: the backfilled history and the live scrape carry the same labels.
        assert len(result) == 1, (tenant, result)
        expected = sb.live.mean_rate(tenant, METRIC, when)
        assert float(result[0]["value"][1]) == pytest.approx(expected, rel=0.05), tenant


@pytest.mark.parametrize("age", [0.0, HOUR, 6 * HOUR, 23 * HOUR])
async def test_rate_matches_default_world(sandbox: Sandbox, age: float) -> None:
    await _assert_rates_match_world(sandbox, time.time() - age)


@pytest.mark.parametrize("age", [0.0, HOUR, 6 * HOUR])
async def test_rate_matches_second_world(second_sandbox: Sandbox, age: float) -> None:
    await _assert_rates_match_world(second_sandbox, time.time() - age)


async def test_history_meets_live_scrape_without_a_step(sandbox: Sandbox) -> None:
    # A window that holds the last backfilled samples and the first scraped ones.
    await _assert_rates_match_world(sandbox, sandbox.prometheus.started_at + 2.0)
    for tenant in sandbox.live.world.tenants:
        result = await _query(sandbox.prometheus_url, f'resets({METRIC}{{tenant_id="{tenant}"}}[1h])', time.time())
        assert float(result[0]["value"][1]) == 0, tenant


async def test_alertmanager_answers_status_without_the_webhook_token(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.alertmanager_url}/api/v2/status") as resp:
        assert resp.status == 200
        status = await resp.json()
    assert status["cluster"]["status"] == "disabled"
    assert "group_wait: 0s" in status["config"]["original"]
    assert sandbox.alert_webhook_token not in status["config"]["original"]


_RULES = """\
groups:
  - name: sandbox-test
    rules:
      - alert: EscalationRatioHigh
        expr: rate(flk_escalated_by_tenant[5m]) / rate(flk_ingest_total_by_tenant[5m]) > 0.02
"""


def _leftovers(root: Path) -> list[Path]:
    return sorted(root.iterdir())


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temp dirs made by the code under test land here, apart from other test runs'."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[str, dict]]]]:
    received: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((request.headers.get("Authorization", ""), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/alerts", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/alerts", received
    await runner.cleanup()


async def test_rule_fires_to_the_webhook_with_the_token_and_stop_leaves_nothing(
    tmp_path: Path, private_tmp: Path, webhook: tuple[str, asyncio.Queue[tuple[str, dict]]]
) -> None:
    url, received = webhook
    rules = tmp_path / "rules.yaml"
    rules.write_text(_RULES)
    world = small_world_yaml({"hot-1": {"-24h": 0.001, "-2h": 0.06}, "calm-2": 0.002}, namespace="alerts")
    children_before = child_processes()
    async with sandbox_for(world, rule_files=[rules]) as sb:
        # The bot starts after the sandbox: point Alertmanager at it late.
        await sb.set_alert_webhook(url)
        breaching = {t for t in sb.live.world.tenants if sb.live.ratio(t, METRIC, time.time()) > 0.02}
        authorization, payload = await asyncio.wait_for(received.get(), 30)
        pids = child_processes() - children_before
        ports = [sb.prometheus.port, sb.alertmanager.port]
        workdir = sb.workdir
    assert authorization == f"Bearer {sb.alert_webhook_token}"
    assert payload["status"] == "firing"
    assert {a["labels"]["tenant_id"] for a in payload["alerts"]} == breaching
    assert all(a["labels"]["alertname"] == "EscalationRatioHigh" for a in payload["alerts"])
    # Stopped: no process, port or temp dir left.
    assert len(pids) >= 2
    assert not (pids & child_processes())
    assert workdir is not None and not workdir.exists()
    assert _leftovers(private_tmp) == []
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


async def _assert_clean_failure(sandbox: Sandbox | Prometheus | Alertmanager, expected: str, tmp: Path) -> None:
    children_before = child_processes()
    with pytest.raises(LaunchError) as failure:
        await sandbox.start()
    message = str(failure.value)
    assert message == expected
    assert "\n" not in message
    assert child_processes() <= children_before
    assert _leftovers(tmp) == []


@pytest.mark.parametrize("server", ["prometheus", "alertmanager", "promtool"])
async def test_missing_binary_is_one_line_before_anything_starts(private_tmp: Path, server: str) -> None:
    missing = f"/nonexistent/bin/{server}"
    sandbox = Sandbox(**{f"{server}_bin": missing})
    await _assert_clean_failure(sandbox, f"{server}: executable {missing} not found", private_tmp)


async def test_launcher_with_a_missing_binary_removes_its_temp_dir(private_tmp: Path) -> None:
    missing = "/nonexistent/bin/prometheus"
    prometheus = Prometheus(target=ScrapeTarget(url="http://127.0.0.1:9/metrics"), ready_metric="up", binary=missing)
    await _assert_clean_failure(prometheus, f"prometheus: executable {missing} not found", private_tmp)


async def test_port_in_use_is_one_line_and_a_clean_stop(private_tmp: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = "{}: port 127.0.0.1:" + str(port) + " is already in use"
        # Prometheus starts last: by then every other part runs and must be stopped again.
        await _assert_clean_failure(Sandbox(prometheus_port=port), expected.format("prometheus"), private_tmp)
        await _assert_clean_failure(Alertmanager(port=port), expected.format("alertmanager"), private_tmp)


async def test_prometheus_without_a_scrapable_target_is_not_ready_in_time(private_tmp: Path) -> None:
    children_before = child_processes()
    dead_target = ScrapeTarget(url=f"http://127.0.0.1:{free_port()}/metrics")
    prometheus = Prometheus(target=dead_target, ready_metric="flk_ingest_total_by_tenant", ready_timeout=1.5)
    with pytest.raises(LaunchError, match=r"^prometheus: not ready within 1.5 s$"):
        await prometheus.start()
    assert child_processes() <= children_before
    assert _leftovers(private_tmp) == []
