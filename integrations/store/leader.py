"""One leader among replicas: a PostgreSQL session-level advisory lock, held on a connection of
its own for as long as the leader lives.

The lock belongs to the database session, not to a transaction, so the leader needs no
renewal: it holds the lock until its session ends. When the leader process dies, its socket
closes and PostgreSQL ends the session at once, releasing the lock; when its host vanishes
without closing the socket, the server-side TCP keepalives set below end the session within
about 11 s. A follower takes over on its next ``try_acquire()``. On SQLite there is one
process by design: it is always the leader.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# pg_try_advisory_lock key for the check scheduler; the migration lock (engine.py) is 0x464C4B.
SCHEDULER_LOCK = 0x464C4B01
# The server probes an idle leader's socket after 5 s, then every 2 s, 3 times: a leader whose
# host died without closing its connection loses the lock within ~11 s, inside the 15 s goal.
_KEEPALIVES = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}
_QUERY_TIMEOUT_S = 5.0


class LeaderLock:
    """``await lock.try_acquire()``: True while this process holds the lock (taken now or before)."""

    def __init__(self, engine: AsyncEngine, key: int = SCHEDULER_LOCK) -> None:
        self._engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    @property
    def single_process(self) -> bool:
        return self._engine.dialect.name != "postgresql"

    async def try_acquire(self) -> bool:
        """Take the lock if free; when already held, check that the session holding it is alive.

        Never raises for a database that is down: that is "not the leader" (a leader that
        cannot reach the database cannot know it still holds the lock)."""
        if self.single_process:
            return True
        try:
            return await asyncio.wait_for(self._try_acquire(), _QUERY_TIMEOUT_S)
        except (exc.DBAPIError, exc.TimeoutError, OSError, TimeoutError) as e:
            log.warning("leader lock: database unavailable (%s)", type(e).__name__)
            await self._drop()
            return False

    async def _try_acquire(self) -> bool:
        if self._conn is not None:
            await self._conn.execute(text("SELECT 1"))
            return True
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for name, value in _KEEPALIVES.items():
                await conn.execute(text(f"SET {name} = {int(value)}"))
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar()
        except BaseException:
            await conn.invalidate()
            await conn.close()
            raise
        if got:
            self._conn = conn
            return True
        await conn.close()  # back to the pool: it holds no lock
        return False

    async def release(self) -> None:
        """Give the lock up (on shutdown): the followers take over without waiting for a timeout."""
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Ending the session releases the lock whatever state it is in; a pooled connection
        # would keep the lock alive inside the pool.
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:  # the connection is already gone: so is the lock
            log.debug("leader lock: closing a dead connection", exc_info=True)
