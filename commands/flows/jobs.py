"""The kinds of durable job, in one typed place, and how a flow queues one.

Jobs live in the store's queue (``outbox``): they survive a restart, run once across replicas
(leases), and a job whose worker died is handed to another."""

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
    # A temporary mitigation's expiry: queued with ``not_before`` at the expiry (flows/expiry.py).
    MITIGATION_EXPIRY = "mitigation_expiry"


class JobQueue:
    def __init__(self, store: Store, kick: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.kick = kick

    async def enqueue(
        self,
        job: Job,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        incident_id: int | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Queue ``job`` once per ``key`` (a repeat with the same key is dropped); with
        ``not_before``, it runs no earlier than that."""
        await self.store.outbox.enqueue(
            job.value, payload, incident_id=incident_id, dedupe_key=key, not_before=not_before
        )
        self.kick()
