"""Typed timeline: each event's fields as JSON (``data``) beside its kind; ``text`` becomes legacy.

Every stored row is converted by ``integrations.store.legacy.typed`` (the same mapping the
store's legacy writer uses): to a typed event's kind and fields where its ``details`` (and, for
a mitigation, the plan kept under ``plan:<id>``) carry them, else to ``legacy`` with its text.
``text`` and ``details`` stay as they were. The downgrade drops ``data`` and fills ``text``
where it is empty with the kind (the rows keep their typed kinds).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.store.legacy import LegacyRow, plan_key, typed

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 500
# Frozen views of the tables as this revision sees them.
_TIMELINE = sa.table(
    "timeline",
    sa.column("id", sa.BigInteger),
    sa.column("incident_id", sa.BigInteger),
    sa.column("actor", sa.String),
    sa.column("kind", sa.String),
    sa.column("text", sa.Text),
    sa.column("details", sa.JSON),
    sa.column("data", sa.JSON),
)
_INCIDENTS = sa.table("incidents", sa.column("id", sa.BigInteger), sa.column("tenant", sa.String))
_KEYS = sa.table("idempotency", sa.column("key", sa.String), sa.column("result", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("timeline") as batch:
        batch.add_column(sa.Column("data", sa.JSON, nullable=True))
        batch.alter_column("text", existing_type=sa.Text, nullable=True)
    conn = op.get_bind()
    plans = {key: result for key, result in conn.execute(sa.select(_KEYS).where(_KEYS.c.key.like("plan:%")))}
    t = _TIMELINE
    query = (
        sa.select(t.c.id, t.c.actor, t.c.kind, t.c.text, t.c.details, _INCIDENTS.c.tenant)
        .join(_INCIDENTS, _INCIDENTS.c.id == t.c.incident_id)
        .order_by(t.c.id)
        .limit(_BATCH)
    )
    change = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("row_id"))
        .values(kind=sa.bindparam("new_kind"), data=sa.bindparam("new_data"))
    )
    last = None
    while True:
        rows = conn.execute(query if last is None else query.where(t.c.id > last)).all()
        if not rows:
            break
        updates = []
        for r in rows:
            row = LegacyRow(r.kind, r.text or "", r.details or {}, r.actor, r.tenant)
            key = plan_key(row)
            kind, data = typed(row, plans.get(key) if key else None)
            updates.append({"row_id": r.id, "new_kind": kind, "new_data": data})
        conn.execute(change, updates)
        last = rows[-1].id
    with op.batch_alter_table("timeline") as batch:
        batch.alter_column("data", existing_type=sa.JSON, nullable=False)


def downgrade() -> None:
    t = _TIMELINE
    op.get_bind().execute(sa.update(t).where(t.c.text.is_(None)).values(text=t.c.kind))
    with op.batch_alter_table("timeline") as batch:
        batch.drop_column("data")
        batch.alter_column("text", existing_type=sa.Text, nullable=False)
