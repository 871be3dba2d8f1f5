"""What the replicas posted, read from the Slack emulator, and the webhook Alertmanager sends."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bench.bench_alerts import alert, webhook_body
from sandbox.slack.models import Message
from tests.replicas.cluster import Cluster

CHANNEL = "C_GENERAL"
_PROGRESS = re.compile(r"^triage of (\S+): (\d+)/(\d+) probes done")


async def until(check: Callable[[], Any], wait_s: float, what: str, cluster: Cluster | None = None) -> Any:
    """Poll ``check()`` (sync or async) until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + wait_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            logs = f"\n{cluster.logs()}" if cluster is not None else ""
            raise AssertionError(f"not within {wait_s:g} s: {what}{logs}")
        await asyncio.sleep(0.05)


async def thread_ts(cluster: Cluster, tenant: str, wait_s: float = 20) -> str:
    """The tenant's open incident thread, as the shared store knows it (waits for the parent post)."""
    assert cluster.store is not None
    store = cluster.store

    async def posted() -> str | None:
        incident = await store.find_open(tenant)
        return incident.thread_ts if incident is not None else None

    return str(await until(posted, wait_s, f"the parent post of {tenant}", cluster))


def thread(cluster: Cluster, ts: str) -> list[Message]:
    return cluster.sandbox.slack.thread(CHANNEL, ts)


def parents(cluster: Cluster, tenant: str, since: float) -> list[Message]:
    """Top-level messages naming ``tenant`` posted after ``since`` (time.time())."""
    top = cluster.sandbox.slack.channel_messages(CHANNEL)
    return [m for m in top if float(m.ts) >= since and re.search(rf"\b{re.escape(tenant)}\b", m.all_text())]


def summaries(cluster: Cluster, ts: str, tenant: str, step: str = "Triage") -> list[Message]:
    header = f"{step} · {tenant} · "
    return [
        m
        for m in thread(cluster, ts)
        if any(b.get("type") == "header" and b["text"]["text"].startswith(header) for b in m.blocks)
    ]


def checklists(cluster: Cluster, ts: str, tenant: str) -> list[tuple[Message, int, int]]:
    """The triage progress messages in the thread: (message, probes done, probes)."""
    found = []
    for m in thread(cluster, ts):
        match = _PROGRESS.match(m.text)
        if match and match.group(1) == tenant:
            found.append((m, int(match.group(2)), int(match.group(3))))
    return found


def containing(cluster: Cluster, ts: str, marker: str) -> list[Message]:
    return [m for m in thread(cluster, ts) if marker in m.all_text()]


def firing(*tenants: str) -> dict[str, Any]:
    """One Alertmanager notification (payload v4) for ``tenants``, breaching since 5 minutes ago."""
    return webhook_body([alert(t, datetime.now(UTC) - timedelta(minutes=5)) for t in tenants])


async def send_webhook(cluster: Cluster, url: str, body: dict[str, Any]) -> int:
    headers = {"Authorization": f"Bearer {cluster.sandbox.alert_webhook_token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(f"{url}/alerts/alertmanager", json=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


def kube_patches(cluster: Cluster, name: str) -> int:
    return sum(
        1 for r in cluster.sandbox.kube.requests if r.method == "PATCH" and r.path.endswith(f"/configmaps/{name}")
    )
