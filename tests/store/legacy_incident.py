"""An incident as the bot stored it at schema revision 0001 (before the timeline was typed):
Slack prose in ``text``, loose ``details``, and the mitigation's plan kept as an idempotency
key. Written with plain SQL into a database migrated to 0001 only, for the migration tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.schema import UTCDateTime

TENANT = "t-blue"
BREACH = datetime(2031, 5, 4, 9, 58, tzinfo=UTC)
OPENED = BREACH + timedelta(minutes=2, seconds=30)
RESOLVED = BREACH + timedelta(hours=1, minutes=23, seconds=30)
PLAN, UNDO = "5d2c9e1f0a7b", "9e8d7c6b5a40"
OBJECT = f"configmap/tenant-{TENANT} (namespace lba)"
LABELS = {"alertname": "FLKTenantSLOBreach", "tenant_id": TENANT, "sli": "escalations", "severity": "P2"}

_TS = UTCDateTime()
# The tables as revision 0001 created them (the columns these rows fill).
INCIDENTS = sa.table(
    "incidents",
    *(sa.column(c) for c in ("id", "kind", "tenant", "severity", "title", "state", "channel", "thread_ts")),
    sa.column("tenants", sa.JSON),
    *(sa.column(c, _TS) for c in ("opened_at", "updated_at", "resolved_at", "first_alert_at", "last_alert_at")),
)
ALERTS = sa.table(
    "alerts",
    *(sa.column(c) for c in ("incident_id", "fingerprint", "tenant", "status")),
    *(sa.column(c, _TS) for c in ("starts_at", "ends_at", "first_seen_at", "last_seen_at")),
    sa.column("labels", sa.JSON),
    sa.column("annotations", sa.JSON),
)
TIMELINE = sa.table(
    "timeline",
    *(sa.column(c) for c in ("incident_id", "actor", "kind", "text")),
    sa.column("at", _TS),
    sa.column("details", sa.JSON),
)
KEYS = sa.table("idempotency", sa.column("key"), sa.column("created_at", _TS), sa.column("result", sa.JSON))


def at(h: int, m: int, s: int = 0) -> datetime:
    return BREACH.replace(hour=h, minute=m, second=s)


def plan(plan_id: str, before: str, after: str, undoes: str | None = None) -> dict[str, Any]:
    """A plan record as ``Mitigations._post_plan`` kept it (``Plan.to_dict()``)."""
    return {
        "id": plan_id,
        "tenant": TENANT,
        "action": "rollback-policy",
        "objects": [
            {
                "ref": {"kind": "ConfigMap", "namespace": "lba", "name": f"tenant-{TENANT}"},
                "resource_version": "41",
                "changes": [{"key": "policy_version", "before": before, "after": after}],
            }
        ],
        "restart": {"kind": "Deployment", "namespace": "lba", "name": "backend"},
        "needs_second_approver": False,
        "approval_reasons": [],
        "created_at": "2031-05-04T10:11:00Z",
        "expires_at": "2031-05-04T10:21:00Z",
        "notes": [],
        "undoes": undoes,
    }


def _change(before: str, after: str) -> list[dict[str, str]]:
    return [{"object": OBJECT, "key": "policy_version", "before": before, "after": after}]


# (at, actor, kind, text, details) as the bot of revision 0001 wrote them.
EVENTS: list[tuple[datetime, str, str, str, dict[str, Any]]] = [
    (OPENED, "alertmanager", "incident.opened", f"FLKTenantSLOBreach · {TENANT}", {"tenant": TENANT, "severity": "P2"}),
    (
        OPENED,
        "alertmanager",
        "alert.firing",
        f"escalations breach for {TENANT}",
        {"value": "0.0731", "fingerprint": "fp"},
    ),
    (at(10, 0, 31), "bot", "slack.thread", "incident thread opened", {"ts": "1.000100"}),
    (
        at(10, 1, 10),
        "bot",
        "triage.finished",
        "Likely scenario D · per-tenant policy misconfiguration",
        {
            "tenant": TENANT,
            "scenario": "policy",
            "evidence": ["escalation ratio 7.31% > SLO 2%", "policy v9 promoted at 09:41 UTC, breach since 09:58 UTC"],
            "findings": {"identify.others": {"status": "warn", "summary": "t-green breaching too"}},
            "wall_ms": 812,
        },
    ),
    (at(10, 3), "U_ALICE", "command", f"/flk diagnose {TENANT} policy", {}),
    (
        at(10, 4, 20),
        "U_ALICE",
        "diagnose.finished",
        f"policy v9 tightened tol_D from 1.5 to 1.1 for {TENANT}",
        {
            "tenant": TENANT,
            "scenario": "policy",
            "evidence": ["tol_D 1.5 → 1.1 in v9 (author mlopez)"],
            "findings": {"policy.diff": {"status": "breach", "summary": "tol_D 1.5 → 1.1"}},
        },
    ),
    (
        at(10, 5),
        "U_ALICE",
        "notice.sent",
        f"tenant notice (investigating) posted to {TENANT}'s channel",
        {"notice": "investigating", "tenant": TENANT, "channel": "C_TBLUE"},
    ),
    (
        at(10, 6),
        "U_ALICE",
        "silence.created",
        f"FLKTenantSLOBreach silenced for {TENANT} for 2 h (until 12:06 UTC): rollback under way",
        {"silence_id": "s-1", "tenant": TENANT, "ends_at": "2031-05-04T12:06:00+00:00", "reason": "rollback under way"},
    ),
    (
        at(10, 11),
        "U_ALICE",
        "mitigation.planned",
        f"rollback-policy: {OBJECT} · …",
        {"plan_id": PLAN, "dry_run": False},
    ),
    (
        at(10, 12, 40),
        "U_BOB",
        "mitigation.applied",
        "rollback-policy applied, confirmed by <@U_BOB>",
        {"plan_id": PLAN, "changes": _change("v9", "v8"), "confirmed_by": "U_BOB"},
    ),
    (
        at(10, 17, 40),
        "bot",
        "check.failed",
        ":x: SLO check 1/2 after `rollback-policy`: `t-blue` still breaches: escalations 3.1% > SLO 2%",
        {
            "n": 1,
            "of": 2,
            "plan_id": PLAN,
            "data": {
                "escalation_ratio": 0.031,
                "signature_error_ratio": 0.001,
                "slo": {"escalation_ratio": 0.02, "signature_error_ratio": 0.01},
            },
        },
    ),
    (
        at(10, 22, 40),
        "bot",
        "check.passed",
        ":white_check_mark: SLO check 2/2 after `rollback-policy`: `t-blue` is within its SLO",
        {
            "n": 2,
            "of": 2,
            "plan_id": PLAN,
            "data": {
                "escalation_ratio": 0.008,
                "signature_error_ratio": 0.001,
                "slo": {"escalation_ratio": 0.02, "signature_error_ratio": 0.01},
            },
        },
    ),
    (at(10, 24), "U_BOB", "mitigation.planned", "rollback-policy: undo", {"plan_id": UNDO, "dry_run": False}),
    (
        at(10, 24, 30),
        "U_BOB",
        "mitigation.undone",
        "rollback-policy applied, confirmed by <@U_BOB>",
        {"plan_id": UNDO, "changes": _change("v8", "v9"), "confirmed_by": "U_BOB"},
    ),
    (at(10, 25), "U_CAROL", "note", "tenant confirms traffic is back &lt;3 <!channel>", {"ts": "2.0"}),
    (at(10, 40), "pagerduty", "pager.ack", "acknowledged by <@U_DAVE>", {}),
    (at(10, 41), "U_CAROL", "comms.refused", "<@U_CAROL> may not send tenant notices", {}),
    (RESOLVED, "U_ALICE", "state.changed", "resolved by <@U_ALICE>", {"from": "open", "to": "resolved"}),
    (RESOLVED, "U_ALICE", "resolve.posted", "RESOLVED update posted", {"fields": {"root_cause": "policy v9"}}),
]


async def write_incident(engine: AsyncEngine) -> int:
    """The incident of TENANT as revision 0001 stored it, resolved; returns its id."""
    async with engine.begin() as conn:
        incident_id = (
            await conn.execute(
                INCIDENTS.insert()
                .values(
                    kind="tenant",
                    tenant=TENANT,
                    tenants=[TENANT],
                    severity="P2",
                    title=f"FLKTenantSLOBreach · {TENANT}",
                    state="resolved",
                    channel="C_INC",
                    thread_ts="1.000100",
                    opened_at=OPENED,
                    updated_at=RESOLVED,
                    resolved_at=RESOLVED,
                    first_alert_at=BREACH,
                    last_alert_at=at(10, 23),
                )
                .returning(sa.column("id"))
            )
        ).scalar_one()
        await conn.execute(
            ALERTS.insert().values(
                incident_id=incident_id,
                fingerprint="fp",
                tenant=TENANT,
                status="resolved",
                starts_at=BREACH,
                ends_at=at(10, 23),
                first_seen_at=OPENED,
                last_seen_at=at(10, 23),
                labels=LABELS,
                annotations={"value": "0.0731", "slo": "0.02"},
            )
        )
        for plan_id, record in ((PLAN, plan(PLAN, "v9", "v8")), (UNDO, plan(UNDO, "v8", "v9", undoes=PLAN))):
            await conn.execute(
                KEYS.insert().values(
                    key=f"plan:{plan_id}", created_at=OPENED, result={"plan": record, "incident": incident_id}
                )
            )
        await conn.execute(
            TIMELINE.insert(),
            [
                {"incident_id": incident_id, "at": when, "actor": actor, "kind": kind, "text": text, "details": details}
                for when, actor, kind, text, details in EVENTS
            ],
        )
    return incident_id
