"""Drafts from the typed timeline: an incident opened by a triage (no alert) states the SLIs the
triage measured and their SLOs; an incident stored before the timeline was typed still drafts
and renders after the migration (both backends); injected text in the data stays text in the RCA."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commands.comms import Templates, investigating, load_facts, render_rca, stakeholder_resolved, tenant_resolved
from commands.comms.markdown import markdown_escape
from commands.config import Comms, RunbookConfig
from commands.models import Finding, Report, Status
from commands.timeline import append
from commands.timeline.events import ChangeRef, CommandRun, FindingRef, MitigationPlanned, NotePinned, VerdictReached
from commands.timeline.steps import verdict_reached
from commands.triage.verdict import decide
from integrations.store import Store
from integrations.store.engine import create_engine, upgrade
from tests.commands.comms_script import BREACH, at, sqlite_store
from tests.store import legacy_incident
from tests.store.fixtures import FakeClock

CONFIG = RunbookConfig()
TENANT = "t-amber"


@pytest.fixture
async def comms_store(tmp_path: Path) -> AsyncIterator[tuple[Store, FakeClock]]:
    async with sqlite_store(tmp_path) as pair:
        yield pair


def triage_report(escalations: float | None, signatures: float | None) -> Report:
    """A triage of TENANT as ``identify.sli`` reports its two SLI probes, and its verdict."""
    findings = []
    for key, value, slo in (
        ("sli.escalations", escalations, CONFIG.slo.escalation_ratio),
        ("sli.signatures", signatures, CONFIG.slo.signature_error_ratio),
    ):
        data = {} if value is None else {"ratio": value, "slo": slo}
        status = Status.UNKNOWN if value is None else Status.BREACH if value > slo else Status.OK
        findings.append(Finding(key, key, status, "", data=data))
    report = Report("triage", TENANT, findings, BREACH, BREACH)
    report.verdict = decide(report, CONFIG)
    return report


async def opened_by_triage(store: Store, clock: FakeClock, report: Report) -> int:
    clock.now = at(10, 0)
    incident, _ = await store.open_or_get_incident(TENANT, title=f"{TENANT}: triage requested", actor="U_ALICE")
    await append(store, incident.id, "U_ALICE", CommandRun(verb="triage", text=f"triage {TENANT}"))
    clock.now = at(10, 1)
    await append(store, incident.id, "U_ALICE", verdict_reached(report))
    return incident.id


@pytest.mark.parametrize(
    ("escalations", "signatures", "degraded", "rca_lines"),
    [
        (
            0.0731,
            0.002,
            "an elevated share of escalated requests (7.31% of requests; objective: at most 2%)",
            ["escalation ratio 7.31% (SLO 2%)"],
        ),
        (
            0.004,
            0.057,
            "elevated signature verification failures (5.7% of requests; objective: at most 1%)",
            ["signature-error ratio 5.7% (SLO 1%)"],
        ),
        (
            0.031,
            0.0125,
            "an elevated share of escalated requests (3.1% of requests; objective: at most 2%) and elevated "
            "signature verification failures (1.25% of requests; objective: at most 1%)",
            ["escalation ratio 3.1% (SLO 2%)", "signature-error ratio 1.25% (SLO 1%)"],
        ),
        (
            None,
            0.02,
            "elevated signature verification failures (2% of requests; objective: at most 1%)",
            ["signature-error ratio 2% (SLO 1%)"],
        ),
    ],
)
async def test_an_incident_opened_by_a_triage_states_the_measured_slis(
    comms_store: tuple[Store, FakeClock],
    escalations: float | None,
    signatures: float | None,
    degraded: str,
    rca_lines: list[str],
) -> None:
    store, clock = comms_store
    incident_id = await opened_by_triage(store, clock, triage_report(escalations, signatures))
    facts = await load_facts(store, incident_id, now=at(10, 2))
    assert facts.alerts == ()
    notice = investigating(facts, Comms())
    assert notice.fields["degraded"] == degraded
    assert f"We are investigating {degraded} for your tenant" in notice.render(Templates())
    assert tenant_resolved(facts, Comms()).fields["impact"] == degraded
    rca = render_rca(facts, Templates(), Comms())
    section = rca.document.split("## What was degraded\n\n", 1)[1].split("\n\n## ", 1)[0]
    assert section.splitlines() == [
        f"- {TENANT}: {line}, measured at 2031-05-04 10:01:00 UTC (no alert was raised)" for line in rca_lines
    ]
    assert f"*Impact:* {degraded}\n" in rca.tenant_summaries[TENANT]


async def test_a_triage_that_found_no_breach_names_no_degradation(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await opened_by_triage(store, clock, triage_report(0.004, 0.002))
    facts = await load_facts(store, incident_id, now=at(10, 2))
    assert investigating(facts, Comms()).fields["degraded"] == "a service degradation"
    assert (
        "- No alert was recorded and no step measured a breached SLI."
        in render_rca(facts, Templates(), Comms()).document
    )


async def test_an_incident_stored_before_the_timeline_was_typed_still_drafts_and_renders(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0001")
        incident_id = await legacy_incident.write_incident(engine)
    finally:
        await engine.dispose()
    async with await Store.connect(db_url) as store:  # migrates to head
        facts = await load_facts(store, incident_id, now=legacy_incident.RESOLVED)
    people = {"U_ALICE": "Alice", "U_BOB": "Bob"}
    assert investigating(facts, Comms()).fields["degraded"] == (
        "an elevated share of escalated requests (7.31% of requests; objective: at most 2%)"
    )
    fields = stakeholder_resolved(facts, Comms(), people).fields
    assert fields["root_cause"] == (
        "scenario D · per-tenant policy misconfiguration: policy v9 tightened tol_D from 1.5 to 1.1 for t-blue"
    )
    # The rollback was undone (the undo's plan names it): it is not the resolution.
    (rollback, undo) = facts.mitigations
    assert (rollback.undone, undo.kind, [c.ok for c in rollback.checks]) == (True, "undone", [False, True])
    assert fields["resolution"] == "no mitigation recorded; the alert resolved at 10:23:00 UTC"
    document = render_rca(facts, Templates(), Comms(), people).document
    for expected in (
        "### 2031-05-04 10:12:40 UTC · rollback-policy on `configmap/tenant-t-blue`",
        "- `policy_version`: `v9` → `v8`",
        "- planned by Alice, confirmed by Bob",
        "- undone later",
        "- check 2031-05-04 10:17:40 UTC: ❌ SLO check 1/2 after rollback-policy failed: escalation ratio 3.1%",
        "### 2031-05-04 10:24:30 UTC · rollback-policy (undone) on `configmap/tenant-t-blue`",
        "- 2031-05-04 10:05:00 UTC investigating notice sent to t-blue (Alice)",
        "· 🔎 verdict · bot: triage: Likely scenario D · per-tenant policy misconfiguration",
        "· ⌨️ command · Alice: `/flk diagnose t-blue policy`",
        # Kinds the mapping does not know keep their old text, escaped like any other value.
        "· • pager.ack · pagerduty: acknowledged by <@U_DAVE>",
        "· • comms.refused · U_CAROL: <@U_CAROL> may not send tenant notices",
        "· 📌 note · U_CAROL: tenant confirms traffic is back &amp;lt;3 &lt;!channel>",
        "· ➡️ incident.state · Alice: open → resolved: resolved by <@U_ALICE>",
    ):
        assert expected in document, expected


INJECTED = [
    "<!channel>",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "<http://evil.example|click here>",
    "&#x3C;b&#x3E;",
]


@pytest.mark.parametrize("payload", INJECTED)
async def test_injected_text_in_the_data_stays_text_in_the_rca(
    comms_store: tuple[Store, FakeClock], payload: str
) -> None:
    store, clock = comms_store
    clock.now = at(10, 0)
    incident, _ = await store.open_or_get_incident(TENANT, title=f"breach {payload}")
    record = [
        ("U_ALICE", CommandRun(verb="diagnose", text=f"diagnose {TENANT} {payload}")),
        (
            "bot",
            VerdictReached(
                step="diagnose",
                scenario="policy",
                headline=f"policy {payload}",
                evidence=(f"evidence {payload}",),
                findings=(FindingRef(key="policy.diff", status="breach", summary=f"summary {payload}"),),
            ),
        ),
        ("U_CAROL", NotePinned(text=f"note {payload}", author="U_CAROL")),
        (
            "U_BOB",
            MitigationPlanned(
                plan_id="p1",
                action="quota",
                tenant=TENANT,
                changes=(ChangeRef(object="configmap/x", key="rate", before=payload, after="2"),),
            ),
        ),
    ]
    for actor, event in record:
        clock.now = at(10, 1)
        await append(store, incident.id, actor, event)
    people = {"U_ALICE": f"Alice {payload}"}
    document = render_rca(await load_facts(store, incident.id, now=at(10, 5)), Templates(), Comms(), people).document
    outside_code = re.sub(r"``? ?[^`]*?``?", "", document)  # a code span shows its text literally
    assert not re.search(r"<[A-Za-z/!?]|&#x|\]\(javascript", outside_code)
    for shown in (f"# RCA: breach {payload}", f"policy {payload}", f"summary {payload}", f"note {payload}"):
        assert markdown_escape(shown) in document
    assert f"`/flk diagnose {TENANT} {payload}`" in document
