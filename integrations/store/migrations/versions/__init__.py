"""Alembic revisions, applied in order by ``integrations.store.engine.upgrade``."""
