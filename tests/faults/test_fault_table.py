"""The fault table (issue 14): one row per fault that can hit a confirmed mitigation, each driven
through signed Slack requests into the real bot, and each asserting what the thread, the cluster
and the audit log hold afterwards. Slack's faults come from the emulator (``fail_next``), the
API server's from the Kubernetes fake (``fail_next``, RBAC, ``stall``), a full disk from an audit
log that is a symlink to /dev/full. The replica and store rows are in test_fault_table_replicas.

Runs on a generated world of its own (tests/faults/conftest.py), so that nothing here depends on the default
world's tenants. Each row restores the tenant's configmap and clears its fault afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from sandbox.up import Sandbox
from tests.bot.harness import Harness, runbook_files, running
from tests.faults.support import PLAN_ID, applied_count, audit_records, of_plan, patched, settle, until

CONFIG = """\
mitigations:
  authorised_groups: [S_ONCALL]
  quota_ceiling: 100000000
  burst_ceiling: 100000000
  verify_delays_s: [600]
timeouts: {probe_s: 1}
"""
FINAL = ("applied", "failed", "conflict", "partial", "planned")


@dataclass
class Table:
    h: Harness
    tenant: str
    plan_id: str = ""
    patches_before: int = 0

    @property
    def name(self) -> str:
        return f"tenant-{self.tenant}"

    @property
    def audit_path(self) -> Path:
        return Path(self.h.bot.settings.audit_log)

    def value(self) -> str | None:
        return (self.h.sandbox.tenant_config(self.tenant) or {}).get("token_rate")


@pytest.fixture(scope="module")
async def table(faults_sandbox: Sandbox) -> AsyncIterator[Table]:
    sb = faults_sandbox
    tenant = next(t for t, c in sb.live.world.tenants.items() if float(c.config.get("token_rate", "x") or 0) > 0)
    async with running(sb, **runbook_files(CONFIG, "flk-faults-")) as h:
        yield Table(h, tenant)


@dataclass(frozen=True)
class Row:
    id: str
    # Sets the fault up and clicks Confirm (on the plan's message ts); some act mid-apply.
    drive: Callable[[Table, str], Awaitable[None]]
    expect: Literal["applied", "failed", "conflict"]
    # Said in the plan's message (failed, conflict), or in the thread (applied).
    says: str = ""


async def confirm(t: Table, ts: str) -> None:
    assert (await t.h.driver.click("flk_confirm", user="U_ALICE", channel="C_SRE", ts=ts)).status == 200


def slack_fault(method: str, count: int, error: str) -> Callable[[Table, str], Awaitable[None]]:
    async def drive(t: Table, ts: str) -> None:
        t.h.sandbox.slack.fail_next(method, count, error)
        await confirm(t, ts)

    return drive


def kube_fault(reason: str) -> Callable[[Table, str], Awaitable[None]]:
    async def drive(t: Table, ts: str) -> None:
        t.h.sandbox.kube.fail_next("PATCH", "configmaps", reason)
        await confirm(t, ts)

    return drive


async def concurrent_change(t: Table, ts: str) -> None:
    # Someone edits another key of the configmap after the plan: its resourceVersion moves on.
    t.h.sandbox.kube_store.patch(
        "configmaps", t.h.sandbox.live.world.namespace, t.name, {"data": {"note": "edited by hand"}}, "merge"
    )
    await confirm(t, ts)


async def forbidden(t: Table, ts: str) -> None:
    t.h.sandbox.kube.rbac.deny("patch", "configmaps")
    await confirm(t, ts)


async def waiting_patch(t: Table) -> None:
    await until(lambda: any(w.startswith("PATCH") for w in t.h.sandbox.kube.waiting), 10, "a PATCH held")


async def stalled_past_the_timeout(t: Table, ts: str) -> None:
    # The API server holds the patch past the client's timeout (1 s here) and the read-back too.
    t.h.sandbox.kube.stall("configmaps")
    await confirm(t, ts)
    await waiting_patch(t)


@dataclass
class DiskFull:
    """The audit log replaced by a symlink to /dev/full (every write: ENOSPC), and put back."""

    path: Path

    def __enter__(self) -> DiskFull:
        self.path.rename(self.path.with_suffix(".saved"))
        os.symlink("/dev/full", self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        saved = self.path.with_suffix(".saved")
        if saved.exists():
            self.path.unlink()
            shutil.move(saved, self.path)


async def disk_full_at_confirm(t: Table, ts: str) -> None:
    with DiskFull(t.audit_path):
        await confirm(t, ts)
        await t.h.sandbox.slack.wait_for(
            lambda: any("audit log cannot be written" in e.all_text() for e in t.h.sandbox.slack.ephemerals()), 10
        )
        assert t.h.bot.rt is not None
        record = await t.h.bot.rt.store.plans.get(t.plan_id)
        # Nothing applied, nothing audited, and the plan still open: the confirmation did not count.
        assert record.state == "planned" and patched(t.h.sandbox.kube, t.name) == t.patches_before
        assert not of_plan(audit_records([t.audit_path.with_suffix(".saved")]), t.plan_id, "mitigation.confirmed")
    # The disk has room again: the same plan is confirmed and applied (once).
    await confirm(t, ts)


async def disk_full_after_the_patch(t: Table, ts: str) -> None:
    # The intent is on the log; the disk fills while the patch is in flight, so the `applied`
    # record cannot follow it at once. It must follow once there is room: never unaudited.
    kube = t.h.sandbox.kube
    kube.stall("configmaps")
    await confirm(t, ts)
    await waiting_patch(t)
    with DiskFull(t.audit_path):
        before = patched(kube, t.name)
        kube.release()
        await until(lambda: patched(kube, t.name) > before, 10, "the patch carried out")
        await asyncio.sleep(1.5)  # the apply job fails on the audit and is retried later


ROWS = [
    Row("slack-429", slack_fault("chat.postMessage", 1, "ratelimited"), "applied"),
    Row("slack-500", slack_fault("chat.postMessage", 4, "internal_error"), "applied"),
    Row("slack-message_not_found", slack_fault("chat.update", 1, "message_not_found"), "applied"),
    Row("slack-channel_not_found", slack_fault("chat.postMessage", 1, "channel_not_found"), "applied"),
    Row("kube-409", concurrent_change, "conflict", "changed since the plan"),
    Row("kube-403", forbidden, "failed", "forbidden"),
    Row("kube-500", kube_fault("InternalError"), "failed", "nothing changed"),
    Row("kube-stall", stalled_past_the_timeout, "failed", "may or may not have changed"),
    Row("audit-full-at-confirm", disk_full_at_confirm, "applied"),
    Row("audit-full-after-patch", disk_full_after_the_patch, "applied", "stopped part-way"),
]


async def plan(t: Table, rate: str) -> tuple[str, str]:
    """`/flk mitigate <tenant> quota <rate>`: the plan's id and its message's ts."""
    h = t.h
    # Only messages posted after the command: an older plan whose edit was lost still shows buttons.
    after = len(h.thread(t.tenant)) if await h.bot.rt.store.find_open(t.tenant) else 0  # type: ignore[union-attr]
    assert (await h.driver.slash(f"mitigate {t.tenant} quota {rate}", user="U_ALICE", channel="C_SRE")).status == 200
    await h.thread_ts(t.tenant)

    def shown() -> tuple[str, str] | None:
        for m in reversed(h.thread(t.tenant)[after:]):
            found = PLAN_ID.search(m.all_text())
            if found and rate in m.all_text() and "flk_confirm" in str(m.blocks):
                return found.group(1), m.ts
        return None

    return await h.sandbox.slack.wait_for(shown, 15)


def clear(t: Table, original: dict[str, str]) -> None:
    sb = t.h.sandbox
    sb.slack.workspace.failing.clear()
    sb.kube.failing.clear()
    sb.kube.release()
    sb.kube.rbac.allow("patch", "configmaps")
    DiskFull(t.audit_path).restore()
    obj = sb.kube_store.get("configmaps", sb.live.world.namespace, t.name)
    assert obj is not None
    gone = {k: None for k in obj.get("data", {}) if k not in original}
    sb.kube_store.patch("configmaps", sb.live.world.namespace, t.name, {"data": {**original, **gone}}, "merge")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
async def test_fault_row(table: Table, row: Row) -> None:
    t, h = table, table.h
    original = dict(h.sandbox.tenant_config(t.tenant) or {})
    before_value = t.value()
    rate = str(int(float(before_value or 0)) + 10 + ROWS.index(row))
    plan_id, ts = await plan(t, rate)
    t.plan_id = plan_id
    patches_before = t.patches_before = patched(h.sandbox.kube, t.name)
    try:
        await row.drive(t, ts)

        async def settled() -> bool:
            record = await h.bot.rt.store.plans.get(plan_id)  # type: ignore[union-attr]
            return record.state in FINAL and record.state != "planned"

        deadline = asyncio.get_running_loop().time() + 20
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, f"plan {plan_id} never settled"
            await asyncio.sleep(0.05)
        record = await h.bot.rt.store.plans.get(plan_id)  # type: ignore[union-attr]
        assert record.state == row.expect, (record.state, record.reason)
        if row.expect == "applied":
            await h.sandbox.slack.wait_for(lambda: applied_count(h.thread(t.tenant), plan_id, "quota") >= 1, 15)
        else:
            await h.sandbox.slack.wait_for(lambda: ":x:" in h.sandbox.slack.message("C_SRE", ts).all_text(), 15)  # type: ignore[union-attr]
        await settle()
        records = audit_records([t.audit_path])
        applied = of_plan(records, plan_id, "mitigation.applied")
        confirmed = of_plan(records, plan_id, "mitigation.confirmed")
        patches = patched(h.sandbox.kube, t.name) - patches_before
        if row.expect == "applied":
            # Cluster: changed once. Thread: one outcome. Audit: intent, then before -> after with the confirmer.
            assert t.value() == rate and patches == 1
            assert applied_count(h.thread(t.tenant), plan_id, "quota") == 1, [
                (m.ts, m.all_text()[:200], str(m.blocks)[-200:])
                for m in h.thread(t.tenant)
                if "Applied" in m.all_text()
            ]
            assert len(confirmed) == 1 and len(applied) == 1, (confirmed, applied)
            assert records.index(confirmed[0]) < records.index(applied[0])
            [change] = applied[0]["details"]["changes"]
            assert (change["before"], change["after"]) == (before_value, rate)
            assert applied[0]["details"]["confirmed_by"] == "U_ALICE"
            assert row.says in "\n".join(m.all_text() for m in h.thread(t.tenant))
        else:
            # Cluster: unchanged. Thread: the plan's message says why. Audit: intent and stop, no apply.
            assert t.value() == before_value and patches == 0
            assert applied_count(h.thread(t.tenant), plan_id, "quota") == 0
            assert row.says in h.sandbox.slack.message("C_SRE", ts).all_text()  # type: ignore[union-attr]
            stopped = of_plan(records, plan_id, "mitigation.stopped")
            assert len(confirmed) == 1 and not applied and len(stopped) == 1, records[-3:]
            assert stopped[0]["details"]["outcome"] == row.expect
    finally:
        clear(t, original)
