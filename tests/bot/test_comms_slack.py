"""Communications through signed Slack requests and view submissions, on a scripted incident
(known times, actors and values, scripted 90 minutes ago into the bot's own store): the tenant
notice, the RESOLVED update, the Grafana annotation, the real Alertmanager silence created and
expired, the RCA files, the 48 h reminder (compressed to seconds), timeline capture by reaction,
and every bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from commands.comms import load_facts
from integrations.alertmanager import Alertmanager
from integrations.store import Store
from sandbox.slack.models import View
from sandbox.up import Sandbox
from tests.bot.harness import Harness, eventually, runbook_files, running
from tests.commands.comms_script import HOST, IP, OTHER, POD, TENANT, script_incident
from tests.store.fixtures import FakeClock

TENANT_CHANNEL, STAKEHOLDERS = "C_GENERAL", "C_SRE"
CONFIG = f"""\
mitigations: {{authorised_groups: [S_ONCALL]}}
comms:
  tenant_channels: {{{TENANT}: {TENANT_CHANNEL}}}
  stakeholder_channel: {STAKEHOLDERS}
  rca_reminder_s: 4
"""


@pytest.fixture(scope="module")
async def ch(sandbox: Sandbox) -> AsyncIterator[Harness]:
    async with running(sandbox, **runbook_files(CONFIG, "flk-comms-")) as h:
        yield h


async def scripted(h: Harness) -> tuple[int, datetime]:
    """The scripted incident of TENANT, started 90 minutes ago, with its thread opened by the bot."""
    assert h.bot.rt is not None
    base = datetime.now(UTC) - timedelta(minutes=90)
    url = h.bot.settings.database_url
    assert url is not None
    clock = FakeClock(base)
    # A second connection to the bot's database, its clock moved by the script.
    async with await Store.connect(url, clock=clock) as store:
        left = await store.find_open(TENANT)
        if left is not None:  # from an earlier test that did not resolve it
            await store.set_state(left.id, "resolved", actor="test")
        incident_id = await script_incident(store, clock, resolve=False, base=base, channel=h.channel)
    await h.bot.rt.store.jobs.enqueue("post_parent", {}, incident_id=incident_id, dedupe_key=f"parent:{incident_id}")
    h.bot.rt.kick_jobs()
    await h.thread_ts(TENANT)
    return incident_id, base


def open_view(h: Harness, callback_id: str, user: str = "U_ALICE") -> View | None:
    """The newest open modal of that kind, for ``slack.wait_for``."""
    views = [v for v in h.sandbox.slack.views(user, open_only=True) if v.callback_id == callback_id]
    return views[-1] if views else None


def initial(view: View, name: str) -> str:
    block = next(b for b in view.view["blocks"] if b.get("block_id") == name)
    return str(block["element"].get("initial_value", ""))


def channel_texts(h: Harness, channel: str) -> list[str]:
    return [m.text for m in h.sandbox.slack.channel_messages(channel)]


def ephemeral_with(h: Harness, text: str, user: str = "U_ALICE") -> bool:
    return any(text in e.all_text() for e in h.sandbox.slack.ephemerals(user=user))


def hm(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M}"


async def kinds(h: Harness, incident_id: int, kind: str) -> list:  # type: ignore[type-arg]
    assert h.bot.rt is not None
    return [e for e in await h.bot.rt.store.timeline(incident_id) if e.kind == kind]


async def test_the_scripted_incident_from_notice_to_rca(ch: Harness) -> None:
    slack = ch.sandbox.slack
    incident_id, base = await scripted(ch)
    rt = ch.bot.rt
    assert rt is not None

    # -- the notice: drafted from the incident, edited, sent to the tenant's channel -------
    posted_before = len(channel_texts(ch, TENANT_CHANNEL))
    assert (await ch.driver.slash(f"notify {TENANT}")).status == 200
    view = await slack.wait_for(lambda: open_view(ch, "flk_notify"))
    assert initial(view, "severity") == "P2"
    assert initial(view, "degraded") == (
        "an elevated share of escalated requests (7.31% of requests; objective: at most 2%)"
    )
    assert initial(view, "eta") == "30 minutes"
    delivery = await ch.driver.submit_view(view.id, values={"eta": "1 hour <!channel>"})
    assert delivery.status == 200
    await ch.driver.submit_view(view.id)  # the same modal submitted again: still one notice
    notice = (
        f"*[P2] Service degradation for tenant {TENANT}*\n"
        "We are investigating an elevated share of escalated requests (7.31% of requests; objective: at most 2%)"
        f" for your tenant since {base:%Y-%m-%d %H:%M} UTC. ETA for resolution: 1 hour &lt;!channel&gt;.\n"
        "We will update you here as soon as we know more.\n"
    )
    await slack.wait_for(lambda: notice in channel_texts(ch, TENANT_CHANNEL))
    await eventually(lambda: _has(ch, incident_id, "notice.sent", 2))  # the script's own and ours
    await asyncio.sleep(0.5)
    assert channel_texts(ch, TENANT_CHANNEL)[posted_before:] == [notice]
    sent = (await kinds(ch, incident_id, "notice.sent"))[-1]
    assert sent.actor == "U_ALICE" and (sent.data["channel"], sent.data["text"]) == (TENANT_CHANNEL, notice)
    assert any(":incoming_envelope: The investigating notice was sent" in m.text for m in ch.thread(TENANT))

    # -- a silence in the real Alertmanager, expired on resolve ------------------------------
    assert (await ch.driver.slash(f"silence {TENANT} 30m rollback under way <!channel>")).status == 200
    said = await slack.wait_for(lambda: next((m.text for m in ch.thread(TENANT) if ":mute:" in m.text), None))
    assert "&lt;!channel&gt;" in said and "<!channel>" not in said
    silence_id = (await kinds(ch, incident_id, "silence.created"))[-1].data["silence_id"]
    assert (await _silence(ch, silence_id))["status"]["state"] == "active"

    # -- resolve from the parent message's button ---------------------------------------------
    parent_ts = await ch.thread_ts(TENANT)
    opened_at = datetime.now(UTC)
    await ch.driver.click("flk_run:resolve", channel=ch.channel, ts=parent_ts)
    view = await slack.wait_for(lambda: open_view(ch, "flk_resolve"))
    root_cause = (
        f"scenario D · per-tenant policy misconfiguration: policy v9 tightened tol_D from 1.5 to 1.1 for {TENANT}"
    )
    resolution = (
        f"rollback-policy on configmap/tenant-{TENANT} (policy_version v9 → v8), confirmed by Bob Brown, "
        f"verified at {hm(base + timedelta(minutes=24, seconds=40))} UTC"
    )
    assert initial(view, "root_cause") == root_cause
    assert initial(view, "resolution") == resolution
    assert initial(view, "duration") == "1 h 30 min"
    due = {f"{t + timedelta(seconds=4):%Y-%m-%d %H:%M} UTC" for t in (opened_at, datetime.now(UTC))}
    next_steps = initial(view, "next_steps")
    assert next_steps in {
        f"RCA due by {d} (`/flk rca` drafts it); policy review: are the tolerance thresholds appropriate? "
        "(runbook §7.2); share the RCA summary with the tenant"
        for d in due
    }
    assert (await ch.driver.submit_view(view.id)).status == 200
    await ch.driver.submit_view(view.id)  # submitted twice: one RESOLVED update
    resolved = (
        f"✓ *RESOLVED: {TENANT} SLO breach* (P2, incident #{incident_id})\n*Root cause:* {root_cause}\n"
        f"*Resolution:* {resolution}\n*Duration:* 1 h 30 min\n*Next steps:* {next_steps}\n"
    )
    await slack.wait_for(lambda: resolved in channel_texts(ch, STAKEHOLDERS), timeout=10)
    await slack.wait_for(lambda: [m.text for m in ch.thread(TENANT)].count(resolved) == 1)
    incident = await rt.store.get(incident_id)
    assert incident.state == "resolved"
    parent = ch.parent(TENANT)
    assert parent is not None
    await slack.wait_for(lambda: ":white_check_mark:" in parent.all_text() and "resolved at" in parent.all_text())
    # The tenant's resolved update, in its channel.
    await slack.wait_for(
        lambda: any(
            t.startswith(f"*[P2] Resolved: service degradation for tenant {TENANT}*")
            for t in channel_texts(ch, TENANT_CHANNEL)
        )
    )
    # The Grafana annotation, as the stand-in received it.
    grafana = ch.sandbox.grafana
    await slack.wait_for(lambda: any(f"incident:{incident_id}" in a.tags for a in grafana.annotations))
    mark = next(a for a in grafana.annotations if f"incident:{incident_id}" in a.tags)
    assert mark.text == f"SLO breach - Root cause: {root_cause} - Mitigation: {resolution}"
    assert mark.dashboard_uid == "flk-tenant-health"
    assert {"flk", "slo-breach", f"tenant:{TENANT}"} <= set(mark.tags)
    assert mark.time == int(base.timestamp() * 1000)
    assert mark.time_end == int(incident.resolved_at.timestamp() * 1000)  # type: ignore[union-attr]
    # Our silence expired in the real Alertmanager; the script's made-up one was already gone.
    await eventually(lambda: _expired(ch, silence_id))
    # Resolving again changes nothing.
    assert (await ch.driver.slash(f"resolve {TENANT}")).status == 200
    await slack.wait_for(lambda: ephemeral_with(ch, f"Incident #{incident_id} was already resolved"))
    assert [m.text for m in ch.thread(TENANT)].count(resolved) == 1

    # -- the RCA, before the reminder falls due --------------------------------------------------
    assert (await ch.driver.slash(f"rca {TENANT}")).status == 200
    rca = await slack.wait_for(lambda: _file(ch, f"rca-{TENANT}-incident-{incident_id}-"))
    summary = await slack.wait_for(lambda: _file(ch, f"rca-summary-{TENANT}-incident-{incident_id}"))
    document = (rca.content or b"").decode()
    assert rca.name == f"rca-{TENANT}-incident-{incident_id}-{base:%Y%m%d}.md"
    assert rca.shares[0][2] == parent_ts
    assert f"{hm(base + timedelta(minutes=14, seconds=40))}" in document and "Bob Brown" in document
    assert "tenant confirms traffic is back" in document
    shared = (summary.content or b"").decode()
    assert TENANT in shared
    for internal in (POD, IP, HOST, OTHER, "Bob"):
        assert internal not in shared
    # The reminder falls due 4 s after the resolve and stays quiet: an RCA was posted.
    await asyncio.sleep(6)
    assert not any(":memo: The RCA" in m.text for m in ch.thread(TENANT))


async def test_the_rca_reminder_fires_when_no_rca_was_posted(ch: Harness) -> None:
    incident_id, _ = await scripted(ch)
    await ch.driver.slash(f"resolve {TENANT}")
    view = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_resolve"))
    await ch.driver.submit_view(view.id, values={"root_cause": "typed by hand"})
    reminder = await ch.sandbox.slack.wait_for(
        lambda: next((m.text for m in ch.thread(TENANT) if ":memo: The RCA" in m.text), None), timeout=15
    )
    assert f"incident #{incident_id} ({TENANT}) is due" in reminder and f"`/flk rca {TENANT}`" in reminder
    # The person's wording is the incident's root cause from now on (the RCA states it).
    assert ch.bot.rt is not None
    facts = await load_facts(ch.bot.rt.store, incident_id, now=datetime.now(UTC))
    assert facts.root_cause is not None and (facts.root_cause.source, facts.root_cause.text) == (
        "person",
        "typed by hand",
    )


async def test_grafana_down_the_resolve_completes_and_the_annotation_is_retried(ch: Harness) -> None:
    incident_id, _ = await scripted(ch)
    grafana = ch.sandbox.grafana
    grafana.fail_with = 503
    try:
        await ch.driver.slash(f"resolve {TENANT}")
        view = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_resolve"))
        await ch.driver.submit_view(view.id)
        await ch.sandbox.slack.wait_for(
            lambda: any(":warning: Grafana annotation failed" in m.text for m in ch.thread(TENANT)), timeout=10
        )
        assert ch.bot.rt is not None and (await ch.bot.rt.store.get(incident_id)).state == "resolved"
    finally:
        grafana.fail_with = None
    await ch.sandbox.slack.wait_for(
        lambda: any("Grafana annotation added after all" in m.text for m in ch.thread(TENANT)), timeout=15
    )
    assert any(f"incident:{incident_id}" in a.tags for a in grafana.annotations)


async def test_pinned_thread_messages_join_the_timeline_once(ch: Harness) -> None:
    incident_id, _ = await scripted(ch)
    thread_ts = await ch.thread_ts(TENANT)
    channel = ch.sandbox.slack.channel_id(ch.channel)
    said = (
        "backend restarted at 10:31 by hand, <@U_ALICE> &amp; <!here> see <https://status.example/x?a=1&amp;b=2|status>"
    )
    note = ch.sandbox.slack.add_user_message(channel, "U_DAVE", said, thread_ts)
    elsewhere = ch.sandbox.slack.add_user_message(channel, "U_DAVE", "unrelated chatter")
    # Alice's pin first, then Bob's on the same message (each reaction is handled in its own task).
    assert (await ch.driver.reaction_added(channel, note.ts, "pushpin", user="U_ALICE")).status == 200
    await eventually(lambda: _has(ch, incident_id, "note", 2))
    assert (await ch.driver.reaction_added(channel, note.ts, "pushpin", user="U_BOB")).status == 200
    await ch.driver.reaction_added(channel, elsewhere.ts, "pushpin")
    await ch.driver.reaction_added(channel, note.ts, "eyes")
    await eventually(lambda: _has(ch, incident_id, "note", 2))  # the script's own and this one
    await asyncio.sleep(0.5)
    notes = await kinds(ch, incident_id, "note")
    assert len(notes) == 2
    # Recorded as plain text: what a person read in Slack, not Slack's markup.
    assert (notes[-1].actor, notes[-1].data["text"], notes[-1].data["pinned_by"]) == (
        "U_DAVE",
        "backend restarted at 10:31 by hand, @U_ALICE & @here see status (https://status.example/x?a=1&b=2)",
        "U_ALICE",
    )


async def test_bad_input_changes_nothing(ch: Harness) -> None:
    slack = ch.sandbox.slack
    for text, answer in (
        ("resolve", "works on an incident: use the Resolve button"),
        ("notify", "works on an incident: use the Notify button"),
        ("rca", "works on an incident"),
        ("notify no-such-tenant", "`no-such-tenant` has no open incident"),
        (f"silence {TENANT} 3d too long", "has no open incident"),
    ):
        assert (await ch.driver.slash(text)).status == 200
        await slack.wait_for(lambda answer=answer: ephemeral_with(ch, answer))
    incident_id, _ = await scripted(ch)
    await ch.driver.slash(f"silence {TENANT} 3d too long")
    await slack.wait_for(lambda: ephemeral_with(ch, "a silence may last at most 1 d"))
    # Only the authorised groups may send or resolve.
    views_before = len(slack.views("U_CAROL"))
    for verb in ("notify", "resolve"):
        await ch.driver.slash(f"{verb} {TENANT}", user="U_CAROL")
    await slack.wait_for(lambda: ephemeral_with(ch, "may send tenant notices", user="U_CAROL"))
    await slack.wait_for(lambda: ephemeral_with(ch, "may resolve incidents", user="U_CAROL"))
    assert len(slack.views("U_CAROL")) == views_before
    assert ch.bot.rt is not None and (await ch.bot.rt.store.get(incident_id)).state == "open"


async def test_no_notification_channel_posts_the_draft_in_the_thread(ch: Harness) -> None:
    world = ch.sandbox.live.world
    tenant = next(t for t, s in world.tenants.items() if t != TENANT and s.scenario != "none")
    await ch.driver.slash(f"triage {tenant}")
    await ch.thread_ts(tenant, incident=True)
    await ch.driver.slash(f"notify {tenant}")
    view = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_notify"))
    assert "No notification channel is configured" in str(view.view["blocks"][0])
    await ch.driver.submit_view(view.id)
    text = await ch.sandbox.slack.wait_for(
        lambda: next((m.text for m in ch.thread(tenant) if "No notification channel is configured" in m.text), None)
    )
    assert f"*[P2] Service degradation for tenant {tenant}*" in text


def _file(h: Harness, prefix: str):  # type: ignore[no-untyped-def]
    return next((f for f in h.sandbox.slack.files() if f.name.startswith(prefix)), None)


async def _has(h: Harness, incident_id: int, kind: str, count: int) -> bool:
    return len(await kinds(h, incident_id, kind)) >= count


async def _silence(h: Harness, silence_id: str) -> dict:  # type: ignore[type-arg]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{h.sandbox.alertmanager_url}/api/v2/silence/{silence_id}") as response,
    ):
        return await response.json()


async def _expired(h: Harness, silence_id: str) -> bool:
    return (await _silence(h, silence_id))["status"]["state"] == "expired"


async def test_alertmanager_down_the_resolve_completes_and_the_silence_expires_later(
    ch: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident_id, _ = await scripted(ch)
    rt = ch.bot.rt
    assert rt is not None
    await ch.driver.slash(f"silence {TENANT} 1h waiting for the rate window")
    await eventually(lambda: _has(ch, incident_id, "silence.created", 2))  # the script's and this one
    silence_id = (await kinds(ch, incident_id, "silence.created"))[-1].data["silence_id"]
    # Alertmanager unreachable while the incident is resolved.
    dead = Alertmanager("http://127.0.0.1:9", 1.0)
    monkeypatch.setattr(rt.ctx, "alertmanager", dead)
    await ch.driver.slash(f"resolve {TENANT}")
    view = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_resolve"))
    await ch.driver.submit_view(view.id)
    await ch.sandbox.slack.wait_for(
        lambda: any(":warning: Alertmanager silences failed" in m.text for m in ch.thread(TENANT)), timeout=10
    )
    assert (await rt.store.get(incident_id)).state == "resolved"
    assert (await _silence(ch, silence_id))["status"]["state"] == "active"
    monkeypatch.undo()  # Alertmanager is back: the retry expires the silence
    await dead.close()
    await eventually(lambda: _expired(ch, silence_id), wait_s=15)


async def test_removed_from_the_group_with_a_modal_open_sends_and_resolves_nothing(ch: Harness) -> None:
    incident_id, _ = await scripted(ch)
    groups = ch.sandbox.slack.workspace.config.usergroups
    sent_before = channel_texts(ch, TENANT_CHANNEL), channel_texts(ch, STAKEHOLDERS)
    await ch.driver.slash(f"notify {TENANT}", user="U_BOB")
    notify = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_notify", "U_BOB"))
    await ch.driver.slash(f"resolve {TENANT}", user="U_BOB")
    resolve = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_resolve", "U_BOB"))
    groups["S_ONCALL"].remove("U_BOB")
    try:
        told = len(ch.sandbox.slack.ephemerals(user="U_BOB"))
        assert (await ch.driver.submit_view(notify.id)).status == 200
        assert (await ch.driver.submit_view(resolve.id)).status == 200
        await ch.sandbox.slack.wait_for(lambda: len(ch.sandbox.slack.ephemerals(user="U_BOB")) >= told + 2)
        # An outsider submitting an on-call's open form (a forged submission) is refused the same way.
        await ch.driver.slash(f"resolve {TENANT}", user="U_ALICE")
        alices = await ch.sandbox.slack.wait_for(lambda: open_view(ch, "flk_resolve", "U_ALICE"))
        carol = len(ch.sandbox.slack.ephemerals(user="U_CAROL"))
        assert (await ch.driver.submit_view(alices.id, user="U_CAROL")).status == 200
        await ch.sandbox.slack.wait_for(lambda: len(ch.sandbox.slack.ephemerals(user="U_CAROL")) > carol)
    finally:
        groups["S_ONCALL"].append("U_BOB")
    said = [e.all_text() for e in ch.sandbox.slack.ephemerals(user="U_BOB")[told:]]
    assert said and all("Nothing was sent" in s for s in said), said
    assert (channel_texts(ch, TENANT_CHANNEL), channel_texts(ch, STAKEHOLDERS)) == sent_before
    assert (await ch.bot.rt.store.get(incident_id)).state != "resolved"  # type: ignore[union-attr]
    lines = (await asyncio.to_thread(Path(ch.bot.settings.audit_log).read_text)).splitlines()
    refused = [json.loads(line) for line in lines if '"action":"refused"' in line]
    actions = {(r["actor"], r["details"]["action"]) for r in refused}
    assert {("U_BOB", "notify.send"), ("U_BOB", "resolve.submit"), ("U_CAROL", "resolve.submit")} <= actions
