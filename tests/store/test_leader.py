"""The leader lock: one holder among replicas on PostgreSQL, handed over when the holder
releases it or its session dies; on SQLite (one process) always held."""

from __future__ import annotations

from sqlalchemy import text

from integrations.store import Store
from integrations.store.leader import LeaderLock


async def test_one_holder_and_handover_on_release(store: Store, replica: Store) -> None:
    first, second = LeaderLock(store.engine), LeaderLock(replica.engine)
    try:
        assert await first.try_acquire()
        if store.backend == "sqlite":
            assert await second.try_acquire()  # one process by design: each is its own leader
            return
        assert not await second.try_acquire()
        assert await first.try_acquire()  # the holder keeps it on every tick
        await first.release()
        assert await second.try_acquire()
        assert not await first.try_acquire()
    finally:
        await first.release()
        await second.release()


async def test_a_dead_session_loses_the_lock_to_the_other_replica(store: Store, replica: Store) -> None:
    if store.backend == "sqlite":
        assert await LeaderLock(store.engine).try_acquire()
        return
    leader, follower = LeaderLock(store.engine), LeaderLock(replica.engine)
    try:
        assert await leader.try_acquire()
        # What a killed leader's session looks like to the server: gone. (Terminated from outside.)
        async with replica.engine.connect() as conn:
            ended = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objid = :key"
                ),
                {"key": leader.key},
            )
            assert ended.scalar() is True
            await conn.commit()
        assert await follower.try_acquire()
        assert not await leader.try_acquire()  # the old leader notices and steps down
    finally:
        await leader.release()
        await follower.release()
