"""Mitigation plans as records with a state column (they were idempotency keys).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("applied", sa.JSON),
        sa.Column("planned_by", sa.String(64), nullable=False),
        sa.Column("approvers", sa.JSON, nullable=False),
        sa.Column("confirmed_by", sa.String(64)),
        sa.Column("undoes", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("channel", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("apply_started_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_plans_incident_id_incidents", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
    )
    op.create_index("ix_plans_incident_id", "plans", ["incident_id"])


def downgrade() -> None:
    op.drop_table("plans")
