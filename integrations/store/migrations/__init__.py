"""Alembic environment and revisions of the incident store (a package so that wheels ship it)."""
