"""Start the Debian ``prometheus`` and ``prometheus-alertmanager`` on loopback with generated
configs, and wait until each really answers.

Prometheus counts as ready only when a query returns a sample scraped after it started:
``/-/ready`` answers in ~0.05 s, but a scraped sample is queryable only ~5 s later.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import yaml

from sandbox.prom.process import LaunchError, ManagedProcess, ensure_port_free, free_port

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
READY_TIMEOUT = 30.0
_POLL = 0.1
_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)


@dataclass(frozen=True)
class ScrapeTarget:
    """The exporter Prometheus scrapes, and the labels the scrape gives its series.

    ``instance`` is fixed (not host:port) so that backfilled history, written before the
    exporter's port is known, carries the same labels as the live series.
    """

    url: str
    job: str = "flk-backend"
    instance: str = "backend"

    @property
    def labels(self) -> dict[str, str]:
        return {"job": self.job, "instance": self.instance}

    def scrape_config(self, interval: float) -> dict[str, object]:
        parts = urlsplit(self.url)
        return {
            "job_name": self.job,
            "scrape_interval": f"{interval:g}s",
            "scrape_timeout": f"{interval:g}s",
            "scheme": parts.scheme or "http",
            "metrics_path": parts.path or "/metrics",
            "static_configs": [{"targets": [parts.netloc]}],
            "relabel_configs": [{"target_label": "instance", "replacement": self.instance}],
        }


async def _wait_ready(
    process: ManagedProcess,
    probe: str,
    check: Callable[[Any], bool],
    deadline: float,
    session: aiohttp.ClientSession,
) -> bool:
    """Poll ``probe`` until ``check(json)`` holds (True) or ``time.monotonic()`` passes
    ``deadline`` (False); a process that dies on the way is a LaunchError saying why."""
    while True:
        if process.returncode is not None:
            raise process.failure()
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, LookupError, TypeError):
            async with session.get(probe, timeout=_PROBE_TIMEOUT) as response:
                if response.status == 200 and check(await response.json(content_type=None)):
                    return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL)


class _Server:
    """What both servers share: a private temp dir, one process, and a clean stop."""

    name = "server"

    def __init__(self, binary: str, host: str, port: int | None, ready_timeout: float) -> None:
        self.binary = binary
        self.host = host
        # A requested port is known (and its URL usable in other configs) before the start.
        self.requested_port = port
        self.port = port or 0
        self.ready_timeout = ready_timeout
        self.workdir: Path | None = None
        self._process: ManagedProcess | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _argv(self, workdir: Path) -> list[str]:
        raise NotImplementedError

    async def _ready(self, process: ManagedProcess, session: aiohttp.ClientSession, deadline: float) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        try:
            if self.requested_port is None:
                self.port = free_port(self.host)
            else:
                ensure_port_free(self.name, self.host, self.requested_port)
            self.workdir = Path(tempfile.mkdtemp(prefix=f"flk-{self.name}-"))
            self._process = ManagedProcess(self.name, self._argv(self.workdir), self.workdir / "server.log")
            self.started_at = time.time()
            deadline = time.monotonic() + self.ready_timeout
            await self._process.start()
            async with aiohttp.ClientSession() as session:
                if not await self._ready(self._process, session, deadline):
                    raise LaunchError(f"{self.name}: not ready within {self.ready_timeout:g} s")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await process.stop()
        workdir, self.workdir = self.workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    async def __aenter__(self) -> _Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class Alertmanager(_Server):
    """Alertmanager with one webhook receiver (the bot), sending at once on a new group."""

    name = "alertmanager"

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        binary: str = ALERTMANAGER,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(binary, host, port, ready_timeout)
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval

    def config(self, workdir: Path) -> dict[str, object]:
        receiver: dict[str, object] = {"name": "flk-bot"}
        if self.webhook_url:
            webhook: dict[str, object] = {"url": self.webhook_url, "send_resolved": True}
            if self.webhook_token:
                # The token lives in a 0600 file, never in the config text or a log line.
                token_file = workdir / "webhook-token"
                token_file.touch(mode=0o600)
                token_file.write_text(self.webhook_token)
                webhook["http_config"] = {"authorization": {"credentials_file": str(token_file)}}
            receiver["webhook_configs"] = [webhook]
        return {
            "route": {
                "receiver": "flk-bot",
                "group_by": ["alertname", "tenant_id"],
                "group_wait": "0s",
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [receiver],
        }

    def _write_config(self, workdir: Path) -> Path:
        config = workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config(workdir), sort_keys=False))
        return config

    def _argv(self, workdir: Path) -> list[str]:
        config = self._write_config(workdir)
        return [
            self.binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            f"--web.external-url={self.url}/",
            "--cluster.listen-address=",
        ]

    async def _ready(self, process: ManagedProcess, session: aiohttp.ClientSession, deadline: float) -> bool:
        def config_loaded(body: Any) -> bool:
            return bool(body["config"]["original"])

        return await _wait_ready(process, f"{self.url}/api/v2/status", config_loaded, deadline, session)

    async def set_webhook(self, url: str, token: str | None = None) -> None:
        """Send notifications to ``url`` from now on (the bot usually starts after Alertmanager)."""
        if self.workdir is None:
            raise LaunchError("alertmanager: not running")
        self.webhook_url, self.webhook_token = url, token
        self._write_config(self.workdir)
        await _post_reload(self.name, self.url)


async def _post_reload(name: str, url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/-/reload") as response:
        if response.status != 200:
            raise LaunchError(f"{name}: reload failed with HTTP {response.status}")


class Prometheus(_Server):
    """Prometheus scraping one exporter fast, evaluating rules, alerting to an Alertmanager.

    ``tsdb_dir`` is a data dir prepared beforehand (backfilled history); the caller owns it.
    Without one, the TSDB lives in the server's own temp dir. Ready means a sample of
    ``ready_metric`` scraped after the start is queryable.
    """

    name = "prometheus"

    def __init__(
        self,
        *,
        target: ScrapeTarget,
        ready_metric: str,
        tsdb_dir: Path | None = None,
        rule_files: Sequence[str | Path] = (),
        alertmanager_url: str | None = None,
        scrape_interval: float = 1.0,
        evaluation_interval: float = 1.0,
        binary: str = PROMETHEUS,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(binary, host, port, ready_timeout)
        self.target = target
        self.ready_metric = ready_metric
        self.tsdb_dir = tsdb_dir
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval

    def config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "global": {
                "scrape_interval": f"{self.scrape_interval:g}s",
                "evaluation_interval": f"{self.evaluation_interval:g}s",
            },
            "scrape_configs": [self.target.scrape_config(self.scrape_interval)],
        }
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        if self.alertmanager_url:
            parts = urlsplit(self.alertmanager_url)
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "scheme": parts.scheme or "http",
                        "path_prefix": parts.path or "/",
                        "static_configs": [{"targets": [parts.netloc]}],
                    }
                ]
            }
        return config

    def _argv(self, workdir: Path) -> list[str]:
        for rule_file in self.rule_files:
            if not rule_file.is_file():
                raise LaunchError(f"prometheus: rule file {rule_file} not found")
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.tsdb_dir or workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            f"--web.external-url={self.url}/",
            "--web.enable-lifecycle",
            # Re-send firing alerts every evaluation (default 1 m), so that a receiver that
            # comes up late or a reloaded Alertmanager config gets them within seconds.
            f"--rules.alert.resend-delay={self.evaluation_interval:g}s",
        ]

    async def _ready(self, process: ManagedProcess, session: aiohttp.ClientSession, deadline: float) -> bool:
        query = f"max(timestamp({self.ready_metric}))"

        def scraped_since_start(body: Any) -> bool:
            result = body["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= self.started_at

        def alertmanager_known(body: Any) -> bool:
            # Alerts that fire before the notifier has found Alertmanager are dropped.
            return bool(body["data"]["activeAlertmanagers"])

        probe = f"{self.url}/api/v1/query?{urlencode({'query': query})}"
        if not await _wait_ready(process, probe, scraped_since_start, deadline, session):
            return False
        if self.alertmanager_url is None:
            return True
        probe = f"{self.url}/api/v1/alertmanagers"
        return await _wait_ready(process, probe, alertmanager_known, deadline, session)
