"""The loopback PostgreSQL launcher used by tests and benchmarks."""

from __future__ import annotations

import psycopg

from sandbox.postgres import Postgres, shared_server


async def _one(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url.replace("+psycopg", "")) as conn:
        row = await (await conn.execute("SELECT 1")).fetchone()
        assert row is not None
        return int(row[0])


async def test_start_restart_stop() -> None:
    async with Postgres(database="launcher") as pg:
        assert pg.url.endswith("/launcher") and "127.0.0.1" in pg.url
        assert await _one(pg.url) == 1
        other = await pg.create_database("second")
        assert await _one(other) == 1
        port, root = pg.port, pg._root
        await pg.restart()
        assert pg.port == port and await _one(other) == 1  # same port, data kept
    assert not pg.running and root is not None and not root.exists()


async def test_shared_server_is_shared() -> None:
    assert await shared_server() is await shared_server()
