"""Runbook steps run into Slack: the step's thread, its live progress, its summary."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bot.progress import Progress
from bot.render import breaching_blocks, report_blocks, report_fallback
from bot.runtime import Runtime
from bot.terminal import report_text
from bot.threads import TenantThreads
from commands.models import Report
from commands.promql import pct
from commands.triage import breaching_tenants, probes, run_triage
from integrations.errors import BackendError

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def mention(user: str) -> str:
    return f"<@{user}>" if _USER_ID.match(user) else "someone"


async def triage_in_thread(rt: Runtime, threads: TenantThreads, tenant: str, user: str, respond: Respond) -> None:
    refusal = await rt.ctx.tenants.refuse(tenant)
    if refusal:
        await respond(text=f":information_source: {refusal}. Try `/flk triage` to list breaching tenants.")
        return
    channel, thread_ts = await threads.thread_for(tenant, mention(user))
    try:
        report = await stream_triage(rt, channel, thread_ts, tenant)
    except Exception:
        log.exception("triage of %s failed", tenant)
        await rt.io.post(
            channel, f":x: Triage of `{tenant}` failed: internal error (details in the bot's log)", thread_ts=thread_ts
        )
        return
    headline = report.verdict.headline if report.verdict else report.status.value
    await threads.set_status(tenant, headline)


async def stream_triage(rt: Runtime, channel: str, thread_ts: str, tenant: str) -> Report:
    progress = Progress(rt.io, channel, thread_ts, "triage", tenant, probes(), rt.settings.progress_interval_s)
    await progress.start()
    try:
        report = await run_triage(rt.ctx, tenant, progress.on_finding)
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
        await respond(text=f":x: Cannot list breaching tenants: {exc.system}: {exc.reason}")
        return
    described = [(b.tenant, f"{b.sli} {pct(b.value)} (SLO {pct(b.slo)}, {b.severity:.1f}×)") for b in rows]
    await respond(text=f"{len(rows)} tenant(s) breaching", blocks=breaching_blocks(described))
