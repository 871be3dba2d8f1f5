"""The FLK backend's HTTP face: ``/metrics`` for Prometheus and the admin API the runbook
curls (``/admin/tenants/<t>``, ``/admin/flags``), on one aiohttp app.

Tenant settings are read through ``tenant_config`` (the orchestrator wires it to the
Kubernetes fake's ``tenant-<t>`` configmap), so a mitigation shows up here at once.
``faults`` makes a part misbehave for tests: ``server.faults["admin"] = "500"``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.backend.draws import rfc3339_ms
from sandbox.backend.exporter import CONTENT_TYPE, render
from sandbox.backend.logs import BackendLogs
from sandbox.backend.metrics_model import samples
from sandbox.world.breach import BreachError, breach
from sandbox.world.live import LiveWorld

TenantConfig = Callable[[str], Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None]
FAULTS = ("500", "garbage", "hang")
_NUMBERS = ("token_rate", "burst_rate", "daily_quota")


class Faults(dict[str, str | None]):
    """``{"admin": None, "metrics": None}``; only known parts and known faults are accepted."""

    def __setitem__(self, part: str, fault: str | None) -> None:
        if part not in ("admin", "metrics"):
            raise KeyError(f"unknown part {part!r}: expected 'admin' or 'metrics'")
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)} or None")
        super().__setitem__(part, fault)


def _number(raw: str) -> Any:
    """``"120"`` → 120, ``"1.5"`` → 1.5; anything else stays the string it was."""
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def _flag(raw: str) -> Any:
    lowered = raw.strip().lower()
    return {"true": True, "false": False}.get(lowered, raw)


class BackendServer:
    """The backend process: its HTTP face here, its log lines in ``logs``.

    Like the real process, both read the same tenant settings: a plain (not async)
    ``tenant_config`` is handed to ``logs`` too, so a rolled-back policy version shows up
    in the log lines as well as in the admin API.
    """

    def __init__(
        self,
        live: LiveWorld,
        logs: BackendLogs | None,
        tenant_config: TenantConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.logs = logs
        self.tenant_config = tenant_config
        if logs is not None and not inspect.iscoroutinefunction(tenant_config):
            logs.use_config(tenant_config)  # type: ignore[arg-type]
        self.clock = clock
        self.faults = Faults()
        self.faults["admin"] = None
        self.faults["metrics"] = None
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/admin/tenants/{tenant}", self._tenant)
        app.router.add_get("/admin/flags", self._flags)
        app.router.add_get("/healthz", self._health)
        app.router.add_post("/sandbox/breach", self._breach)
        self.app = app

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the backend server is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._released.clear()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        self._released.set()  # lets hanging handlers finish, so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner, self._url = None, None

    async def _fault(self, part: str) -> web.Response | None:
        fault = self.faults.get(part)
        if fault == "500":
            return web.json_response({"error": "internal server error"}, status=500)
        if fault == "garbage":
            return web.Response(body=b'{"tenant_id": <html>upstream', content_type="application/json")
        if fault == "hang":
            await self._released.wait()
            return web.json_response({"error": "shutting down"}, status=503)
        return None

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        failed = await self._fault("metrics")
        if failed is not None:
            return failed
        body = render(samples(self.live, self.clock()))
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _breach(self, request: web.Request) -> web.Response:
        """Sandbox control (not part of the FLK admin API): make a tenant breach, or recover."""
        try:
            body = await request.json()
            values = breach(self.live, str(body["tenant"]), str(body["scenario"]))
        except (ValueError, KeyError, TypeError) as exc:
            reason = str(exc) if isinstance(exc, BreachError) else "expected JSON {tenant, scenario}"
            return web.json_response({"error": reason}, status=400)
        return web.json_response({"tenant": body["tenant"], "scenario": body["scenario"], "set": values})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _tenant(self, request: web.Request) -> web.Response:
        failed = await self._fault("admin")
        if failed is not None:
            return failed
        tenant = request.match_info["tenant"]
        config = self.tenant_config(tenant)
        if inspect.isawaitable(config):
            config = await config
        if config is None:
            return web.json_response({"error": "tenant not found", "tenant_id": tenant}, status=404)
        body: dict[str, Any] = {"tenant_id": tenant}
        for key in _NUMBERS:
            body[key] = _number(config[key]) if key in config else None
        body["strict_mode"] = _flag(config["strict_mode"]) if "strict_mode" in config else None
        body["policy_version"] = config.get("policy_version")
        spec = self.live.world.tenants.get(tenant)
        body["region"] = spec.region if spec else None
        body.update(self._usage(tenant))
        return web.json_response(body)

    def _usage(self, tenant: str) -> dict[str, int]:
        """Requests since midnight UTC and rate-limit rejections in the last hour."""
        if tenant not in self.live.world.tenants:
            return {"daily_used": 0, "rate_limit_hits_1h": 0}
        now = self.clock()
        midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        ingest, quota = "flk_ingest_total_by_tenant", "flk_quota_exceeded_by_tenant"
        used = self.live.counter(tenant, ingest, now) - self.live.counter(tenant, ingest, midnight.timestamp())
        hits = self.live.counter(tenant, quota, now) - self.live.counter(tenant, quota, now - 3600)
        return {"daily_used": round(used), "rate_limit_hits_1h": round(hits)}

    async def _flags(self, request: web.Request) -> web.Response:
        failed = await self._fault("admin")
        if failed is not None:
            return failed
        world = self.live.world
        flags = world.feature_flags
        body: dict[str, Any] = {
            "global": dict(flags.get("global", {})),
            "tenants": {k: dict(v) for k, v in flags.items() if k != "global"},
        }
        if world.flag_changes:
            # When each flag got its value: what tells a flip just before a breach from an old setting.
            body["changes"] = [
                {
                    "scope": c.scope,
                    "flag": c.flag,
                    "value": c.value,
                    "previous": c.previous,
                    "at": rfc3339_ms(self.live.at(c.at)),
                    "author": c.author,
                }
                for c in sorted(world.flag_changes, key=lambda c: c.at)
            ]
        return web.json_response(body)
