"""Memory of past incidents, on SQLite and PostgreSQL: the tenant's earlier incidents of the last
90 days (not older ones, not other tenants', not the open one), each with the cause found, its
mitigations and whether their checks passed; the same cause found again says what fixed it then;
a store that cannot be read is said, not raised; Slack and the terminal show it all."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from bot.slack.render_history import history_blocks
from bot.text_report import print_history
from commands.history import history, remember
from commands.models import Report, Verdict
from commands.timeline import append
from commands.timeline.events import ChangeRef, CheckRan, MitigationApplied, VerdictReached
from integrations.store import Store, StoreUnavailable
from tests.store.fixtures import FakeClock


async def incident(store: Store, tenant: str, *events: object, resolve: bool = True) -> int:
    opened, _ = await store.open_or_get_incident(tenant, title=f"{tenant} breach", actor="U_ALICE", source="command")
    for event in events:
        await append(store, opened.id, "U_ALICE", event)  # type: ignore[arg-type]
    if resolve:
        await store.set_state(opened.id, "resolved", actor="U_ALICE", reason="fixed")
    return opened.id


def quota_fix(plan_id: str, before: str, after: str) -> MitigationApplied:
    change = ChangeRef(object="configmap/tenant-t1", namespace="ns", key="token_rate", before=before, after=after)
    return MitigationApplied(plan_id=plan_id, action="quota", tenant="t1", changes=(change,), confirmed_by="U_ALICE")


def verdict(step: str, scenario: str, cause: str | None = None) -> VerdictReached:
    return VerdictReached(step=step, scenario=scenario, cause=cause, headline=cause or scenario)  # type: ignore[arg-type]


async def history_world(store: Store, clock: FakeClock) -> dict[str, int]:
    ids = {"too old": await incident(store, "t1", verdict("diagnose", "quota", "legitimate_burst"))}
    clock.advance(days=70)
    ids["burst"] = await incident(
        store,
        "t1",
        verdict("triage", "escalations"),
        verdict("diagnose", "quota", "legitimate_burst"),
        quota_fix("p1", "140", "300"),
        CheckRan(n=1, of=2, ok=False, plan_id="p1"),
        CheckRan(n=2, of=2, ok=True, plan_id="p1"),
    )
    clock.advance(days=20)
    key_window = MitigationApplied(plan_id="p2", action="key-window", tenant="t1", changes=(), confirmed_by="U_BOB")
    undo = MitigationApplied(
        plan_id="p3", action="key-window", tenant="t1", changes=(), confirmed_by="U_BOB", undoes="p2"
    )
    ids["skew"] = await incident(
        store,
        "t1",
        verdict("diagnose", "signatures", "clock_skew"),
        key_window,
        CheckRan(n=1, of=1, ok=False, plan_id="p2"),
        undo,
    )
    ids["other tenant"] = await incident(store, "t2", verdict("diagnose", "quota", "legitimate_burst"))
    clock.advance(days=15)
    ids["open"] = await incident(store, "t1", resolve=False)
    return ids


async def test_earlier_incidents_with_their_causes_mitigations_and_checks(store: Store, clock: FakeClock) -> None:
    ids = await history_world(store, clock)
    found = await history(store, "t1", scenario="quota", cause="legitimate_burst", exclude=ids["open"])
    assert [p.id for p in found.incidents] == [ids["skew"], ids["burst"]]
    skew, burst = found.incidents
    assert (skew.scenario, skew.cause) == ("signatures", "clock_skew")
    assert [(m.action, m.checks_passed, m.undone) for m in skew.mitigations] == [("key-window", False, True)]
    assert (burst.scenario, burst.cause) == ("quota", "legitimate_burst")  # the diagnosis beats the triage
    (fix,) = burst.mitigations
    assert fix.checks_passed is True and [(c.before, c.after) for c in fix.changes] == [("140", "300")]
    assert found.recurrence is not None and found.recurrence.incident.id == ids["burst"]
    assert found.recurrence.fix == fix
    # Another cause recurring finds nothing that fixed it; an unseen cause is no recurrence.
    again = await history(store, "t1", scenario="signatures", cause="clock_skew", exclude=ids["open"])
    assert again.recurrence is not None and again.recurrence.fix is None
    assert (await history(store, "t1", scenario="policy")).recurrence is None


async def test_slack_and_the_terminal_say_last_time_quota_140_to_300_fixed_this(store: Store, clock: FakeClock) -> None:
    ids = await history_world(store, clock)
    report = Report(
        "diagnose", "t1", [], clock(), clock(), Verdict("quota", "legitimate burst", cause="legitimate_burst")
    )
    await remember(store, report)
    assert report.history is not None and ids["open"] not in [p.id for p in report.history.incidents]
    slack = " ".join(str(b.to_dict()) for b in history_blocks(report.history))
    assert "last time quota token_rate 140 → 300 fixed this" in slack
    assert f"#{ids['skew']}" in slack and "checks failed, undone" in slack
    out = io.StringIO()
    print_history(report.history, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert f"last time quota token_rate 140 → 300 fixed this (incident #{ids['burst']}" in text
    assert "C quota · legitimate burst" in text and "A signatures · clock skew" in text


class DownStore:
    async def tenant_incidents(self, tenant: str, within: timedelta, *, limit: int = 20) -> list:
        raise StoreUnavailable("connection refused")


async def test_a_store_that_cannot_be_read_is_said_not_raised() -> None:
    found = await history(DownStore(), "t1")  # type: ignore[arg-type]
    assert found.incidents == () and found.error and "connection refused" in found.error
    slack = str(history_blocks(found)[-1].to_dict())
    assert ":x:" in slack and "could not be read" in slack
