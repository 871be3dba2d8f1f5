"""One job queue: the outbox becomes ``jobs`` (with ``ordered`` and ``due_at``), and the
scheduled checks still to run move into it as unordered jobs due at their time.

A check already done, failed or cancelled is history (its result is on the timeline) and is
not carried over; a pending check, or one claimed by a worker that may have died, runs as a job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
# The check kinds as they were stored, and the job each becomes.
CHECK_OPS = {"slo": "slo_check", "rca_reminder": "rca_reminder"}
_COPIED = "incident_id, op, payload, dedupe_key, attempts, created_at, next_attempt_at, claimed_by, last_error"


def _incident_fk(table: str, *, nullable: bool) -> sa.Column:
    return sa.Column(
        "incident_id",
        ID,
        sa.ForeignKey("incidents.id", name=f"fk_{table}_incident_id_incidents", ondelete="CASCADE"),
        nullable=nullable,
    )


def _bump_sequence(table: str) -> None:
    # Rows were copied with their ids: PostgreSQL's sequence must start after them.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
        )


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        _incident_fk("jobs", nullable=True),
        sa.Column("op", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("ordered", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("done_at", TS),
        sa.Column("failed_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    )
    unfinished = sa.text("done_at IS NULL AND failed_at IS NULL")
    op.create_index(
        "ix_jobs_unfinished_next_attempt_at",
        "jobs",
        ["next_attempt_at"],
        sqlite_where=unfinished,
        postgresql_where=unfinished,
    )
    op.create_index("ix_jobs_incident_id", "jobs", ["incident_id"])
    op.execute(
        f"INSERT INTO jobs (id, {_COPIED}, ordered, due_at, done_at, failed_at) "
        f"SELECT id, {_COPIED}, true, created_at, done_at, failed_at FROM outbox"
    )
    _bump_sequence("jobs")
    for kind, job in CHECK_OPS.items():
        # A check claimed by a worker that died is due now; one on time keeps its time.
        op.execute(
            sa.text(
                "INSERT INTO jobs (incident_id, op, payload, ordered, attempts, created_at, due_at, next_attempt_at) "
                "SELECT incident_id, :job, payload, false, 0, due_at, due_at, due_at FROM scheduled_checks "
                "WHERE kind = :kind AND state IN ('pending', 'claimed') ORDER BY due_at, id"
            ).bindparams(job=job, kind=kind)
        )
    op.drop_table("outbox")
    op.drop_table("scheduled_checks")


def downgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
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
        "scheduled_checks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        _incident_fk("scheduled_checks", nullable=False),
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
    checks = tuple(CHECK_OPS.values())
    op.execute(
        sa.text(
            f"INSERT INTO outbox (id, {_COPIED}, done_at, failed_at) "
            f"SELECT id, {_COPIED}, done_at, failed_at FROM jobs WHERE op NOT IN :checks"
        ).bindparams(sa.bindparam("checks", checks, expanding=True))
    )
    _bump_sequence("outbox")
    for kind, job in CHECK_OPS.items():
        op.execute(
            sa.text(
                "INSERT INTO scheduled_checks (incident_id, kind, due_at, payload, state, attempts) "
                "SELECT incident_id, :kind, due_at, payload, 'pending', 0 FROM jobs "
                "WHERE op = :job AND done_at IS NULL AND failed_at IS NULL"
            ).bindparams(job=job, kind=kind)
        )
    op.drop_table("jobs")
