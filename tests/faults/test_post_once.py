"""Posts that must be made once, across a store blip and across concurrent people: the incident's
parent message and the tenant notice when the store fails between Slack's answer and the record
of it (the retry finds the earlier post by its metadata instead of posting again), and RESOLVED
when two people submit the resolve form at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from integrations.store import Incident, StoreUnavailable
from sandbox.slack.models import View
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, runbook_files, running

NOTICE_CHANNEL, STAKEHOLDERS = "C_GENERAL", "C_INCIDENTS"
CONFIG = f"""\
mitigations: {{authorised_groups: [S_ONCALL]}}
comms:
  tenant_channels: {{atlas: {NOTICE_CHANNEL}}}
  stakeholder_channel: {STAKEHOLDERS}
"""


@pytest.fixture(scope="module")
async def once(faults_sandbox: Sandbox) -> AsyncIterator[Harness]:
    async with running(faults_sandbox, **runbook_files(CONFIG, "flk-once-")) as h:
        yield h


def failing_once(real: Callable[..., Awaitable[Any]], when: Callable[..., bool] = lambda *a, **k: True) -> Any:
    """``real``, except that its first matching call finds the store unavailable."""
    failed: list[bool] = []

    async def call(*args: Any, **kwargs: Any) -> Any:
        if not failed and when(*args, **kwargs):
            failed.append(True)
            raise StoreUnavailable("database unavailable (the test cut it off)")
        return await real(*args, **kwargs)

    call.failed = failed  # type: ignore[attr-defined]
    return call


def marked(h: Harness, channel: str, incident: Incident, kind: str) -> list[Any]:
    """The bot's messages in ``channel`` whose metadata names this incident and kind (the other
    tables' bots, on databases of their own, post incidents with the same ids here)."""
    return [
        m
        for m in h.sandbox.slack.channel_messages(channel)
        if m.metadata
        and m.metadata["event_payload"]
        == {"incident_id": incident.id, "opened_at": incident.opened_at.isoformat(), "kind": kind}
    ]


async def open_incident(h: Harness, tenant: str) -> int:
    assert h.bot.rt is not None
    assert (await h.driver.slash(f"verify {tenant} in 10m", user="U_ALICE", channel="C_SRE")).status == 200
    await h.thread_ts(tenant)
    incident = await h.bot.rt.store.find_open(tenant)
    assert incident is not None
    return incident.id


def modal(h: Harness, callback_id: str, user: str) -> View | None:
    views = [v for v in h.sandbox.slack.views(user, open_only=True) if v.callback_id == callback_id]
    return views[-1] if views else None


async def test_the_parent_post_is_made_once_when_the_store_fails_to_record_it(
    once: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = once
    assert h.bot.rt is not None
    store = h.bot.rt.store
    set_thread = failing_once(store.set_thread)
    monkeypatch.setattr(store, "set_thread", set_thread)
    incident_id = await open_incident(h, "polaris")
    assert set_thread.failed, "the store never failed: the test did not test the retry"
    await asyncio.sleep(0.5)
    [parent] = marked(h, h.channel, await store.get(incident_id), "parent")
    assert (await store.get(incident_id)).thread_ts == parent.ts
    # The retry looked for the first attempt's post (and found it) instead of posting again.
    assert h.sandbox.slack.calls("conversations.history")


async def test_the_tenant_notice_is_sent_once_when_the_store_fails_to_record_it(
    once: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = once
    assert h.bot.rt is not None
    store = h.bot.rt.store
    incident_id = await open_incident(h, "atlas")
    assert (await h.driver.slash("notify atlas", user="U_ALICE", channel="C_SRE")).status == 200
    view = await h.sandbox.slack.wait_for(lambda: modal(h, "flk_notify", "U_ALICE"), 10)
    append = failing_once(store.append_event, lambda _id, _actor, kind, *a, **k: kind == "notice.sent")
    monkeypatch.setattr(store, "append_event", append)
    assert (await h.driver.submit_view(view.id)).status == 200

    async def recorded() -> bool:
        return any(e.kind == "notice.sent" for e in await store.timeline(incident_id))

    await eventually(recorded, 15)
    assert append.failed
    await h.sandbox.slack.wait_for(lambda: any(":incoming_envelope:" in m.all_text() for m in h.thread("atlas")), 10)
    await asyncio.sleep(0.5)
    assert len(marked(h, NOTICE_CHANNEL, await store.get(incident_id), "notice:investigating:atlas")) == 1
    assert sum(":incoming_envelope:" in m.all_text() for m in h.thread("atlas")) == 1
    assert sum(e.kind == "notice.sent" for e in await store.timeline(incident_id)) == 1


async def test_two_people_resolving_at_once_post_resolved_once(once: Harness) -> None:
    h = once
    assert h.bot.rt is not None
    incident_id = await open_incident(h, "willow")
    views = []
    for user in ("U_ALICE", "U_BOB"):
        assert (await h.driver.slash("resolve willow", user=user, channel="C_SRE")).status == 200
        views.append(await h.sandbox.slack.wait_for(lambda user=user: modal(h, "flk_resolve", user), 10))
    stakeholders = len(h.sandbox.slack.channel_messages(STAKEHOLDERS))
    deliveries = await asyncio.gather(*(h.driver.submit_view(v.id) for v in views))
    assert [d.status for d in deliveries] == [200, 200]
    await h.sandbox.slack.wait_for(lambda: len(h.sandbox.slack.channel_messages(STAKEHOLDERS)) > stakeholders, 10)
    await asyncio.sleep(1)
    assert len(h.sandbox.slack.channel_messages(STAKEHOLDERS)) == stakeholders + 1
    resolved_in_thread = [m for m in h.thread("willow") if "RESOLVED" in m.all_text() and m.ts != m.thread_ts]
    assert len(resolved_in_thread) == 1, [m.all_text()[:80] for m in resolved_in_thread]
    assert (await h.bot.rt.store.get(incident_id)).state == "resolved"
