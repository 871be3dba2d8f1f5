"""Runbook steps run into Slack: queued on the incident, streamed into its thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.service.logs import bind
from bot.service.outbox import until_stored
from bot.service.runtime import Runtime
from bot.service.telemetry import BACKEND_ERRORS, note_outcome, observe_report
from bot.slack.incidents import IncidentThreads
from bot.slack.mrkdwn import is_user
from bot.slack.progress import NativeProgress, Progress
from bot.slack.render import breaching_blocks, report_blocks, report_fallback
from bot.text_report import report_text
from commands import diagnose
from commands.charts import trend_chart
from commands.export import run_export
from commands.history import remember
from commands.isolation import run_isolation_triage
from commands.models import Report
from commands.promql import pct
from commands.registry import UsageError
from commands.timeline import append
from commands.timeline.events import CommandRun, ExportPosted
from commands.triage import breaching_tenants, probes, run_triage
from integrations.errors import BackendError
from integrations.store import OutboxItem

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]


async def request_step(
    rt: Runtime, threads: IncidentThreads, op: str, command: str, args: dict[str, Any], user: str, respond: Respond
) -> None:
    """A step asked for by a person: find or open the tenant's incident, queue the step on it."""
    tenant = args["tenant"]
    refusal = await rt.ctx.tenants.refuse(tenant)
    if refusal:
        note_outcome("usage")  # a malformed or unknown tenant id: the person's input
        await respond(text=f":information_source: {refusal}. Try `/flk triage` to list breaching tenants.")
        return
    incident, _ = await threads.open_for_tenant(tenant, user, f"{tenant}: {op} requested by {user}")
    bind(incident_id=incident.id)
    await append(threads.store, incident.id, user, CommandRun(verb=op, text=command))
    await threads.queue(incident, op, {**args, "actor": user})


async def _upload_chart(rt: Runtime, channel: str, thread_ts: str, report: Report) -> None:
    """The trend chart of a report, when its findings carry series (matplotlib runs off the loop)."""
    try:
        png = await asyncio.to_thread(trend_chart, report.findings, rt.config, title=f"{report.tenant} · SLIs")
    except Exception:
        log.exception("chart for %s failed", report.tenant)
        return
    if png:
        await rt.io.upload(channel, thread_ts, f"{report.step}-{report.tenant}-trend.png", png, "SLI trends")


async def _run_step(
    rt: Runtime,
    threads: IncidentThreads,
    item: OutboxItem,
    step: str,
    step_probes: list,
    run: Callable[[Callable[..., Awaitable[None]]], Awaitable[Report]],
) -> None:
    """Stream a step into the incident's thread, record it on the timeline, attach its chart."""
    assert item.incident_id is not None
    incident = await threads.store.get(item.incident_id)
    channel, thread_ts = await threads.thread(incident.id)
    tenant = item.payload["tenant"]
    try:
        actor = item.payload.get("actor", "bot")
        report = await stream_report(
            rt, channel, thread_ts, step, tenant, step_probes, run, actor, resume_key=f"progress:{item.id}"
        )
    except (SlackApiError, BackendError):
        raise  # the outbox retries it
    except Exception:
        log.exception("%s of %s failed", step, tenant)
        text = f":x: {step.capitalize()} of `{tenant}` failed: internal error (see the bot's log)"
        await rt.io.post(channel, text, thread_ts=thread_ts)
        return
    observe_report(report)
    # The summary is in Slack: a store outage now must not fail the item (its retry posts again).
    await until_stored(partial(threads.record_report, incident, report, actor), f"{step} of {tenant}")
    await _upload_chart(rt, channel, thread_ts, report)


async def op_triage(rt: Runtime, threads: IncidentThreads, item: OutboxItem) -> None:
    tenant = item.payload["tenant"]
    await _run_step(
        rt, threads, item, "triage", probes(), lambda cb: _remembered(threads, run_triage(rt.ctx, tenant, cb))
    )


async def op_diagnose(rt: Runtime, threads: IncidentThreads, item: OutboxItem) -> None:
    assert item.incident_id is not None
    tenant = item.payload["tenant"]
    # Default: the scenario the triage found likely, else all four.
    scenario = item.payload.get("scenario") or (await threads.store.get(item.incident_id)).scenario or "all"
    await _run_step(
        rt,
        threads,
        item,
        "diagnose",
        diagnose.probes(scenario),
        lambda cb: _remembered(threads, diagnose.run_diagnose(rt.ctx, tenant, scenario, cb)),
    )


async def _remembered(threads: IncidentThreads, step: Awaitable[Report]) -> Report:
    """The step's report with the tenant's earlier incidents (commands/history.py)."""
    return await remember(threads.store, await step)


async def op_export(rt: Runtime, threads: IncidentThreads, item: OutboxItem) -> None:
    assert item.incident_id is not None
    channel, thread_ts = await threads.thread(item.incident_id)
    tenant = item.payload["tenant"]
    try:
        export = await run_export(rt.ctx, tenant, item.payload.get("n"))
    except (BackendError, UsageError) as exc:
        if isinstance(exc, BackendError):
            BACKEND_ERRORS.labels(system=exc.system).inc()
        await rt.io.post(channel, f":x: Export for `{tenant}` failed: {exc}", thread_ts=thread_ts)
        return
    await rt.io.upload(channel, thread_ts, export.filename, export.content, f"{tenant} escalations", export.summary)
    posted = ExportPosted(filename=export.filename, rows=export.rows)
    await append(threads.store, item.incident_id, item.payload.get("actor", "bot"), posted)


async def op_isolation_triage(rt: Runtime, threads: IncidentThreads, item: OutboxItem) -> None:
    assert item.incident_id is not None
    incident = await threads.store.get(item.incident_id)
    channel, thread_ts = await threads.thread(incident.id)
    report = await run_isolation_triage(rt.ctx, list(incident.tenants))
    observe_report(report)
    await post_report(rt, channel, thread_ts, report)
    await until_stored(partial(threads.record_report, incident, report, "bot"), "isolation triage")


async def stream_report(
    rt: Runtime,
    channel: str,
    thread_ts: str,
    step: str,
    tenant: str,
    step_probes: list,
    run: Callable[[Callable[..., Awaitable[None]]], Awaitable[Report]],
    actor: str = "bot",
    resume_key: str | None = None,
) -> Report:
    """Run a step with its progress checklist in the thread, then post its report. With
    ``resume_key`` (an outbox item's), a retried run edits the checklist the first run posted."""
    interval = rt.settings.progress_interval_s
    progress: Progress
    # Slack streams to a person: a step the bot started itself (an alert) is shown as a checklist.
    if rt.settings.slack_streaming == "native" and is_user(actor):
        team = (await rt.io.client.auth_test()).get("team_id", "")
        progress = NativeProgress(rt.io, channel, thread_ts, step, tenant, step_probes, interval, (actor, team))
    else:
        progress = Progress(rt.io, channel, thread_ts, step, tenant, step_probes, interval)
    prior = await rt.store.keys.result(resume_key) if resume_key else None
    await progress.start(prior.get("ts") if prior and not isinstance(progress, NativeProgress) else None)
    if resume_key and prior is None and progress.ts is not None:
        # Kept through a store outage: a retry without it would post a second checklist.
        await until_stored(partial(rt.store.keys.put, resume_key, {"ts": progress.ts}), f"{step} checklist of {tenant}")
    try:
        report = await run(progress.on_finding)
    finally:
        await progress.finish()
    await post_report(rt, channel, thread_ts, report)
    return report


async def post_report(rt: Runtime, channel: str, thread_ts: str, report: Report) -> None:
    blocks, cut = report_blocks(report)
    await rt.io.post(channel, report_fallback(report), blocks, thread_ts=thread_ts)
    if cut:
        await rt.io.upload(
            channel,
            thread_ts,
            f"{report.step}-{report.tenant}.txt",
            report_text(report),
            f"Full {report.step} report for {report.tenant}",
        )


async def list_breaching(rt: Runtime, respond: Respond) -> None:
    try:
        rows = await breaching_tenants(rt.ctx)
    except BackendError as exc:
        note_outcome("error")
        await respond(text=f":x: Cannot list breaching tenants: {exc.system}: {exc.reason}")
        return
    described = [(b.tenant, f"{b.sli} {pct(b.value)} (SLO {pct(b.slo)}, {b.severity:.1f}×)") for b in rows]
    await respond(text=f"{len(rows)} tenant(s) breaching", blocks=breaching_blocks(described))
