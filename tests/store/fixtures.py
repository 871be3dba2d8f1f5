"""Store fixtures: every store test runs on SQLite and on the real PostgreSQL.

The PostgreSQL server is shared by the whole test session (``sandbox.postgres.shared_server``);
each test gets its own fresh database, dropped afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations.store import Store
from sandbox.postgres import Postgres, shared_server

_names = itertools.count()


class FakeClock:
    """A clock the test moves by hand (the store asks it for "now")."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture(scope="session")
async def postgres() -> Postgres:
    return await shared_server()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres) -> AsyncIterator[str]:
    """An empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flk.sqlite'}"
        return
    name = f"t{next(_names)}_{request.node.name.split('[')[0][:40].lower()}"
    url = await postgres.create_database(name)
    yield url
    await postgres.drop_database(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(db_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    async with await Store.connect(db_url, clock=clock) as s:
        yield s


@pytest.fixture
async def replica(db_url: str, clock: FakeClock, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database with its own engine and pool: another replica."""
    async with await Store.connect(db_url, clock=clock) as s:
        yield s
