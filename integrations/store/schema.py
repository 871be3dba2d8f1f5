"""Tables of the incident store (SQLAlchemy Core; the Alembic migrations create them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    text,
    true,
)

# Named constraints keep migrations identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on both backends (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # tenant | isolation
    Column("tenant", String(128)),  # NULL for isolation incidents
    Column("tenants", JSON, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("title", Text, nullable=False),
    Column("state", String(16), nullable=False),  # open | mitigating | verifying | resolved
    Column("channel", String(32)),
    Column("thread_ts", String(32)),
    Column("scenario", String(32)),
    Column("sli_summary", JSON),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("first_alert_at", UTCDateTime),
    Column("last_alert_at", UTCDateTime),
    UniqueConstraint("channel", "thread_ts"),
)
# At most one unresolved incident per tenant and one unresolved isolation incident:
# the database, not the caller, settles races between replicas.
_unresolved = incidents.c.state != "resolved"
Index(
    "uq_incidents_open_tenant", incidents.c.tenant, unique=True, sqlite_where=_unresolved, postgresql_where=_unresolved
)
_open_isolation = and_(incidents.c.kind == "isolation", _unresolved)
Index(
    "uq_incidents_open_isolation",
    incidents.c.kind,
    unique=True,
    sqlite_where=_open_isolation,
    postgresql_where=_open_isolation,
)
Index("ix_incidents_state", incidents.c.state)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # firing | resolved
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("generator_url", Text),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    UniqueConstraint("incident_id", "fingerprint"),
)
Index("ix_alerts_starts_at", alerts.c.starts_at)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    # The event's fields (``commands.timeline.events``); ``text`` and ``details``: the prose and
    # loose fields of rows written before the timeline was typed (``legacy``), kept as they were.
    Column("data", JSON, nullable=False),
    Column("text", Text),
    Column("details", JSON, nullable=False),
)
Index("ix_timeline_incident_id_at", timeline.c.incident_id, timeline.c.at, timeline.c.id)

# The job queue: Slack posts, triages, applies, Grafana and Alertmanager calls, SLO checks and
# reminders. ``due_at`` is when it was first due (a check's lateness is measured from it);
# ``next_attempt_at`` moves on with each claim (the lease) and each retry. An ``ordered`` job of
# an incident waits for the incident's older ordered jobs (a reply waits for its parent post).
jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE")),
    Column("op", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", String(200), unique=True),
    Column("ordered", Boolean, nullable=False, server_default=true()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("last_error", Text),
    Column("done_at", UTCDateTime),
    Column("failed_at", UTCDateTime),
)
# Workers poll for due work often: only unfinished rows are indexed, so the poll does not walk
# the finished history.
_unfinished = and_(jobs.c.done_at.is_(None), jobs.c.failed_at.is_(None))
Index(
    "ix_jobs_unfinished_next_attempt_at",
    jobs.c.next_attempt_at,
    sqlite_where=_unfinished,
    postgresql_where=_unfinished,
)
Index("ix_jobs_incident_id", jobs.c.incident_id)

idempotency = Table(
    "idempotency",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("result", JSON),
)
Index("ix_idempotency_created_at", idempotency.c.created_at)

# A mitigation plan and where it stands: one row, moved on by one conditional UPDATE per step
# (planned → approved → applying → applied | partial | conflict | failed; planned → cancelled |
# expired), so concurrent clicks and replicas are settled by the database.
plans = Table(
    "plans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("plan", JSON, nullable=False),
    Column("applied", JSON),
    Column("planned_by", String(64), nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("confirmed_by", String(64)),
    Column("undoes", String(64)),
    Column("reason", Text),
    Column("channel", String(32)),
    Column("message_ts", String(32)),
    Column("apply_started_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
Index("ix_plans_incident_id", plans.c.incident_id)
