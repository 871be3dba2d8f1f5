"""``Sandbox``: fractal-lba in a box, every part on a free loopback port.

One world spec drives everything: the Slack emulator, the backend (admin API, metrics
exporter, logs), the Kubernetes fake, the WORM audit files, the tenant config repo, and the
real Prometheus (with 25 h of backfilled history) and Alertmanager. Independent parts start
concurrently; Prometheus waits only for its history and the exporter. Stopping leaves no
process, port or temp dir behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.backend import BackendLogs, BackendServer
from sandbox.grafana import GrafanaStandIn
from sandbox.kube import KubeFake, KubeStore, Rbac, objects_from_world
from sandbox.prom.backfill import PROMTOOL, backfill
from sandbox.prom.launcher import ALERTMANAGER, PROMETHEUS, READY_TIMEOUT, Alertmanager, Prometheus, ScrapeTarget
from sandbox.prom.process import free_port, require_executable
from sandbox.slack import RateLimit, SlackConfig, SlackEmulator
from sandbox.tenant_repo import create_tenant_repo
from sandbox.web import WorkspacePage
from sandbox.world.live import LiveWorld
from sandbox.world.load import load_world
from sandbox.world.remedies import install_remedies
from sandbox.worm_writer import write_worm

# A metric every world exports: its first scraped sample is what "Prometheus is ready" means.
READY_METRIC = "flk_ingest_total_by_tenant"


class Sandbox:
    """``async with Sandbox(path) as sb:`` … ``sb.env`` holds the settings the bot needs."""

    def __init__(
        self,
        world_path: str | Path | None = None,
        *,
        rule_files: Sequence[str | Path] = (),
        alert_webhook: str | None = None,
        bot_url: str | None = None,
        page_port: int = 0,
        alert_webhook_token: str | None = None,
        alert_repeat_interval: str = "1h",
        slack_config: SlackConfig | None = None,
        slack_rate_limits: Mapping[str, RateLimit] | None = None,
        incident_channel: str | None = None,
        scrape_interval: float = 1.0,
        evaluation_interval: float = 1.0,
        prometheus_bin: str = PROMETHEUS,
        alertmanager_bin: str = ALERTMANAGER,
        promtool_bin: str = PROMTOOL,
        prometheus_port: int | None = None,
        alertmanager_port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.world_path = world_path
        self.rule_files = tuple(rule_files)
        self.alert_webhook = alert_webhook
        self.bot_url = bot_url
        self.page_port = page_port
        self.alert_webhook_token = alert_webhook_token or secrets.token_urlsafe(24)
        self.alert_repeat_interval = alert_repeat_interval
        config = slack_config or SlackConfig()
        if slack_rate_limits is not None:
            config = dataclasses.replace(config, rate_limits={**config.rate_limits, **slack_rate_limits})
        self.slack_config = config
        self.incident_channel = incident_channel or next(iter(config.channels))
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.prometheus_bin = prometheus_bin
        self.alertmanager_bin = alertmanager_bin
        self.promtool_bin = promtool_bin
        self.prometheus_port = prometheus_port
        self.alertmanager_port = alertmanager_port
        self.ready_timeout = ready_timeout
        self.kube_token = secrets.token_urlsafe(24)
        self.grafana_token = secrets.token_urlsafe(24)

        self.live: LiveWorld
        self.workdir: Path | None = None
        self.slack: SlackEmulator
        self.kube_store: KubeStore
        self.kube: KubeFake
        self.backend_logs: BackendLogs
        self.backend: BackendServer
        self.prometheus: Prometheus
        self.alertmanager: Alertmanager
        self.grafana: GrafanaStandIn
        self.page: WorkspacePage
        self.startup_seconds = 0.0
        # Seconds from the start until each part answered (what the benchmark reports).
        self.timings: dict[str, float] = {}
        self._began = 0.0
        self._stack: contextlib.AsyncExitStack | None = None

    # -- paths and URLs -------------------------------------------------------------------

    @property
    def worm_root(self) -> Path:
        assert self.workdir is not None, "the sandbox is not running"
        return self.workdir / "audit-worm"

    @property
    def tenant_repo(self) -> Path:
        assert self.workdir is not None, "the sandbox is not running"
        return self.workdir / "tenant-config"

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url

    @property
    def env(self) -> dict[str, str]:
        """Everything the bot needs to talk to this sandbox, as environment variables."""
        api_url = self.slack.api_url
        return {
            "SLACK_BOT_TOKEN": self.slack_config.bot_token,
            "SLACK_SIGNING_SECRET": self.slack_config.signing_secret,
            "SLACK_APP_TOKEN": self.slack_config.app_token,
            "FLK_SLACK_API_URL": api_url if api_url.endswith("/") else api_url + "/",
            "FLK_INCIDENT_CHANNEL": self.incident_channel,
            "FLK_PROMETHEUS_URL": self.prometheus.url,
            "FLK_ALERTMANAGER_URL": self.alertmanager.url,
            "FLK_KUBE_API_URL": self.kube.url,
            "FLK_KUBE_TOKEN": self.kube_token,
            "FLK_NAMESPACE": self.live.world.namespace,
            "FLK_ADMIN_URL": self.backend.url,
            "FLK_WORM_ROOT": str(self.worm_root),
            "FLK_TENANT_REPO": str(self.tenant_repo),
            "FLK_ALERT_WEBHOOK_TOKEN": self.alert_webhook_token,
            "FLK_GRAFANA_URL": self.grafana.url,
            "FLK_GRAFANA_TOKEN": self.grafana_token,
        }

    def tenant_config(self, tenant: str) -> dict[str, str] | None:
        """The tenant's live settings: the ``tenant-<t>`` configmap's data, as the backend reads it."""
        obj = self.kube_store.get("configmaps", self.live.world.namespace, f"tenant-{tenant}")
        return dict(obj.get("data") or {}) if obj else None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Sandbox:
        self._began = time.monotonic()
        self.timings = {}
        world = load_world(self.world_path)
        # Fail in a moment, not after seconds of history, when a server is not installed.
        for name, binary in (
            ("prometheus", self.prometheus_bin),
            ("alertmanager", self.alertmanager_bin),
            ("promtool", self.promtool_bin),
        ):
            require_executable(name, binary)
        self.live = LiveWorld(world)
        self._stack = contextlib.AsyncExitStack()
        try:
            self.workdir = Path(tempfile.mkdtemp(prefix="flk-sandbox-"))
            self._stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
            # Its port is fixed now so that Prometheus's config can name it before it answers.
            self.alertmanager = Alertmanager(
                webhook_url=self.alert_webhook,
                webhook_token=self.alert_webhook_token,
                repeat_interval=self.alert_repeat_interval,
                binary=self.alertmanager_bin,
                port=self.alertmanager_port or free_port(),
                ready_timeout=self.ready_timeout,
            )
            backend_up, history_done = asyncio.Event(), asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write_files(history_done))
                group.create_task(self._start_slack())
                group.create_task(self._start_backend_and_kube(backend_up))
                group.create_task(self._start_alertmanager())
                group.create_task(self._start_prometheus(backend_up, history_done))
            # Last: its world panel reads every other part.
            self.page = WorkspacePage(self.slack, self, bot_url=self.bot_url)
            self._push_stop(self.page.stop)
            await self.page.start(port=self.page_port)
        except BaseException as exc:
            await self.stop()
            raise _first_error(exc) from None
        self.startup_seconds = time.monotonic() - self._began
        return self

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self.workdir = None

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_bot_url(self, url: str | None) -> None:
        """Where the workspace page sends what a person does: the bot's ``/slack/events`` URL,
        or None for Socket Mode (the bot connected with ``flk serve --socket-mode``)."""
        self.bot_url = url
        self.page.bot_url = url

    async def set_alert_webhook(self, url: str) -> None:
        """Point Alertmanager at the bot once the bot listens (it starts after the sandbox)."""
        self.alert_webhook = url
        await self.alertmanager.set_webhook(url, self.alert_webhook_token)

    # -- parts ----------------------------------------------------------------------------

    async def _write_files(self, history_done: asyncio.Event) -> None:
        # CPU-bound like the history: it waits for the ~5 s Prometheus idles before its first
        # scrape instead of slowing the history down on the critical path.
        await history_done.wait()
        await _finish_in_thread(write_worm, self.live, self.worm_root)
        await _finish_in_thread(create_tenant_repo, self.live, self.tenant_repo)
        self._mark("files")

    async def _start_slack(self) -> None:
        self.slack = SlackEmulator(self.slack_config)
        await self.slack.start()
        self._push_stop(self.slack.stop)
        self._mark("slack")
        # The dashboard annotations of resolved incidents (runbook §6) land here.
        self.grafana = GrafanaStandIn(self.grafana_token)
        await self.grafana.start()
        self._push_stop(self.grafana.stop)

    async def _start_backend_and_kube(self, backend_up: asyncio.Event) -> None:
        self.kube_store = KubeStore(objects_from_world(self.live))
        install_remedies(self.live, self.kube_store, self.live.world.namespace)
        self.backend_logs = BackendLogs(self.live)
        self.backend = BackendServer(self.live, self.backend_logs, self.tenant_config)
        await self.backend.start()
        self._push_stop(self.backend.stop)
        self._mark("backend")
        backend_up.set()
        self.kube = KubeFake(
            self.kube_store,
            token=self.kube_token,
            rbac=Rbac(self.live.world.rbac_deny),
            pod_logs=self.backend_logs.for_pod,
            proxy_upstreams={"backend": self.backend.url},
        )
        await self.kube.start()
        self._push_stop(self.kube.stop)
        self._mark("kube")

    async def _start_alertmanager(self) -> None:
        self._push_stop(self.alertmanager.stop)
        await self.alertmanager.start()
        self._mark("alertmanager")

    async def _start_prometheus(self, backend_up: asyncio.Event, history_done: asyncio.Event) -> None:
        assert self.workdir is not None
        tsdb = self.workdir / "prometheus-data"
        target = ScrapeTarget(url="")
        await backfill(
            self.live, tsdb, labels=target.labels, tail_step=self.scrape_interval, promtool=self.promtool_bin
        )
        self._mark("history")
        await backend_up.wait()
        self.prometheus = Prometheus(
            target=dataclasses.replace(target, url=f"{self.backend.url}/metrics"),
            ready_metric=READY_METRIC,
            tsdb_dir=tsdb,
            rule_files=self.rule_files,
            alertmanager_url=self.alertmanager.url,
            scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
            binary=self.prometheus_bin,
            port=self.prometheus_port,
            ready_timeout=self.ready_timeout,
        )
        self._push_stop(self.prometheus.stop)
        history_done.set()
        await self.prometheus.start()
        self._mark("prometheus")

    def _mark(self, part: str) -> None:
        self.timings[part] = round(time.monotonic() - self._began, 3)

    def _push_stop(self, stop: Any) -> None:
        assert self._stack is not None
        self._stack.push_async_callback(stop)


async def _finish_in_thread(function: Callable[..., object], *args: object) -> None:
    """Run ``function`` in a thread; if cancelled, still wait for it: a thread cannot be
    stopped, and one still writing would recreate the work dir that the cleanup removes."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


def _first_error(exc: BaseException) -> BaseException:
    """A TaskGroup wraps failures in a group; callers want the one line of the first."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
