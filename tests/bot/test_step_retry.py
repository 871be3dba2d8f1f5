"""A step the outbox runs again (a retry, or a second hand-out after a lost claim) edits the
checklist the first run posted instead of leaving a second one that never finishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bot.slack.steps import stream_report
from commands.models import Finding, Probe, Report, Status
from integrations.errors import BackendError
from tests.bot.harness import Harness

PROBES = [Probe("one", "First probe"), Probe("two", "Second probe")]


def _report(tenant: str) -> Report:
    findings = [Finding(p.key, p.title, Status.OK, f"{p.title} fine") for p in PROBES]
    now = datetime.now(UTC)
    return Report(step="triage", tenant=tenant, findings=findings, started_at=now, finished_at=now)


async def test_a_rerun_step_edits_its_first_checklist(harness: Harness) -> None:
    rt = harness.bot.rt
    assert rt is not None
    slack = harness.sandbox.slack
    channel = slack.channel_id(harness.channel)
    parent = slack.add_user_message(channel, "U_ALICE", "a thread for the retry test")
    tenant, key = f"retry-{uuid.uuid4().hex[:6]}", f"progress:test-{uuid.uuid4().hex}"

    async def fails(on_finding):  # type: ignore[no-untyped-def]
        await on_finding(Finding("one", "First probe", Status.OK, "First probe fine"))
        raise BackendError("Prometheus", "connection refused")

    async def succeeds(on_finding):  # type: ignore[no-untyped-def]
        report = _report(tenant)
        for finding in report.findings:
            await on_finding(finding)
        return report

    with pytest.raises(BackendError):
        await stream_report(rt, channel, parent.ts, "triage", tenant, PROBES, fails, resume_key=key)
    await stream_report(rt, channel, parent.ts, "triage", tenant, PROBES, succeeds, resume_key=key)

    checklists = [m for m in slack.thread(channel, parent.ts) if "probes done" in m.text]
    assert len(checklists) == 1, [m.text for m in checklists]
    assert checklists[0].text == f"triage of {tenant}: 2/2 probes done"


async def test_a_rerun_after_the_report_was_posted_edits_that_report(harness: Harness) -> None:
    """The worker died between the report and the chart: the re-run's report replaces the first
    one's text in place (its findings are newer), no second report is posted."""
    rt = harness.bot.rt
    assert rt is not None
    slack = harness.sandbox.slack
    channel = slack.channel_id(harness.channel)
    parent = slack.add_user_message(channel, "U_ALICE", "a thread for the report retry test")
    tenant, key = f"retry-{uuid.uuid4().hex[:6]}", f"progress:test-{uuid.uuid4().hex}"
    runs = iter(["First probe fine", "First probe fine again"])

    async def succeeds(on_finding):  # type: ignore[no-untyped-def]
        summary = next(runs)
        report = _report(tenant)
        report.findings[0] = Finding("one", "First probe", Status.OK, summary)
        for finding in report.findings:
            await on_finding(finding)
        return report

    await stream_report(rt, channel, parent.ts, "triage", tenant, PROBES, succeeds, resume_key=key)
    await stream_report(rt, channel, parent.ts, "triage", tenant, PROBES, succeeds, resume_key=key)

    reports = [m for m in slack.thread(channel, parent.ts) if m.text.startswith(f"triage {tenant}:")]
    assert len(reports) == 1, [m.text for m in slack.thread(channel, parent.ts)]
    assert "First probe fine again" in reports[0].all_text()
    assert reports[0].edits, "the re-run edited the report"
