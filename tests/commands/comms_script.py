"""A scripted incident for the communication tests: known times, actors and values, written
into a real Store (SQLite) by a clock the script moves. Its free text carries internal details
(pod name, IP, internal host, another tenant) that the tenant summary must leave out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from commands.timeline import append
from commands.timeline.events import (
    AlertNotified,
    ChangeRef,
    CheckRan,
    CommandRun,
    Event,
    FindingRef,
    MitigationApplied,
    MitigationPlanned,
    NotePinned,
    NoticeSent,
    SilenceChanged,
    SliValue,
    ThreadOpened,
    VerdictReached,
)
from integrations.store import AlertIn, Store
from tests.store.fixtures import FakeClock

TENANT, OTHER = "t-blue", "t-green"
POD, IP, HOST = "backend-5f7d9c8b6-q2x4z", "10.42.0.17", "backend.lba.svc.cluster.local"
BREACH = datetime(2031, 5, 4, 9, 58, tzinfo=UTC)  # the alert's startsAt
RESOLVED = BREACH + timedelta(hours=1, minutes=23, seconds=30)
PLAN = "5d2c9e1f0a7b"
CHANGE = ChangeRef(object=f"configmap/tenant-{TENANT}", namespace="lba", key="policy_version", before="v9", after="v8")
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

    async def record(actor: str, event: Event) -> None:
        await append(store, incident.id, actor, event)

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
    await record(
        "alertmanager",
        AlertNotified(
            kind="alert.firing", fingerprint="fp-esc", tenant=TENANT, sli="escalations", value=0.0731, slo=0.02
        ),
    )
    clock.now = at(10, 0, 31)
    await record("bot", ThreadOpened(ts="1.000100", channel=channel))
    clock.now = at(10, 1, 10)
    await record(
        "bot",
        VerdictReached(
            step="triage",
            scenario="policy",
            headline="Likely scenario D · per-tenant policy misconfiguration",
            evidence=(
                "escalation ratio 7.31% > SLO 2%",
                "policy v9 promoted at 09:41 UTC, breach since 09:58 UTC",
                f"1 other tenant(s) breaching too: {OTHER}",
            ),
            findings=(
                FindingRef(key="identify.logs", status="warn", summary=f"{POD}: 412 lines from {IP}"),
                FindingRef(key="identify.others", status="warn", summary=f"{OTHER} breaching too"),
            ),
            slis=(
                SliValue(sli="escalations", value=0.0731, slo=0.02),
                SliValue(sli="signature_errors", value=0.001, slo=0.01),
            ),
            tenant=TENANT,
        ),
    )
    clock.now = at(10, 3)
    await record("U_ALICE", CommandRun(verb="diagnose", text=f"diagnose {TENANT} policy"))
    clock.now = at(10, 4, 20)
    await record(
        "U_ALICE",
        VerdictReached(
            step="diagnose",
            scenario="policy",
            headline=f"policy v9 tightened tol_D from 1.5 to 1.1 for {TENANT}",
            cause="bad_thresholds",
            confidence="high",
            evidence=("tol_D 1.5 → 1.1 in v9 (author mlopez)", f"{HOST}:8080 serves v9 since 09:41 UTC"),
            findings=(FindingRef(key="policy.diff", status="breach", summary="tol_D 1.5 → 1.1"),),
            tenant=TENANT,
        ),
    )
    clock.now = at(10, 5)
    await record(
        "U_ALICE", NoticeSent(notice="investigating", tenant=TENANT, channel="C_TBLUE", text="We are investigating")
    )
    clock.now = at(10, 6)
    await record(
        "U_ALICE",
        SilenceChanged(
            kind="silence.created",
            silence_id="3f1c2a8e-0000-4000-8000-000000000001",
            tenant=TENANT,
            reason="rollback under way",
            ends_at=at(12, 6).isoformat(),
        ),
    )
    clock.now = at(10, 11)
    await record(
        "U_ALICE",
        MitigationPlanned(
            plan_id=PLAN, action="rollback-policy", tenant=TENANT, changes=(CHANGE,), restart="deployment/backend"
        ),
    )
    clock.now = at(10, 12, 40)
    await record(
        "U_BOB",
        MitigationApplied(
            plan_id=PLAN,
            action="rollback-policy",
            tenant=TENANT,
            changes=(CHANGE,),
            confirmed_by="U_BOB",
            restart="deployment/backend",
        ),
    )
    clock.now = at(10, 17, 40)
    await record(
        "bot",
        CheckRan(n=1, of=2, ok=False, plan_id=PLAN, summary="escalations 3.1% > SLO 2%", status="breach"),
    )
    clock.now = at(10, 22, 40)
    await record("bot", CheckRan(n=2, of=2, ok=True, plan_id=PLAN, summary="escalations 0.8%, signature errors 0.1%"))
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
    await record(
        "alertmanager",
        AlertNotified(
            kind="alert.resolved", fingerprint="fp-esc", tenant=TENANT, sli="escalations", value=0.008, slo=0.02
        ),
    )
    clock.now = at(10, 25)
    await record(
        "U_CAROL", NotePinned(text="tenant confirms traffic is back <!channel>", author="U_CAROL", message_ts="2.0")
    )
    clock.now = at(10, 40)
    await store.add_event(incident.id, "pagerduty", "pager.ack", "acknowledged by the on-call engineer")  # legacy
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
