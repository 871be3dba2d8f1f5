"""A database that is down gives one typed error (the webhook answers 503) and the store
recovers by itself when the database is back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.store import Store, StoreUnavailable
from sandbox.postgres import Postgres

PASSWORD = "not-a-real-password-7Qx"


@pytest.fixture(scope="module")
async def module_postgres() -> AsyncIterator[Postgres]:
    """A server of our own: stopping the shared one would disturb other tests."""
    async with Postgres() as pg:
        yield pg


@pytest.fixture
async def own_postgres(module_postgres: Postgres) -> Postgres:
    if not module_postgres.running:  # a previous test left it stopped
        await module_postgres.restart()
    return module_postgres


async def test_postgres_down_then_back(own_postgres: Postgres) -> None:
    url = (await own_postgres.create_database("down_then_back")).replace(
        "postgres@", f"postgres:{PASSWORD}@"
    )  # trust auth ignores the password
    async with await Store.connect(url, connect_timeout=2) as store:
        incident, _ = await store.open_or_get_incident("t1", title="breach")
        await own_postgres.halt()
        for call in (
            store.ping(),
            store.open_or_get_incident("t2", title="breach"),
            store.get(incident.id),
            store.keys.claim("k"),
            store.jobs.claim_due(worker_id="w"),
        ):
            with pytest.raises(StoreUnavailable) as caught:
                await call
            assert PASSWORD not in str(caught.value) and "127.0.0.1" not in str(caught.value)
        await own_postgres.restart()
        # pooled connections died with the server; the store replaces them without help
        assert (await store.get(incident.id)).tenant == "t1"
        _, created = await store.open_or_get_incident("t2", title="breach")
        assert created


async def test_server_restart_under_open_connections(own_postgres: Postgres) -> None:
    async with await Store.connect(await own_postgres.create_database("restart")) as store:
        incident, _ = await store.open_or_get_incident("t1", title="breach")
        await own_postgres.restart()
        await store.append_event(incident.id, "bot", "note", {"text": "after restart", "author": "bot"})
        assert [e.kind for e in await store.timeline(incident.id)] == ["incident.opened", "note"]


async def test_connect_to_a_stopped_server_then_migrate_when_it_is_back(own_postgres: Postgres) -> None:
    url = await own_postgres.create_database("late_start")
    await own_postgres.halt()
    with pytest.raises(StoreUnavailable):
        await Store.connect(url, connect_timeout=1)
    async with await Store.connect(url, migrate=False) as store:  # the bot starts anyway
        with pytest.raises(StoreUnavailable):
            await store.migrate()
        await own_postgres.restart()
        await store.migrate()
        _, created = await store.open_or_get_incident("t1", title="breach")
        assert created


async def test_sqlite_locked_beyond_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    async with await Store.connect(f"sqlite:///{path}", busy_timeout=0.2) as store:
        incident, _ = await store.open_or_get_incident("t1", title="breach")
        other = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable):
                await store.append_event(incident.id, "bot", "note", {"text": "blocked", "author": "bot"})
            other.execute("ROLLBACK")
        finally:
            other.close()
        await store.append_event(incident.id, "bot", "note", {"text": "free again", "author": "bot"})
        assert (await store.timeline(incident.id))[-1].data["text"] == "free again"


async def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()
    with pytest.raises(StoreUnavailable):
        await Store.connect(f"sqlite:///{folder}")
