"""Drafts from a scripted incident: the tenant notices and the RESOLVED update, word for word,
with times, duration, actors and values from the timeline; edits stay data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from commands.comms import Templates, annotation, investigating, load_facts, stakeholder_resolved, tenant_resolved
from commands.config import Comms
from commands.timeline import append
from commands.timeline.events import ChangeRef, CheckRan, MitigationApplied, MitigationPlanned
from integrations.store import AlertIn, Store
from tests.commands.comms_script import (
    BREACH,
    CHANGE,
    LABELS,
    OTHER,
    PLAN,
    RESOLVED,
    TENANT,
    at,
    script_incident,
    sqlite_store,
)
from tests.store.fixtures import FakeClock

TEMPLATES = Templates()


@pytest.fixture
async def comms_store(tmp_path: Path) -> AsyncIterator[tuple[Store, FakeClock]]:
    async with sqlite_store(tmp_path) as pair:
        yield pair


async def test_tenant_notice_investigating(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    facts = await load_facts(store, incident_id, now=at(10, 2))
    draft = investigating(facts, Comms())
    assert draft.fields == {
        "severity": "P2",
        "degraded": "an elevated share of escalated requests (7.31% of requests; objective: at most 2%)",
        "eta": "30 minutes",
    }
    assert draft.render(TEMPLATES) == (
        f"*[P2] Service degradation for tenant {TENANT}*\n"
        "We are investigating an elevated share of escalated requests (7.31% of requests; objective: at most 2%) "
        "for your tenant since 2031-05-04 09:58 UTC. ETA for resolution: 30 minutes.\n"
        "We will update you here as soon as we know more.\n"
    )


async def test_configured_severity_and_eta(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    facts = await load_facts(store, await script_incident(store, clock, resolve=False), now=at(10, 2))
    text = investigating(facts, Comms(severity="P1", eta="2 hours")).render(TEMPLATES)
    assert text.startswith(f"*[P1] Service degradation for tenant {TENANT}*\n")
    assert "ETA for resolution: 2 hours." in text


async def test_tenant_update_resolved(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    facts = await load_facts(store, await script_incident(store, clock), now=RESOLVED + timedelta(minutes=5))
    assert tenant_resolved(facts, Comms()).render(TEMPLATES) == (
        f"*[P2] Resolved: service degradation for tenant {TENANT}*\n"
        "The service degradation for your tenant has been resolved as of 2031-05-04 11:21 UTC, after 1 h 23 min.\n"
        "What was affected: an elevated share of escalated requests (7.31% of requests; objective: at most 2%).\n"
        "We will share a summary of the root cause and the preventive measures within 48 hours.\n"
    )


async def test_stakeholder_resolved_from_the_timeline(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    facts = await load_facts(store, incident_id, now=RESOLVED)
    draft = stakeholder_resolved(facts, Comms(), people={"U_BOB": "Bob"})
    assert draft.fields == {
        "root_cause": f"scenario D · per-tenant policy misconfiguration: policy v9 tightened tol_D from 1.5 to 1.1 "
        f"for {TENANT}",
        "resolution": f"rollback-policy on configmap/tenant-{TENANT} (policy_version v9 → v8), confirmed by Bob, "
        "verified at 10:22 UTC",
        "duration": "1 h 23 min",
        "next_steps": "RCA due by 2031-05-06 11:21 UTC (`/flk rca` drafts it); policy review: are the tolerance "
        "thresholds appropriate? (runbook §7.2); share the RCA summary with the tenant",
    }
    assert draft.render(TEMPLATES) == (
        f"✓ *RESOLVED: {TENANT} SLO breach* (P2, incident #{incident_id})\n"
        f"*Root cause:* {draft.fields['root_cause']}\n"
        f"*Resolution:* {draft.fields['resolution']}\n"
        "*Duration:* 1 h 23 min\n"
        f"*Next steps:* {draft.fields['next_steps']}\n"
    )


async def test_resolve_modal_duration_runs_to_now_while_open(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    facts = await load_facts(store, incident_id, now=BREACH + timedelta(minutes=45, seconds=59))
    assert stakeholder_resolved(facts, Comms()).fields["duration"] == "45 min"
    later = await load_facts(store, incident_id, now=BREACH + timedelta(days=1, hours=2, minutes=5))
    assert stakeholder_resolved(later, Comms()).fields["duration"] == "1 d 2 h 5 min"


async def test_edited_fields_are_data(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    facts = await load_facts(store, await script_incident(store, clock), now=RESOLVED)
    draft = stakeholder_resolved(facts, Comms()).with_fields(
        root_cause="<!channel> {{ 7 * 7 }}",
        resolution="see <http://evil.example|this> & that",
        next_steps="  ping <@U_CEO>  ",
    )
    text = draft.render(TEMPLATES)  # Markdown here; tests/bot/test_comms_mrkdwn.py renders it for Slack
    assert "*Root cause:* &lt;!channel> {{ 7 * 7 }}\n" in text
    assert "*Resolution:* see &lt;http://evil.example|this> & that\n" in text
    assert "*Next steps:* ping <@U_CEO>\n" in text  # neither a tag nor an autolink in Markdown
    with pytest.raises(ValueError, match="has no field eta"):
        draft.with_fields(eta="soon")


async def test_alert_text_cannot_inject(comms_store: tuple[Store, FakeClock]) -> None:
    store, _ = comms_store
    incident, _ = await store.open_or_get_incident(TENANT, title="t")
    labels = {**LABELS, "sli": "<!channel> <http://x|y>"}
    await store.record_alert(incident.id, AlertIn("fp", TENANT, "firing", BREACH, labels=labels))
    facts = await load_facts(store, incident.id, now=at(10, 5))
    draft = investigating(facts, Comms())
    assert draft.fields["degraded"] == "a degraded <!channel> <http://x|y>"
    assert "We are investigating a degraded &lt;!channel> &lt;http://x|y> for your tenant" in draft.render(TEMPLATES)


async def test_without_verdict_or_mitigation(comms_store: tuple[Store, FakeClock]) -> None:
    store, _ = comms_store
    incident, _ = await store.open_or_get_incident(TENANT, title="t")
    await store.record_alert(
        incident.id,
        AlertIn(
            "fp",
            TENANT,
            "resolved",
            BREACH,
            ends_at=at(10, 7),
            labels=LABELS,
            annotations={"value": "0.05", "slo": "0.02"},
        ),
    )
    facts = await load_facts(store, incident.id, now=at(10, 30))
    fields = stakeholder_resolved(facts, Comms(rca_reminder_s=3600)).fields
    assert fields["root_cause"] == "not determined yet"
    assert fields["resolution"] == "no mitigation recorded; the alert resolved at 10:07:00 UTC"
    assert fields["next_steps"] == (
        "RCA due by 2031-05-04 11:30 UTC (`/flk rca` drafts it); share the RCA summary with the tenant"
    )
    assert tenant_resolved(facts, Comms(rca_reminder_s=3600)).fields["follow_up"].endswith("within 1 hours.")


async def test_undone_mitigation_is_not_the_resolution(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    back = ChangeRef(object=CHANGE.object, namespace="lba", key="policy_version", before="v8", after="v9")
    clock.now = at(10, 50)
    await append(
        store,
        incident_id,
        "U_BOB",
        MitigationPlanned(plan_id="undo1", action="rollback-policy", tenant=TENANT, changes=(back,), undoes=PLAN),
    )
    await append(
        store,
        incident_id,
        "U_BOB",
        MitigationApplied(
            plan_id="undo1",
            action="rollback-policy",
            tenant=TENANT,
            changes=(back,),
            confirmed_by="U_BOB",
            undoes=PLAN,
        ),
    )
    clock.now = at(10, 55)
    await append(store, incident_id, "bot", CheckRan(n=1, of=2, ok=False, plan_id="undo1", summary="7%"))
    facts = await load_facts(store, incident_id, now=at(11, 0))
    (applied, undone) = facts.mitigations
    assert (applied.undone, undone.kind, undone.action, undone.target) == (
        True,
        "undone",
        "rollback-policy",
        f"configmap/tenant-{TENANT}",
    )
    # The undo's own check is not counted as the rollback's verification.
    assert [c.ok for c in applied.checks] == [False, True] and applied.verified is not None
    assert stakeholder_resolved(facts, Comms()).fields["resolution"] == (
        "no mitigation recorded; the alert resolved at 10:23:00 UTC"
    )


async def test_an_undo_of_another_plan_leaves_this_one_active(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    clock.now = at(10, 50)
    other = MitigationApplied(
        plan_id="undo2", action="rollback-policy", tenant=TENANT, changes=(), confirmed_by="U_BOB", undoes="elsewhere"
    )
    await append(store, incident_id, "U_BOB", other)
    facts = await load_facts(store, incident_id, now=at(11, 0))
    assert [m.plan_id for m in facts.active_mitigations] == [PLAN]


async def test_isolation_incident_notices_name_one_tenant(comms_store: tuple[Store, FakeClock]) -> None:
    store, _ = comms_store
    incident, _ = await store.open_isolation_incident([TENANT, OTHER], title="Isolation breach: 2 tenants")
    for tenant, value in ((TENANT, "0.03"), (OTHER, "0.09")):
        await store.record_alert(
            incident.id,
            AlertIn(
                f"fp-{tenant}",
                tenant,
                "firing",
                BREACH,
                labels={**LABELS, "tenant_id": tenant},
                annotations={"value": value, "slo": "0.02"},
            ),
        )
    facts = await load_facts(store, incident.id, now=at(10, 5))
    with pytest.raises(ValueError, match="name the tenant"):
        investigating(facts, Comms())
    with pytest.raises(ValueError, match="not part of incident"):
        investigating(facts, Comms(), tenant="t-red")
    text = investigating(facts, Comms(), tenant=OTHER).render(TEMPLATES)
    assert f"for tenant {OTHER}*" in text and "(9% of requests" in text
    assert TENANT not in text


async def test_grafana_annotation_spans_the_breach(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    facts = await load_facts(store, incident_id, now=RESOLVED)
    draft = stakeholder_resolved(facts, Comms()).with_fields(resolution="rolled back to v8")
    note = annotation(facts, Comms(), draft)
    assert note.text == (f"SLO breach - Root cause: {draft.fields['root_cause']} - Mitigation: rolled back to v8")
    assert note.tags == ("flk", "slo-breach", f"tenant:{TENANT}", f"incident:{incident_id}")
    assert (note.start, note.end) == (BREACH, RESOLVED)
