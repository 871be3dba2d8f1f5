"""Alembic migrations: from an empty database to head, on both backends, by several replicas at once."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from integrations.store import Store
from integrations.store.engine import alembic_config, create_engine, current_revision, upgrade
from integrations.store.schema import metadata

TABLES = {"incidents", "alerts", "timeline", "jobs", "idempotency", "plans"}
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_from_empty_to_head(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        assert await current_revision(engine) == HEAD
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables >= TABLES | {"alembic_version"}
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_tables_the_code_uses(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()


async def test_replicas_starting_together_migrate_once(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        assert {await current_revision(e) for e in engines} == {HEAD}
    finally:
        await asyncio.gather(*(e.dispose() for e in engines))


async def test_upgrade_at_head_is_a_no_op_and_keeps_data(db_url: str) -> None:
    async with await Store.connect(db_url) as first:
        incident, _ = await first.open_or_get_incident("t1", title="breach")
    async with await Store.connect(db_url) as again:
        assert (await again.get(incident.id)).tenant == "t1"


async def test_downgrade_to_empty_and_back(db_url: str) -> None:
    engine = create_engine(db_url)

    def downgrade(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")

    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not tables & TABLES
        await upgrade(engine)
        assert await current_revision(engine) == HEAD
    finally:
        await engine.dispose()
