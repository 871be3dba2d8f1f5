"""The runbook config's caps, through the real bot: a `/flk` command too long and an Alertmanager
body too large are refused with a short answer and change nothing; an export beyond the
concurrent-export cap is told "busy, try again"; and a pod's log is read as a bounded tail."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from integrations.kube import Kube
from sandbox.up import Sandbox
from tests.bot.harness import Harness, runbook_files, running

CONFIG = """\
mitigations: {authorised_groups: [S_ONCALL]}
export: {max_concurrent: 1}
limits: {command_text_chars: 200, alert_body_bytes: 2048}
"""


@pytest.fixture(scope="module")
async def capped(sandbox: Sandbox) -> AsyncIterator[Harness]:
    async with running(sandbox, **runbook_files(CONFIG, "flk-caps-")) as h:
        yield h


def tenants_of(h: Harness, scenario: str | None = None) -> list[str]:
    return [t for t, s in h.sandbox.live.world.tenants.items() if scenario in (None, s.scenario)]


async def test_a_command_over_the_length_cap_is_refused_and_does_nothing(capped: Harness) -> None:
    h = capped
    assert h.bot.rt is not None
    tenant = tenants_of(h)[0]
    delivery = await h.driver.slash(f"mitigate {tenant} quota " + "9" * 300)
    assert delivery.status == 200
    assert "at most 200 are read. Nothing was done." in str(delivery.body)
    await asyncio.sleep(0.3)
    assert await h.bot.rt.store.find_open(tenant) is None


async def test_an_alert_body_over_the_size_cap_is_refused_with_413(capped: Harness) -> None:
    h = capped
    assert h.bot.rt is not None
    tenant = tenants_of(h)[-1]
    alert = {"labels": {"alertname": "FLKTenantSLOBreach", "tenant_id": tenant}, "status": "firing"}
    body = {"status": "firing", "alerts": [alert], "padding": "x" * 4096}
    headers = {"Authorization": f"Bearer {h.sandbox.env['FLK_ALERT_WEBHOOK_TOKEN']}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{h.bot.url}/alerts/alertmanager", data=json.dumps(body), headers=headers) as response,
    ):
        assert response.status == 413
        assert "limits.alert_body_bytes" in (await response.json())["error"]
    assert await h.bot.rt.store.find_open(tenant) is None


async def test_an_export_beyond_the_concurrent_cap_is_told_busy(capped: Harness) -> None:
    h = capped
    slack = h.sandbox.slack
    first, second = tenants_of(h)[:2]
    # The first export's upload is rate-limited twice (Retry-After 1 s each): it holds its slot meanwhile.
    failed = len([c for c in slack.calls("files.getUploadURLExternal") if not c.ok])
    slack.fail_next("files.getUploadURLExternal", 2, "ratelimited")
    files = len(slack.files())
    assert (await h.driver.slash(f"export {first} escalations 5")).status == 200
    await slack.wait_for(lambda: len([c for c in slack.calls("files.getUploadURLExternal") if not c.ok]) > failed, 10)
    assert (await h.driver.slash(f"export {second} escalations 5")).status == 200
    await h.thread_ts(second)
    busy = await slack.wait_for(
        lambda: next((m for m in h.thread(second) if "Busy: 1 export" in m.all_text()), None), 10
    )
    assert "try again" in busy.all_text()
    # The first export still completes; the second uploaded nothing.
    upload = await slack.wait_for(lambda: next((f for f in slack.files()[files:] if first in f.name), None), 15)
    header = next(csv.reader(io.StringIO((upload.content or b"").decode())))
    assert header[0] == "pcs_id"
    assert not [f for f in slack.files()[files:] if second in f.name]


async def test_a_pod_log_is_read_as_a_bounded_tail(capped: Harness) -> None:
    sb = capped.sandbox
    env = sb.env
    kube = await Kube.connect(env["FLK_KUBE_API_URL"], env["FLK_KUBE_TOKEN"], env["FLK_NAMESPACE"], 5)
    try:
        [pod, *_] = await kube.backend_pods("app=backend")
        tail = await kube.pod_log(pod, "backend", since_seconds=3600, max_bytes=4096)
        whole = await kube.pod_log(pod, "backend", since_seconds=3600)  # read after: it may have grown
    finally:
        await kube.close()
    assert sum(len(line.encode()) + 1 for line in whole) > 4096, "the pod's log is too short to show the cap"
    # Whole lines that fit in the cap, a run of the full log in its order, ending at its newest then.
    assert tail and sum(len(line.encode()) + 1 for line in tail) <= 4096
    start = whole.index(tail[0])
    assert whole[start : start + len(tail)] == tail
    assert len(whole) - (start + len(tail)) < len(whole) // 2
