"""The FLK backend admin API (`/admin/tenants/<t>`, `/admin/flags`)."""

from __future__ import annotations

from typing import Any

import aiohttp

from integrations.errors import BackendError
from integrations.http import HttpClient


class AdminApi(HttpClient):
    """Headers carry the API server token when the admin API is reached through the service proxy."""

    async def _get_json(self, path: str) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with self._http().get(url) as response:
                if response.status == 404:
                    raise BackendError("admin API", f"{path} not found (404)")
                if response.status >= 400:
                    raise BackendError("admin API", f"{path} answered HTTP {response.status}")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise BackendError("admin API", f"{path} answered something that is not JSON") from None
        except TimeoutError:
            raise BackendError("admin API", f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise BackendError("admin API", f"cannot reach {self.base_url} ({type(exc).__name__})") from None

    async def tenant(self, tenant: str) -> dict[str, Any]:
        body = await self._get_json(f"/admin/tenants/{tenant}")
        if not isinstance(body, dict):
            raise BackendError("admin API", "tenant answer is not an object")
        return body

    async def flags(self) -> dict[str, Any]:
        body = await self._get_json("/admin/flags")
        if not isinstance(body, dict):
            raise BackendError("admin API", "flags answer is not an object")
        return body
