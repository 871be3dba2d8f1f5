"""A scripted incident for the communication tests: known times, actors and values, written
into a real Store (SQLite) by a clock the script moves. Its free text carries internal details
(pod name, IP, internal host, another tenant) that the tenant summary must leave out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from integrations.store import AlertIn, Store
from tests.store.fixtures import FakeClock

TENANT, OTHER = "t-blue", "t-green"
POD, IP, HOST = "backend-5f7d9c8b6-q2x4z", "10.42.0.17", "backend.lba.svc.cluster.local"
BREACH = datetime(2031, 5, 4, 9, 58, tzinfo=UTC)  # the alert's startsAt
RESOLVED = BREACH + timedelta(hours=1, minutes=23, seconds=30)
PLAN = "5d2c9e1f0a7b"
OBJECT = f"configmap/tenant-{TENANT} (namespace lba)"  # as the mitigation records its objects
LABELS = {"alertname": "FLKTenantSLOBreach", "tenant_id": TENANT, "sli": "escalations", "severity": "P2"}


def at(h: int, m: int, s: int = 0) -> datetime:
    return BREACH.replace(hour=h, minute=m, second=s)


async def script_incident(
    store: Store, clock: FakeClock, *, resolve: bool = True, base: datetime = BREACH, channel: str = "C_INC"
) -> int:
    """The incident of TENANT, from its alert to its resolve at RESOLVED; returns its id. With
    ``base``, every time moves by ``base - BREACH`` (the Slack tests script it in the recent past)."""

    def at(h: int, m: int, s: int = 0) -> datetime:
        return base + (BREACH.replace(hour=h, minute=m, second=s) - BREACH)

    clock.now = at(10, 0, 30)
    incident, _ = await store.open_or_get_incident(TENANT, title=f"FLKTenantSLOBreach · {TENANT}", channel=channel)
    alert = AlertIn(
        "fp-esc",
        TENANT,
        "firing",
        base,
        labels=LABELS,
        annotations={"value": "0.0731", "slo": "0.02", "summary": f"{TENANT}: escalation ratio 7.31%"},
    )
    await store.record_alert(incident.id, alert)
    await store.add_event(
        incident.id,
        "alertmanager",
        "alert.firing",
        f"escalations breach for {TENANT}",
        {"value": "0.0731", "fingerprint": "fp-esc"},
    )
    clock.now = at(10, 0, 31)
    await store.add_event(incident.id, "bot", "slack.thread", "incident thread opened", {"ts": "1.000100"})
    clock.now = at(10, 1, 10)
    await store.add_event(
        incident.id,
        "bot",
        "triage.finished",
        "Likely scenario D · per-tenant policy misconfiguration",
        {
            "scenario": "policy",
            "evidence": [
                "escalation ratio 7.31% > SLO 2%",
                "policy v9 promoted at 09:41 UTC, breach since 09:58 UTC",
                f"1 other tenant(s) breaching too: {OTHER}",
            ],
            "findings": {
                "identify.logs": {"status": "warn", "summary": f"{POD}: 412 lines from {IP}"},
                "identify.others": {"status": "warn", "summary": f"{OTHER} breaching too"},
            },
        },
    )
    clock.now = at(10, 3)
    await store.add_event(incident.id, "U_ALICE", "command", f"/flk diagnose {TENANT} policy")
    clock.now = at(10, 4, 20)
    await store.add_event(
        incident.id,
        "U_ALICE",
        "diagnose.finished",
        f"policy v9 tightened tol_D from 1.5 to 1.1 for {TENANT}",
        {
            "scenario": "policy",
            "evidence": ["tol_D 1.5 → 1.1 in v9 (author mlopez)", f"{HOST}:8080 serves v9 since 09:41 UTC"],
            "findings": {"policy.diff": {"status": "breach", "summary": "tol_D 1.5 → 1.1"}},
        },
    )
    clock.now = at(10, 5)
    await store.add_event(
        incident.id,
        "U_ALICE",
        "notice.sent",
        "tenant notice (investigating) posted",
        {"notice": "investigating", "channel": "C_TBLUE"},
    )
    clock.now = at(10, 6)
    silenced = f"FLKTenantSLOBreach silenced for {TENANT} for 2 h (until 12:06 UTC): rollback under way"
    await store.add_event(
        incident.id,
        "U_ALICE",
        "silence.created",
        silenced,
        {"silence_id": "3f1c2a8e-0000-4000-8000-000000000001", "tenant": TENANT},
    )
    clock.now = at(10, 11)
    await store.add_event(
        incident.id,
        "U_ALICE",
        "mitigation.planned",
        f'rollback-policy: {OBJECT} · policy_version: "v9" → "v8"; then `kubectl rollout restart` of '
        "deployment/backend (namespace lba)",
        {"plan_id": PLAN, "dry_run": False},
    )
    clock.now = at(10, 12, 40)
    await store.add_event(
        incident.id,
        "U_BOB",
        "mitigation.applied",
        "rollback-policy applied, confirmed by <@U_BOB>",
        {
            "plan_id": PLAN,
            "confirmed_by": "U_BOB",
            "changes": [{"object": OBJECT, "key": "policy_version", "before": "v9", "after": "v8"}],
        },
    )
    clock.now = at(10, 17, 40)
    await store.add_event(
        incident.id,
        "bot",
        "check.failed",
        ":x: SLO check 1/2 after `rollback-policy`: escalation ratio 3.1% > SLO 2%",
        {"n": 1, "of": 2, "plan_id": PLAN, "data": {}},
    )
    clock.now = at(10, 22, 40)
    await store.add_event(
        incident.id,
        "bot",
        "check.passed",
        ":white_check_mark: SLO check 2/2 after `rollback-policy`: escalation ratio 0.8% ≤ SLO 2%",
        {"n": 2, "of": 2, "plan_id": PLAN, "data": {}},
    )
    clock.now = at(10, 23, 5)
    await store.record_alert(
        incident.id,
        AlertIn(
            "fp-esc",
            TENANT,
            "resolved",
            base,
            ends_at=at(10, 23),
            labels=LABELS,
            annotations={"value": "0.0080", "slo": "0.02"},
        ),
    )
    await store.add_event(
        incident.id,
        "alertmanager",
        "alert.resolved",
        f"escalations alert resolved for {TENANT}",
        {"value": "0.0080", "fingerprint": "fp-esc"},
    )
    clock.now = at(10, 25)
    await store.add_event(incident.id, "U_CAROL", "note", "tenant confirms traffic is back <!channel>", {"ts": "2.0"})
    clock.now = at(10, 40)
    await store.add_event(incident.id, "pagerduty", "pager.ack", "acknowledged by the on-call engineer")
    if resolve:
        clock.now = base + (RESOLVED - BREACH)
        await store.set_state(incident.id, "resolved", actor="U_ALICE")
    return incident.id


@contextlib.asynccontextmanager
async def sqlite_store(folder: Path) -> AsyncIterator[tuple[Store, FakeClock]]:
    """A fresh SQLite store in ``folder`` with a clock at BREACH."""
    clock = FakeClock(BREACH)
    async with await Store.connect(f"sqlite:///{folder / 'comms.sqlite'}", clock=clock) as store:
        yield store, clock
