"""The kinds of durable job, in one typed place, and how a flow queues one.

Jobs live in the store's queue (``jobs``): they survive a restart, run once across replicas and
worker processes (leases), and a job whose worker died is handed to another. A job may be due
later (``not_before``): SLO checks and the RCA reminder are jobs like the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from integrations.store import Store


class Job(StrEnum):
    POST_PARENT = "post_parent"
    UPDATE_PARENT = "update_parent"
    POST = "post"
    POST_BLOCKS = "post_blocks"
    POST_PLAN = "post_plan"
    UPDATE_PLAN = "update_plan"
    POST_OUTCOME = "post_outcome"
    THREAD_NOTICE = "thread_notice"
    TRIAGE = "triage"
    DIAGNOSE = "diagnose"
    EXPORT = "export"
    ISOLATION_TRIAGE = "isolation_triage"
    APPLY_PLAN = "apply_plan"
    POST_NOTICE = "post_notice"
    POST_TO = "post_to"
    ANNOTATE = "annotate"
    EXPIRE_SILENCES = "expire_silences"
    SLO_CHECK = "slo_check"
    RCA_REMINDER = "rca_reminder"
    # A Slack command, button, modal submission or event the front acked (a front end's job:
    # the flows never queue it).
    INTERACTION = "interaction"
    # A temporary mitigation's expiry: queued with ``not_before`` at the expiry (flows/expiry.py).
    MITIGATION_EXPIRY = "mitigation_expiry"

    @property
    def ordered(self) -> bool:
        """Whether it waits for its incident's older ordered jobs (thread posts keep their
        order). A check due in ten minutes is unordered: it must not hold the thread up."""
        return self not in _UNORDERED


_UNORDERED = frozenset({Job.SLO_CHECK, Job.RCA_REMINDER, Job.INTERACTION, Job.MITIGATION_EXPIRY})


class JobQueue:
    def __init__(
        self,
        store: Store,
        kick: Callable[[], None] = lambda: None,
        wake_at: Callable[[datetime], None] = lambda _: None,
    ) -> None:
        self.store = store
        self.kick = kick
        # Told when a job queued here is due later, so a worker in this process wakes on time.
        self.wake_at = wake_at

    async def enqueue(
        self,
        job: Job,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        incident_id: int | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Queue ``job`` once per ``key`` (a repeat with the same key is dropped), due now or at
        ``not_before``."""
        await self.store.jobs.enqueue(
            job.value, payload, incident_id=incident_id, dedupe_key=key, not_before=not_before, ordered=job.ordered
        )
        if not_before is None:
            self.kick()
        else:
            self.wake_at(not_before)
