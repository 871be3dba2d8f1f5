"""Initial schema: incidents, alerts, timeline, outbox, idempotency keys, scheduled checks.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types: a migration must not change when schema.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
UNRESOLVED = sa.text("state != 'resolved'")
OPEN_ISOLATION = sa.text("kind = 'isolation' AND state != 'resolved'")


def _id() -> sa.Column:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _incident_fk(table: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        "incident_id",
        ID,
        sa.ForeignKey("incidents.id", name=f"fk_{table}_incident_id_incidents", ondelete="CASCADE"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "incidents",
        _id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128)),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32)),
        sa.Column("thread_ts", sa.String(32)),
        sa.Column("scenario", sa.String(32)),
        sa.Column("sli_summary", sa.JSON),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("first_alert_at", TS),
        sa.Column("last_alert_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("channel", "thread_ts", name="uq_incidents_channel_thread_ts"),
    )
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_index(
        "uq_incidents_open_tenant",
        "incidents",
        ["tenant"],
        unique=True,
        sqlite_where=UNRESOLVED,
        postgresql_where=UNRESOLVED,
    )
    op.create_index(
        "uq_incidents_open_isolation",
        "incidents",
        ["kind"],
        unique=True,
        sqlite_where=OPEN_ISOLATION,
        postgresql_where=OPEN_ISOLATION,
    )

    op.create_table(
        "alerts",
        _id(),
        _incident_fk("alerts"),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("generator_url", sa.Text),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("annotations", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("incident_id", "fingerprint", name="uq_alerts_incident_id_fingerprint"),
    )
    op.create_index("ix_alerts_starts_at", "alerts", ["starts_at"])

    op.create_table(
        "timeline",
        _id(),
        _incident_fk("timeline"),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
    )
    op.create_index("ix_timeline_incident_id_at", "timeline", ["incident_id", "at", "id"])

    op.create_table(
        "outbox",
        _id(),
        _incident_fk("outbox", nullable=True),
        sa.Column("op", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("done_at", TS),
        sa.Column("failed_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])

    op.create_table(
        "idempotency",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("result", sa.JSON),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency"),
    )
    op.create_index("ix_idempotency_created_at", "idempotency", ["created_at"])

    op.create_table(
        "scheduled_checks",
        _id(),
        _incident_fk("scheduled_checks"),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("result", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_checks"),
    )
    op.create_index("ix_scheduled_checks_state_due_at", "scheduled_checks", ["state", "due_at"])


def downgrade() -> None:
    for table in ("scheduled_checks", "idempotency", "outbox", "timeline", "alerts", "incidents"):
        op.drop_table(table)
