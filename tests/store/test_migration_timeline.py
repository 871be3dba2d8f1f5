"""Migration 0002 on both backends: a timeline written at revision 0001 (Slack prose, loose
details) becomes typed events where the details (and the kept plans) carry them, ``legacy``
with the old text where they do not; the old text and details stay; downgrading keeps the rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store import Store
from integrations.store.engine import alembic_config, create_engine, current_revision, head_revision, upgrade
from tests.store.legacy_incident import EVENTS, PLAN, RESOLVED, TENANT, UNDO, write_incident

CHANGE = {"object": f"configmap/tenant-{TENANT}", "namespace": "lba", "key": "policy_version"}


@pytest.fixture
async def at_0001(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    await upgrade(engine, "0001")
    yield engine
    await engine.dispose()


async def test_rows_of_revision_0001_become_typed_events(db_url: str, at_0001: AsyncEngine) -> None:
    incident_id = await write_incident(at_0001)
    async with await Store.connect(db_url) as store:  # upgrades to head
        assert await current_revision(store.engine) == head_revision()
        rows = await store.timeline(incident_id)
    assert [(r.at, r.actor, r.text, r.details) for r in rows] == [(a, who, t, d) for a, who, _, t, d in EVENTS]
    kinds = [r.kind for r in rows]
    assert kinds == [
        "incident.opened",
        "alert.firing",
        "thread.opened",
        "verdict",
        "command",
        "verdict",
        "notice.sent",
        "silence.created",
        "mitigation.planned",
        "mitigation.applied",
        "check",
        "check",
        "mitigation.planned",
        "mitigation.applied",
        "note",
        "legacy",
        "legacy",
        "incident.state",
        "resolve.posted",
    ]
    by = dict(enumerate(r.data for r in rows))
    assert by[0] == {
        "title": f"FLKTenantSLOBreach · {TENANT}",
        "severity": "P2",
        "tenants": [TENANT],
        "source": "alert",
    }
    assert by[1] == {"fingerprint": "fp", "tenant": TENANT, "value": 0.0731}
    assert (by[3]["step"], by[3]["scenario"], by[3]["findings"]) == (
        "triage",
        "policy",
        [{"key": "identify.others", "status": "warn", "summary": "t-green breaching too"}],
    )
    assert by[4] == {"verb": "diagnose", "text": f"diagnose {TENANT} policy"}
    assert (by[8]["action"], by[8]["changes"], by[8]["undoes"]) == (
        "rollback-policy",
        [{**CHANGE, "before": "v9", "after": "v8"}],
        None,
    )
    assert (by[9]["plan_id"], by[9]["confirmed_by"], by[9]["changes"]) == (
        PLAN,
        "U_BOB",
        [{**CHANGE, "before": "v9", "after": "v8"}],
    )
    assert (by[10]["ok"], by[10]["status"], by[10]["slis"][0]) == (
        False,
        "breach",
        {"sli": "escalations", "value": 0.031, "slo": 0.02},
    )
    assert (by[11]["ok"], by[11]["status"]) == (True, "ok")
    assert (by[13]["plan_id"], by[13]["undoes"]) == (UNDO, PLAN)
    assert by[14]["text"] == "tenant confirms traffic is back &lt;3 <!channel>"  # as Slack sent it, kept
    assert by[15] == {"legacy_kind": "pager.ack", "text": "acknowledged by <@U_DAVE>"}
    assert by[17] == {"state": "resolved", "previous": "open", "reason": "resolved by <@U_ALICE>"}


async def test_downgrade_keeps_every_row_and_upgrading_again_reads_them(db_url: str, at_0001: AsyncEngine) -> None:
    incident_id = await write_incident(at_0001)
    await upgrade(at_0001)
    async with Store(at_0001) as store:
        later = RESOLVED + timedelta(minutes=1)
        await store.append_event(incident_id, "bot", "rca.posted", {"filename": "rca.md"}, at=later)  # no text

    def downgrade(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await current_revision(engine) == "0001"
        await upgrade(engine)
        async with Store(engine) as store:
            again = await store.timeline(incident_id)
    finally:
        await engine.dispose()
    # Lossy by design: the typed kinds stay, the fields are rebuilt where the mapping knows the kind.
    assert [r.text for r in again] == [text for _, _, _, text, _ in EVENTS] + ["rca.posted"]
    assert (again[-1].kind, again[-1].data) == ("rca.posted", {"filename": ""})
    assert all(r.data for r in again)
