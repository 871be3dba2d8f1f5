"""Alembic environment: migrations run on the connection the store hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from integrations.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through integrations.store (python -m integrations.store upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
