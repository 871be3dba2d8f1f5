"""Incident store: SQLite by default, PostgreSQL for several replicas; Alembic-migrated.

store = await Store.connect(settings.database_url)   # upgrades the schema to head
incident, created = await store.open_or_get_incident("acme", title=...)
await store.append_event(incident.id, "U123", "command", {"verb": "triage", "text": "triage acme"})

The timeline keeps each event's kind and fields as JSON; ``commands.timeline`` defines and reads
them (this package never imports ``commands``). ``legacy`` maps rows of the old shape.
"""

from integrations.store.engine import DEFAULT_SQLITE_PATH, normalise_url, safe_url
from integrations.store.errors import (
    IncidentConflict,
    NotFound,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from integrations.store.keys import Keys
from integrations.store.plans import FINAL_STATES, PlanRecord, Plans, PlanState
from integrations.store.queues import Jobs, default_backoff
from integrations.store.records import (
    Alert,
    AlertIn,
    AlertUpdate,
    BreachStart,
    Incident,
    JobItem,
    TimelineEvent,
)
from integrations.store.store import Store

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "FINAL_STATES",
    "Alert",
    "AlertIn",
    "AlertUpdate",
    "BreachStart",
    "Incident",
    "IncidentConflict",
    "JobItem",
    "Jobs",
    "Keys",
    "NotFound",
    "PlanRecord",
    "PlanState",
    "Plans",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "TimelineEvent",
    "default_backoff",
    "normalise_url",
    "safe_url",
]
