"""Engines for SQLite and PostgreSQL, error translation, and the Alembic upgrade at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from integrations.store.errors import StoreConfigError, StoreUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_SQLITE_PATH = "./flk-chatops.sqlite"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key: replicas starting together migrate one after the other.
_MIGRATION_LOCK = 0x464C4B  # "FLK"
_SQLITE_BEGIN = "flk_sqlite_begin"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_url(url: str | None) -> str:
    """A URL SQLAlchemy's async engine accepts; the SQLite default file when ``url`` is empty.

    ``postgres://`` and ``postgresql://`` use psycopg 3; ``sqlite:///path`` uses aiosqlite.
    """
    if not url:
        return f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StoreConfigError(
            "database URL is not a URL (expected e.g. postgresql://host/db or sqlite:///path.sqlite)"
        ) from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise StoreConfigError("in-memory SQLite is not supported: give a file, sqlite:///path.sqlite")
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise StoreConfigError(f"unsupported database {backend!r}: expected postgresql or sqlite")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def _json_default(value: Any) -> Any:
    """Timeline details may carry datetimes, enums or paths: store them readably, never fail."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


_json_dumps = functools.partial(json.dumps, default=_json_default, ensure_ascii=False)


def create_engine(
    url: str | None, *, pool_size: int = 10, connect_timeout: float = 5.0, busy_timeout: float = 10.0
) -> AsyncEngine:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout)
    return create_async_engine(
        parsed,
        json_serializer=_json_dumps,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
        connect_args={"connect_timeout": max(1, round(connect_timeout)), "application_name": "flk-chatops"},
    )


def _sqlite_engine(url: URL, busy_timeout: float) -> AsyncEngine:
    assert url.database is not None
    try:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreConfigError(f"cannot create the folder of the SQLite file: {e.strerror}") from None
    engine = create_async_engine(url, json_serializer=_json_dumps, pool_size=5, max_overflow=5)

    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up
    # front; SQLAlchemy's documented recipe: disable it and emit BEGIN ourselves.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            f"busy_timeout = {int(busy_timeout * 1000)}",
            "journal_mode = WAL",
            "synchronous = NORMAL",
            "foreign_keys = ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock at BEGIN (IMMEDIATE): a deferred read-then-write transaction
        # fails with SQLITE_BUSY under WAL instead of waiting for the busy timeout.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_SQLITE_BEGIN, 'DEFERRED')}")

    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine, but its transactions lock for writing at BEGIN on SQLite."""
    return engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn "the database is not there" into ``StoreUnavailable`` (the message names no host or secret)."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as e:
        raise StoreUnavailable(f"database unavailable: {type(e.orig).__name__}") from e
    except exc.DBAPIError as e:
        if e.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {type(e.orig).__name__}") from e
        raise
    except exc.TimeoutError as e:
        raise StoreUnavailable("database busy: no free connection in the pool") from e
    except (OSError, TimeoutError) as e:
        raise StoreUnavailable(f"database unavailable: {type(e).__name__}") from e


class Db:
    """What the store's parts share: the engine, a writer view of it, the clock."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.writer = writer(engine)
        self.clock = clock
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time; queueing our own writers here is far faster than
        # letting them poll SQLite's busy handler (which sleeps up to 100 ms per try).
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    def insert(self, table: Any) -> Any:
        """An INSERT that knows ``ON CONFLICT`` on this backend."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction that will write; committed on success."""
        async with self._write_lock or contextlib.nullcontext():
            with translate_errors():
                async with self.writer.begin() as conn:
                    yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self.engine.connect() as conn:
                yield conn


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    """The newest migration, read from the version files (no alembic import needed)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = re.search(r'^revision\s*=\s*"([^"]+)"', source, re.MULTILINE)
        parent = re.search(r'^down_revision\s*=\s*"([^"]+)"', source, re.MULTILINE)
        if found:
            revisions.add(found.group(1))
        if parent:
            parents.add(parent.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _at_head(engine: AsyncEngine) -> bool:
    head = head_revision()
    if head is None:
        return False
    try:
        async with engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except exc.DBAPIError:
        return False
    return current == head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe when several replicas start at once."""
    # Alembic costs ~11 MB of memory: import it only when there is something to migrate.
    with translate_errors():
        if revision == "head" and await _at_head(engine):
            return

    def run(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    with translate_errors():
        async with writer(engine).begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with translate_errors():
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
