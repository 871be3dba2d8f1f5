"""Runbook steps run into Slack: queued on the incident, streamed into its thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.service.jobs import until_stored
from bot.service.logs import bind
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
from commands.flows.actors import Actor
from commands.flows.steps import triage_lead
from commands.history import remember
from commands.isolation import run_isolation_triage
from commands.models import Report
from commands.promql import pct
from commands.registry import UsageError
from commands.timeline import append
from commands.timeline.events import CommandRun, ExportPosted
from commands.triage import breaching_tenants, probes, run_triage
from integrations.errors import BackendError
from integrations.store import JobItem

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]


# Steps that find out whether there is an incident at all: with none open for the tenant they
# run in the channel and open one only when they find a breach (a healthy tenant's triage is
# an answer, not a P2).
IN_CHANNEL = {"triage", "diagnose"}


async def request_step(
    rt: Runtime, threads: IncidentThreads, op: str, command: str, args: dict[str, Any], user: str, respond: Respond
) -> None:
    """A step asked for by a person: queued on the tenant's incident (opened for it if need be),
    or in the channel (``IN_CHANNEL``) while the tenant has none."""
    tenant = args["tenant"]
    refusal = await rt.ctx.tenants.refuse(tenant)
    if refusal:
        note_outcome("usage")  # a malformed or unknown tenant id: the person's input
        await respond(text=f":information_source: {refusal}. Try `/flk triage` to list breaching tenants.")
        return
    if op in IN_CHANNEL and await threads.store.find_open(tenant) is None:
        await threads.store.jobs.enqueue(op, {**args, "actor": user, "command": command})
        rt.kick_jobs()
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
    item: JobItem,
    step: str,
    step_probes: list,
    run: Callable[[Callable[..., Awaitable[None]]], Awaitable[Report]],
) -> None:
    """Stream a step into the incident's thread (or, with no incident, into the channel: its
    checklist becomes the parent of the incident a breach opens), record it on the timeline,
    attach its chart."""
    incident = await threads.store.get(item.incident_id) if item.incident_id is not None else None
    channel, thread_ts = await threads.thread(incident.id) if incident else (threads.channel, None)
    tenant = item.payload["tenant"]
    actor = item.payload.get("actor", "bot")
    try:
        report, shown = await stream_report(
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
    if incident is not None:
        await until_stored(partial(threads.record_report, incident, report, actor), f"{step} of {tenant}")
    else:
        record = partial(_record_in_channel, threads, report, actor, item.payload.get("command", step), shown)
        await until_stored(record, f"{step} of {tenant}")
    await _upload_chart(rt, channel, shown[1], report)


async def _record_in_channel(
    threads: IncidentThreads, report: Report, actor: str, command: str, shown: tuple[str, str]
) -> None:
    """A step run with no incident: a breach opens one around the message it was shown in (or
    joins one opened meanwhile); a healthy answer records nothing."""
    incident = await threads.steps.record(Actor(actor), report, thread=shown)
    if incident is not None:
        bind(incident_id=incident.id)
        await append(threads.store, incident.id, actor, CommandRun(verb=report.step, text=command))


async def op_triage(rt: Runtime, threads: IncidentThreads, item: JobItem) -> None:
    tenant = item.payload["tenant"]
    await _run_step(
        rt, threads, item, "triage", probes(), lambda cb: _remembered(threads, run_triage(rt.ctx, tenant, cb))
    )


async def op_diagnose(rt: Runtime, threads: IncidentThreads, item: JobItem) -> None:
    tenant = item.payload["tenant"]
    # Without a scenario: the ones the incident's latest triage left plausible (all when none, and
    # all with no incident: a diagnosis in the channel has no triage to lean on).
    scenario = item.payload.get("scenario")
    lead = None if scenario or item.incident_id is None else await triage_lead(threads.store, item.incident_id)
    shown = scenario or (lead.plausible(datetime.now(UTC), rt.ctx.config.diagnosis.triage_max_age_s) if lead else "all")
    await _run_step(
        rt,
        threads,
        item,
        "diagnose",
        diagnose.probes(shown),
        lambda cb: _remembered(threads, diagnose.run_diagnose(rt.ctx, tenant, scenario, cb, lead=lead)),
    )


async def _remembered(threads: IncidentThreads, step: Awaitable[Report]) -> Report:
    """The step's report with the tenant's earlier incidents (commands/history.py)."""
    return await remember(threads.store, await step)


async def op_export(rt: Runtime, threads: IncidentThreads, item: JobItem) -> None:
    assert item.incident_id is not None
    channel, thread_ts = await threads.thread(item.incident_id)
    tenant = item.payload["tenant"]
    cap = rt.config.export.max_concurrent
    if rt.exports >= cap:
        # Each export may read up to export.max_rows records: more at once could exhaust the replica.
        text = f":hourglass: Busy: {cap} export(s) are running. Nothing was exported; try again in a minute."
        await rt.io.post(channel, text, thread_ts=thread_ts)
        return
    rt.exports += 1
    try:
        await _export(rt, channel, thread_ts, tenant, item)
    finally:
        rt.exports -= 1


async def _export(rt: Runtime, channel: str, thread_ts: str, tenant: str, item: JobItem) -> None:
    assert item.incident_id is not None
    try:
        export = await run_export(rt.ctx, tenant, item.payload.get("n"))
    except (BackendError, UsageError) as exc:
        if isinstance(exc, BackendError):
            BACKEND_ERRORS.labels(system=exc.system).inc()
        await rt.io.post(channel, f":x: Export for `{tenant}` failed: {exc}", thread_ts=thread_ts)
        return
    try:
        await rt.io.upload(channel, thread_ts, export.filename, export.path, f"{tenant} escalations", export.summary)
    finally:
        export.path.unlink(missing_ok=True)
    posted = ExportPosted(filename=export.filename, rows=export.rows)
    await append(rt.store, item.incident_id, item.payload.get("actor", "bot"), posted)


async def op_isolation_triage(rt: Runtime, threads: IncidentThreads, item: JobItem) -> None:
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
    thread_ts: str | None,
    step: str,
    tenant: str,
    step_probes: list,
    run: Callable[[Callable[..., Awaitable[None]]], Awaitable[Report]],
    actor: str = "bot",
    resume_key: str | None = None,
) -> tuple[Report, tuple[str, str]]:
    """Run a step with its progress checklist in the thread, then post its report; returns it
    with the (channel, thread) it is in. With no ``thread_ts`` the checklist is posted in the
    channel and the report in its thread. With ``resume_key`` (an outbox item's), a retried run
    edits the checklist the first run posted."""
    interval = rt.settings.progress_interval_s
    progress: Progress
    # Slack streams to a person, in a thread: a step the bot started itself (an alert) and one
    # in the channel are shown as a checklist.
    if rt.settings.slack_streaming == "native" and is_user(actor) and thread_ts is not None:
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
    shown = thread_ts or progress.ts
    assert shown is not None  # the checklist was posted (or taken over)
    posted = prior.get("report_ts") if prior else None
    if posted:
        # The first run died after posting its report (before its chart): edited, not posted again.
        await rt.io.update(channel, posted, report_fallback(report), report_blocks(report)[0])
        return report, (channel, shown)
    posted = await post_report(rt, channel, shown, report)
    if resume_key and progress.ts is not None:
        remember = {"ts": progress.ts, "report_ts": posted}
        await until_stored(partial(rt.store.keys.put, resume_key, remember), f"{step} report of {tenant}")
    return report, (channel, shown)


async def post_report(rt: Runtime, channel: str, thread_ts: str, report: Report) -> str:
    """Post the report (with its full text as a file when the blocks had to be cut); its ts."""
    blocks, cut = report_blocks(report)
    response = await rt.io.post(channel, report_fallback(report), blocks, thread_ts=thread_ts)
    if cut:
        await rt.io.upload(
            channel,
            thread_ts,
            f"{report.step}-{report.tenant}.txt",
            report_text(report),
            f"Full {report.step} report for {report.tenant}",
        )
    return str(response["ts"])


async def list_breaching(rt: Runtime, respond: Respond) -> None:
    try:
        rows = await breaching_tenants(rt.ctx)
    except BackendError as exc:
        note_outcome("error")
        await respond(text=f":x: Cannot list breaching tenants: {exc.system}: {exc.reason}")
        return
    described = [(b.tenant, f"{b.sli} {pct(b.value)} (SLO {pct(b.slo)}, {b.severity:.1f}×)") for b in rows]
    await respond(text=f"{len(rows)} tenant(s) breaching", blocks=breaching_blocks(described))
