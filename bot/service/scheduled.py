"""Work due at a time, as jobs: the SLO checks after a mitigation (runbook §6) and the RCA
reminder (§7). Queued with ``not_before``, run by whichever worker claims them once due (the
queue's lease hands a check whose worker died to another), counted by kind and outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bot.service.jobs import JobHandler
from bot.service.telemetry import CHECKS
from integrations.store import JobItem

DueRunner = Callable[[JobItem, float], Awaitable[dict[str, Any]]]


def late_s(item: JobItem) -> float:
    """How long after its due time the job started."""
    due = item.due_at or item.created_at
    return max(0.0, (datetime.now(UTC) - due).total_seconds())


def counted(kind: str, run: DueRunner) -> JobHandler:
    """``run`` as a job handler that counts its outcome: passed or failed (an SLO check that ran
    and said so), done (a reminder), error (it could not run: the queue retries it)."""

    async def handle(item: JobItem) -> None:
        try:
            result = await run(item, late_s(item))
        except Exception:
            CHECKS.labels(kind=kind, outcome="error").inc()
            raise
        ok = result.get("ok")
        CHECKS.labels(kind=kind, outcome="passed" if ok is True else "failed" if ok is False else "done").inc()

    return handle
