"""The incident's one current root cause: a person's edit beats a diagnosis, a diagnosis beats a
triage, newer beats older of the same step; every draft (RESOLVED, resolve form, RCA, tenant
summary) states that one, and a tenant hears a cause's kind only at high confidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commands.comms import Templates, load_facts, render_rca
from commands.comms.drafts import stakeholder_resolved
from commands.config import Comms
from commands.timeline import append
from commands.timeline.events import FindingRef, ResolvePosted, VerdictReached
from integrations.store import Incident, Store
from tests.commands.comms_script import RESOLVED, TENANT, at, sqlite_store
from tests.store.fixtures import FakeClock

QUOTA_SUMMARY = "Your traffic exceeded your tenant's configured rate limit"
DATA_SUMMARY = "The data your agents sent shifted"


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[Store, FakeClock, Incident]]:
    async with sqlite_store(tmp_path) as (store, clock):
        clock.now = at(10, 0)
        incident, _ = await store.open_or_get_incident(TENANT, title=f"{TENANT}: triage", channel="C_INC")
        yield store, clock, incident


def triage_guess(scenario: str = "escalations", **extra) -> VerdictReached:
    return VerdictReached(step="triage", scenario=scenario, headline="Likely scenario B", tenant=TENANT, **extra)


def diagnosis(scenario: str | None, headline: str, **extra) -> VerdictReached:
    return VerdictReached(step="diagnose", scenario=scenario, headline=headline, tenant=TENANT, **extra)


async def record(store: Store, clock: FakeClock, incident: Incident, minute: int, event: VerdictReached) -> None:
    clock.now = at(10, minute)
    await append(store, incident.id, "U_ALICE", event)


async def drafts(store: Store, incident: Incident) -> tuple[str, str, str]:
    """The RESOLVED update's root cause, the RCA's root-cause section and the tenant summary."""
    facts = await load_facts(store, incident.id, now=RESOLVED)
    rca = render_rca(facts, Templates(), Comms())
    section = rca.document.split("## Root cause\n\n", 1)[1].split("\n## ", 1)[0]
    return stakeholder_resolved(facts, Comms()).fields["root_cause"], section, rca.tenant_summaries[TENANT]


async def test_a_diagnosis_overturns_the_triage_guess_everywhere(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, triage_guess(confidence="medium"))
    await record(
        store, clock, incident, 3, diagnosis("quota", "legitimate burst", cause="legitimate_burst", confidence="high")
    )
    resolved, section, summary = await drafts(store, incident)
    assert resolved == "scenario C · quota exceeded (rate limit): legitimate burst"
    assert section.startswith(f"{resolved} (diagnose at")
    assert "confidence high" in section
    assert QUOTA_SUMMARY in summary
    assert DATA_SUMMARY not in summary and "escalation spike" not in resolved


async def test_a_diagnosis_that_names_nothing_leaves_the_cause_undetermined(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, triage_guess(confidence="high"))
    await record(store, clock, incident, 3, diagnosis(None, "nothing wrong found"))
    resolved, _, summary = await drafts(store, incident)
    assert resolved == "nothing wrong found"
    assert DATA_SUMMARY not in summary
    assert "We are still analysing the root cause" in summary


async def test_a_diagnosis_that_could_not_read_its_data_overturns_nothing(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, diagnosis("quota", "retry storm", cause="retry_storm", confidence="high"))
    failed = (FindingRef(key="quota.logs", status="error", summary="loki: 503"),)
    await record(store, clock, incident, 3, diagnosis(None, "cannot tell", findings=failed))
    resolved, _, summary = await drafts(store, incident)
    assert resolved == "scenario C · quota exceeded (rate limit): retry storm"
    assert QUOTA_SUMMARY in summary


async def test_the_newer_diagnosis_wins_and_a_later_triage_does_not(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, diagnosis("escalations", "policy too strict", confidence="high"))
    await record(store, clock, incident, 2, diagnosis("signatures", "clock skew", cause="clock_skew", confidence="low"))
    await record(store, clock, incident, 4, triage_guess("quota", confidence="high"))
    resolved, section, summary = await drafts(store, incident)
    assert resolved == "scenario A · signature failures: clock skew"
    # Low confidence: the tenant hears neither the cause's kind nor its prevention.
    assert "signing-key" not in summary and "key rotations" not in summary
    assert "We are still analysing the root cause" in summary
    assert "confidence low" in section


async def test_an_inconclusive_triage_names_no_cause(opened) -> None:
    store, clock, incident = opened
    await record(
        store,
        clock,
        incident,
        1,
        VerdictReached(
            step="triage",
            scenario="escalations",
            headline="Inconclusive: B or C",
            inconclusive=("escalations", "quota"),
            confidence="low",
            tenant=TENANT,
        ),
    )
    resolved, _, summary = await drafts(store, incident)
    assert resolved == "not determined: B or C (Inconclusive: B or C)"
    assert DATA_SUMMARY not in summary and QUOTA_SUMMARY not in summary


async def test_a_persons_edit_beats_every_verdict_and_reaches_no_tenant(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, diagnosis("quota", "legitimate burst", confidence="high"))
    clock.now = at(10, 9)
    typed = "a partner's batch job, confirmed with the tenant"
    posted = ResolvePosted(fields={"root_cause": typed}, edited=("root_cause",))
    await append(store, incident.id, "U_BOB", posted)
    resolved, section, summary = await drafts(store, incident)
    assert resolved == typed
    assert section.startswith(f"{typed} (resolve form at")
    assert typed not in summary and QUOTA_SUMMARY not in summary


async def test_a_resolve_that_kept_the_draft_leaves_the_verdict_current(opened) -> None:
    store, clock, incident = opened
    await record(store, clock, incident, 1, diagnosis("quota", "legitimate burst", confidence="high"))
    posted = ResolvePosted(fields={"root_cause": "scenario C · quota exceeded (rate limit): legitimate burst"})
    await append(store, incident.id, "U_BOB", posted)
    _, section, summary = await drafts(store, incident)
    assert section.startswith("scenario C · quota exceeded (rate limit): legitimate burst (diagnose at")
    assert QUOTA_SUMMARY in summary
