"""``services/{name}/proxy/{path}``: the API server's service proxy, forwarding to an upstream
URL configured per service instead of to the service's endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from sandbox.kube.errors import KubeError, bad_request

# Hop-by-hop and credential headers the API server does not pass on.
_DROPPED = {"authorization", "host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def parse_target(segment: str) -> tuple[str, str | None]:
    """``backend``, ``backend:8080``, ``http:backend:8080`` or ``https:backend:`` -> (name, port)."""
    parts = segment.split(":")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[0], parts[1] or None
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[1], parts[2] or None
    raise bad_request(f"invalid service request {segment!r}")


def check_port(service: dict[str, Any], port: str | None) -> None:
    name = service["metadata"]["name"]
    if port is None:
        return
    ports = (service.get("spec") or {}).get("ports") or []
    if not any(port in (str(p.get("port")), p.get("name")) for p in ports):
        raise unavailable(f'no endpoints available for service "{name}:{port}"')


def unavailable(message: str) -> KubeError:
    return KubeError("ServiceUnavailable", message, {})


async def forward(
    session: aiohttp.ClientSession,
    upstream: str,
    request: web.Request,
    path: str,
    query: Mapping[str, str],
) -> web.Response:
    base = URL(upstream)
    # ``path`` arrives decoded; yarl re-encodes it, so a literal "%" stays a "%".
    url = base.with_path(base.path.rstrip("/") + "/" + path.lstrip("/"))
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
    body = await request.read()
    try:
        async with session.request(
            request.method, url, params=dict(query), headers=headers, data=body or None, allow_redirects=False
        ) as upstream_response:
            payload = await upstream_response.read()
            response = web.Response(status=upstream_response.status, body=payload)
            if "Content-Type" in upstream_response.headers:
                response.headers["Content-Type"] = upstream_response.headers["Content-Type"]
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unavailable(f"error trying to reach service: {type(exc).__name__}") from None
