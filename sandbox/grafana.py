"""A Grafana HTTP API stand-in for annotations, checking each request as Grafana does.

``POST /api/annotations`` (bearer token; the JSON bound field by field like Grafana's Go
structs: a wrong type is 400 "bad request data", an empty text 400 "Failed to save
annotation"; an unknown ``dashboardUID`` is ignored and the annotation becomes an organisation
one, as Grafana does) and ``GET /api/annotations`` to read them back. ``fail_with`` makes every
call answer that HTTP status (Grafana in trouble); ``stop()`` makes it unreachable.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Field name -> the Python types Grafana's JSON binding accepts for it.
_FIELDS: dict[str, tuple[type, ...]] = {
    "dashboardUID": (str,),
    "dashboardId": (int,),
    "panelId": (int,),
    "time": (int,),
    "timeEnd": (int,),
    "tags": (list,),
    "text": (str,),
    "data": (dict,),
}


@dataclass
class StoredAnnotation:
    id: int
    dashboard_id: int
    dashboard_uid: str | None
    panel_id: int
    time: int
    time_end: int
    text: str
    tags: list[str]
    created: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alertId": 0,
            "dashboardId": self.dashboard_id,
            "dashboardUID": self.dashboard_uid,
            "panelId": self.panel_id,
            "userId": 1,
            "newState": "",
            "prevState": "",
            "created": self.created,
            "updated": self.created,
            "time": self.time,
            "timeEnd": self.time_end,
            "text": self.text,
            "tags": list(self.tags),
            "login": "flk-bot",
            "email": "",
            "avatarUrl": "",
            "data": self.data,
        }


def _bad_request(message: str = "bad request data") -> web.Response:
    return web.json_response({"message": message}, status=400)


def _bind(body: Any) -> dict[str, Any] | None:
    """The command as Grafana's binding reads it, or None where Grafana answers 'bad request data'."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        return None
    cmd: dict[str, Any] = {}
    for name, value in body.items():
        kinds = _FIELDS.get(name)
        if kinds is None or value is None:
            continue  # unknown fields and nulls are ignored
        if isinstance(value, bool) or not isinstance(value, kinds):
            return None
        if name == "tags" and not all(isinstance(t, str) for t in value):
            return None
        cmd[name] = value
    return cmd


class GrafanaStandIn:
    def __init__(
        self,
        token: str,
        *,
        dashboards: Iterable[str] = ("flk-tenant-health",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = f"Bearer {token}".encode()
        # Dashboard UID -> id, as the Grafana database would hold them.
        self.dashboards = {uid: n for n, uid in enumerate(dashboards, start=1)}
        self.clock = clock
        self.annotations: list[StoredAnnotation] = []
        self.fail_with: int | None = None
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        app = web.Application()
        app.router.add_post("/api/annotations", self._post)
        app.router.add_get("/api/annotations", self._get)
        app.router.add_get("/api/health", self._health)
        self.app = app

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the Grafana stand-in is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner, self._url = None, None

    async def __aenter__(self) -> GrafanaStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        if self.fail_with is not None:
            return web.json_response({"message": "Internal Server Error"}, status=self.fail_with)
        given = request.headers.get("Authorization")
        if not given:
            return web.json_response({"message": "Unauthorized"}, status=401)
        if not hmac.compare_digest(given.encode(), self._token):
            return web.json_response({"message": "Invalid API key"}, status=401)
        return None

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"database": "ok", "version": "stand-in"})

    async def _post(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            cmd = _bind(json.loads(await request.read()))
        except (ValueError, UnicodeDecodeError):
            cmd = None
        if cmd is None:
            return _bad_request()
        if not cmd.get("text"):
            return _bad_request("Failed to save annotation")
        uid = cmd.get("dashboardUID")
        dashboard_id = self.dashboards.get(uid, cmd.get("dashboardId", 0)) if uid else cmd.get("dashboardId", 0)
        now = int(self.clock() * 1000)
        start = cmd.get("time") or now
        end = cmd.get("timeEnd") or start
        annotation = StoredAnnotation(
            id=len(self.annotations) + 1,
            dashboard_id=dashboard_id,
            dashboard_uid=next((u for u, i in self.dashboards.items() if i == dashboard_id), None),
            panel_id=cmd.get("panelId", 0),
            time=min(start, end),
            time_end=max(start, end),
            text=cmd["text"],
            tags=list(cmd.get("tags", [])),
            created=now,
            data=cmd.get("data", {}),
        )
        self.annotations.append(annotation)
        return web.json_response({"message": "Annotation added", "id": annotation.id})

    async def _get(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        query = request.query
        try:
            start, end = int(query.get("from", 0)), int(query.get("to", 0))
            limit = int(query.get("limit", 100)) or 100
        except ValueError:
            return _bad_request()
        tags = query.getall("tags", [])
        match_any = query.get("matchAny", "false").lower() == "true"
        uid = query.get("dashboardUID")
        found = []
        for a in sorted(self.annotations, key=lambda a: (a.time, a.id), reverse=True):
            if (start and a.time_end < start) or (end and a.time > end):
                continue
            if uid and a.dashboard_uid != uid:
                continue
            if tags and not (any if match_any else all)(t in a.tags for t in tags):
                continue
            found.append(a.to_json())
        return web.json_response(found[:limit])
