# ruff: noqa: E501  (the expected document keeps the RCA's own long lines)
"""The RCA draft (runbook §7) for a scripted incident, word for word, and the tenant summary:
built from an allowlist, so no pod name, IP, internal host or other tenant reaches it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from commands.comms import RCA_POSTED, Templates, draft_rca, load_facts, rca_posted, render_rca
from commands.comms.templates import RCA_TENANT_SUMMARY
from commands.config import Comms
from commands.timeline import append
from commands.timeline.events import RcaPosted, VerdictReached
from integrations.store import AlertIn, Store
from tests.commands.comms_script import (
    BREACH,
    HOST,
    IP,
    LABELS,
    OTHER,
    POD,
    RESOLVED,
    TENANT,
    at,
    script_incident,
    sqlite_store,
)
from tests.store.fixtures import FakeClock

PEOPLE = {"U_ALICE": "Alice <admin>", "U_BOB": "Bob"}
# Anything internal: the scripted pod, IP and host, other tenants, object and key names, people.
INTERNAL = re.compile(
    rf"{re.escape(POD)}|{re.escape(IP)}|{re.escape(HOST)}|{OTHER}|\b\d{{1,3}}(\.\d{{1,3}}){{3}}\b|svc|cluster\.local"
    r"|configmap|policy_version|tol_D|backend|U_[A-Z]+|Alice|Bob|mlopez|v9|v8|#\d",
)

EXPECTED_RCA = """\
# RCA: FLKTenantSLOBreach · t-blue (incident #1)

_Draft generated 2031-05-04 11:21 UTC from the incident timeline; due by 2031-05-06 11:21 UTC. Edit before sharing._

| | |
|---|---|
| Tenant | t-blue |
| Severity | P2 |
| State | resolved |
| Impact start (first alert) | 2031-05-04 09:58:00 UTC |
| Detected (incident opened) | 2031-05-04 10:00:30 UTC |
| Mitigated (first mitigation applied) | 2031-05-04 10:12:40 UTC |
| Resolved | 2031-05-04 11:21:30 UTC |
| Time to detect | 2 min |
| Time to mitigate | 14 min |
| Time to resolve | 1 h 23 min |

## What was degraded

- t-blue: escalation ratio 7.31% (SLO 2%), from 2031-05-04 09:58:00 UTC to 2031-05-04 10:23:00 UTC

## Root cause

scenario D · per-tenant policy misconfiguration: policy v9 tightened tol_D from 1.5 to 1.1 for t-blue (diagnose at 2031-05-04 10:04:20 UTC, by Alice &lt;admin>, confidence high)
- tol_D 1.5 → 1.1 in v9 (author mlopez)
- backend.lba.svc.cluster.local:8080 serves v9 since 09:41 UTC

## Findings and verdicts

### 2031-05-04 10:01:10 UTC · triage by bot

Verdict: Likely scenario D · per-tenant policy misconfiguration

- evidence: escalation ratio 7.31% > SLO 2%
- evidence: policy v9 promoted at 09:41 UTC, breach since 09:58 UTC
- evidence: 1 other tenant(s) breaching too: t-green
- `identify.logs` warn: backend-5f7d9c8b6-q2x4z: 412 lines from 10.42.0.17
- `identify.others` warn: t-green breaching too

### 2031-05-04 10:04:20 UTC · diagnose by Alice &lt;admin>

Verdict: scenario D · per-tenant policy misconfiguration: policy v9 tightened tol_D from 1.5 to 1.1 for t-blue

- evidence: tol_D 1.5 → 1.1 in v9 (author mlopez)
- evidence: backend.lba.svc.cluster.local:8080 serves v9 since 09:41 UTC
- `policy.diff` breach: tol_D 1.5 → 1.1

## Actions taken

### 2031-05-04 10:12:40 UTC · rollback-policy on `configmap/tenant-t-blue`

- `policy_version`: `v9` → `v8`
- restart: deployment/backend
- planned by Alice &lt;admin>, confirmed by Bob
- check 2031-05-04 10:17:40 UTC: ❌ SLO check 1/2 after rollback-policy failed: escalations 3.1% > SLO 2%
- check 2031-05-04 10:22:40 UTC: ✅ SLO check 2/2 after rollback-policy passed: escalations 0.8%, signature errors 0.1%

## Verification

- 2031-05-04 10:17:40 UTC ❌ SLO check 1/2 after rollback-policy failed: escalations 3.1% > SLO 2% (bot)
- 2031-05-04 10:22:40 UTC ✅ SLO check 2/2 after rollback-policy passed: escalations 0.8%, signature errors 0.1% (bot)

## Communications

- 2031-05-04 10:05:00 UTC investigating notice sent to t-blue (Alice &lt;admin>)
- 2031-05-04 10:06:00 UTC alert of t-blue silenced until 12:06 UTC: rollback under way (Alice &lt;admin>)

## Timeline (UTC)

- 2031-05-04 10:00:30 UTC · 🚨 incident.opened · alertmanager: incident opened by an alert: FLKTenantSLOBreach · t-blue (P2)
- 2031-05-04 10:00:30 UTC · 🔴 alert.firing · alertmanager: escalation ratio alert firing for t-blue at 7.31%
- 2031-05-04 10:00:31 UTC · • thread.opened · bot: incident thread opened
- 2031-05-04 10:01:10 UTC · 🔎 verdict · bot: triage: Likely scenario D · per-tenant policy misconfiguration
- 2031-05-04 10:03:00 UTC · ⌨️ command · Alice &lt;admin>: `/flk diagnose t-blue policy`
- 2031-05-04 10:04:20 UTC · 🔬 verdict · Alice &lt;admin>: diagnose: policy v9 tightened tol_D from 1.5 to 1.1 for t-blue
- 2031-05-04 10:05:00 UTC · 📣 notice.sent · Alice &lt;admin>: investigating notice sent to t-blue
- 2031-05-04 10:06:00 UTC · 🔕 silence.created · Alice &lt;admin>: alert of t-blue silenced until 12:06 UTC: rollback under way
- 2031-05-04 10:11:00 UTC · 📝 mitigation.planned · Alice &lt;admin>: rollback-policy planned for t-blue, plan `5d2c9e1f0a7b`: configmap/tenant-t-blue: policy_version v9 → v8; then restart deployment/backend
- 2031-05-04 10:12:40 UTC · 🛠️ mitigation.applied · Bob: rollback-policy applied (configmap/tenant-t-blue: policy_version v9 → v8), confirmed by Bob
- 2031-05-04 10:17:40 UTC · ❌ check · bot: SLO check 1/2 failed: escalations 3.1% > SLO 2%
- 2031-05-04 10:22:40 UTC · ✅ check · bot: SLO check 2/2 passed: escalations 0.8%, signature errors 0.1%
- 2031-05-04 10:23:05 UTC · 🟢 alert.resolved · alertmanager: escalation ratio alert resolved for t-blue at 0.8%
- 2031-05-04 10:25:00 UTC · 📌 note · U_CAROL: tenant confirms traffic is back &lt;!channel>
- 2031-05-04 10:40:00 UTC · • pager.ack · pagerduty: acknowledged by the on-call engineer
- 2031-05-04 11:21:30 UTC · ➡️ incident.state · Alice &lt;admin>: open → resolved

## Preventive measures

- [ ] Roll per-tenant policy changes out as a canary and compare the escalation ratio before promoting.
- [ ] Policy review: are the tolerance thresholds appropriate? Propose a policy version update (runbook §7.2).
- [ ] Monitoring: add more granular alerts where this incident found gaps; update the dashboard (runbook §7.4).
- [ ] Tenant communication: share the RCA summary, discuss preventive measures, review SLA implications (runbook §7.3).
"""

EXPECTED_SUMMARY = f"""\
# Incident summary for {TENANT}

*Severity:* P2
*Impact:* an elevated share of escalated requests (7.31% of requests; objective: at most 2%)
*Start:* 2031-05-04 09:58 UTC
*Resolved:* 2031-05-04 11:21 UTC (duration 1 h 23 min)

## What happened

A verification policy change applied to your tenant escalated more requests than intended.

## What we did

- We rolled your tenant back to the previous verification policy.
- We verified that the service met its objectives again.

## What we will do

- Policy changes for your tenant will be rolled out gradually and checked before they take full effect.
- We are happy to go through this summary and any SLA questions with you.
"""


@pytest.fixture
async def comms_store(tmp_path: Path) -> AsyncIterator[tuple[Store, FakeClock]]:
    async with sqlite_store(tmp_path) as pair:
        yield pair


async def test_rca_document_for_the_scripted_incident(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    draft = await draft_rca(store, Templates(), Comms(), incident_id, now=RESOLVED, people=PEOPLE)
    assert draft.filename == f"rca-{TENANT}-incident-{incident_id}-20310504.md"
    assert draft.document == EXPECTED_RCA


async def test_tenant_summary_is_free_of_internal_details(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    draft = await draft_rca(store, Templates(), Comms(), incident_id, now=RESOLVED, people=PEOPLE)
    assert draft.tenant_summaries == {TENANT: EXPECTED_SUMMARY}
    # The document does hold them (the check would catch a leak), the summary does not.
    assert INTERNAL.search(draft.document)
    assert INTERNAL.search(EXPECTED_SUMMARY.replace(TENANT, "")) is None


async def test_isolation_incident_summary_per_tenant_names_no_other(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    tenants = (TENANT, OTHER, "t-red")
    incident, _ = await store.open_isolation_incident(tenants, title="Isolation breach: 3 tenants")
    for n, tenant in enumerate(tenants):
        await store.record_alert(
            incident.id,
            AlertIn(
                f"fp-{tenant}",
                tenant,
                "firing",
                BREACH + timedelta(seconds=n),
                labels={**LABELS, "tenant_id": tenant},
                annotations={"value": f"0.0{n + 3}", "slo": "0.02"},
            ),
        )
    clock.now = at(10, 2)
    headline = f"Isolation breach across {len(tenants)} tenants"
    await append(store, incident.id, "bot", VerdictReached(step="isolation", scenario=None, headline=headline))
    draft = render_rca(await load_facts(store, incident.id, now=at(10, 30)), Templates(), Comms())
    assert draft.filename == f"rca-isolation-incident-{incident.id}-20310504.md"
    assert set(draft.tenant_summaries) == set(tenants)
    for n, tenant in enumerate(tenants):
        summary = draft.tenant_summaries[tenant]
        assert summary.startswith(f"# Incident summary for {tenant}\n")
        assert f"({n + 3}% of requests" in summary
        assert "*Resolved:* not yet\n" in summary
        assert not [t for t in tenants if t != tenant and t in summary]
    assert "| Tenant | t-blue, t-green, t-red |" in draft.document


async def test_rca_while_open_has_no_resolve_times(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    draft = await draft_rca(store, Templates(), Comms(), incident_id, now=at(10, 45))
    assert "| Resolved | — |\n| Time to detect | 2 min |\n| Time to mitigate | 14 min |\n| Time to resolve | — |" in (
        draft.document
    )
    assert "| State | open |" in draft.document
    assert "*Resolved:* not yet\n" in draft.tenant_summaries[TENANT]


async def test_a_tenant_summary_template_of_its_own(comms_store: tuple[Store, FakeClock], tmp_path: Path) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    own = tmp_path / "templates" / TENANT
    own.mkdir(parents=True)
    (own / RCA_TENANT_SUMMARY).write_text(
        "Dear {{ tenant }}: {{ impact }}; fixed after {{ time_to_resolve|duration }}."
    )
    draft = await draft_rca(store, Templates(tmp_path / "templates"), Comms(), incident_id, now=RESOLVED)
    assert draft.tenant_summaries[TENANT] == (
        f"Dear {TENANT}: an elevated share of escalated requests (7.31% of requests; objective: at most 2%); "
        "fixed after 1 h 23 min.\n"
    )
    assert draft.document == await _default_document(store, incident_id)


async def _default_document(store: Store, incident_id: int) -> str:
    return (await draft_rca(store, Templates(), Comms(), incident_id, now=RESOLVED)).document


async def test_rca_posted_is_read_from_the_timeline(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock)
    assert not rca_posted(await load_facts(store, incident_id, now=RESOLVED))
    await append(store, incident_id, "U_ALICE", RcaPosted(kind=RCA_POSTED, filename="rca.md"))
    assert rca_posted(await load_facts(store, incident_id, now=RESOLVED))
