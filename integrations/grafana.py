"""Grafana HTTP API annotations (runbook §6 "Update Grafana Dashboard"): add one, find them.

The token goes into the Authorization header only; no message of this module carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import aiohttp

from integrations.errors import BackendError
from integrations.http import HttpClient

SYSTEM = "Grafana"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Grafana(HttpClient):
    def __init__(self, base_url: str, token: str | None, timeout_s: float = 5.0) -> None:
        super().__init__(base_url, timeout_s, {"Authorization": f"Bearer {token}"} if token else None)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._http().request(method, f"{self.base_url}{path}", **kwargs) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status == 401:
                    raise BackendError(SYSTEM, "the API token was refused (HTTP 401)")
                if response.status == 403:
                    raise BackendError(SYSTEM, "the API token may not do this (HTTP 403)")
                if response.status != 200:
                    detail = body.get("message") if isinstance(body, dict) else None
                    raise BackendError(
                        SYSTEM,
                        f"{path} answered HTTP {response.status}" + (f" ({str(detail)[:200]})" if detail else ""),
                    )
                return body
        except TimeoutError:
            raise BackendError(SYSTEM, f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise BackendError(SYSTEM, f"cannot reach {self.base_url} ({type(exc).__name__})") from None

    async def annotate(
        self,
        text: str,
        *,
        start: datetime,
        end: datetime | None = None,
        tags: Iterable[str] = (),
        dashboard_uid: str | None = None,
        panel_id: int | None = None,
    ) -> int:
        """Add an annotation (a region when ``end`` is given); returns its id."""
        body: dict[str, Any] = {"time": _ms(start), "tags": list(tags), "text": text}
        if end is not None:
            body["timeEnd"] = _ms(end)
        if dashboard_uid:
            body["dashboardUID"] = dashboard_uid
        if panel_id is not None:
            body["panelId"] = panel_id
        answer = await self._call("POST", "/api/annotations", json=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise BackendError(SYSTEM, "the annotation answer carries no id")
        return answer["id"]

    async def annotations(
        self,
        *,
        dashboard_uid: str | None = None,
        tags: Iterable[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Annotations as Grafana lists them (newest first), with all of ``tags``."""
        params: list[tuple[str, str]] = [("limit", str(limit))]
        params += [("tags", t) for t in tags]
        if dashboard_uid:
            params.append(("dashboardUID", dashboard_uid))
        if start is not None:
            params.append(("from", str(_ms(start))))
        if end is not None:
            params.append(("to", str(_ms(end))))
        answer = await self._call("GET", "/api/annotations", params=params)
        if not isinstance(answer, list):
            raise BackendError(SYSTEM, "the annotation list is not a list")
        return answer
