"""Idempotency keys shared by every replica: the first caller of a key wins (a Slack retry, a
double click, a second replica), and a key may carry a small result for later callers."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from integrations.store.engine import Db
from integrations.store.schema import idempotency
from integrations.store.scrub import scrub

_MAX_KEY = 200


def stored_key(key: str) -> str:
    """Keys longer than the column are replaced by their hash (still unique, still stable)."""
    return key if len(key) <= _MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class Keys:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def claim(self, key: str) -> bool:
        """True for the first caller with ``key`` (any replica), False for every later one."""
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    self._db.insert(idempotency)
                    .values(key=stored_key(key), created_at=self._db.clock())
                    .on_conflict_do_nothing()
                    .returning(idempotency.c.key)
                )
            ).first()
        return row is not None

    async def set_result(self, key: str, result: dict[str, Any]) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(idempotency).where(idempotency.c.key == stored_key(key)).values(result=scrub(result))
            )

    async def put(self, key: str, result: dict[str, Any]) -> None:
        """Keep ``result`` under ``key``, claimed or not (a value shared by every replica)."""
        await self.claim(key)
        await self.set_result(key, result)

    async def result(self, key: str) -> dict[str, Any] | None:
        """What the first caller recorded for ``key`` (None if nothing yet)."""
        async with self._db.read() as conn:
            return (
                await conn.execute(select(idempotency.c.result).where(idempotency.c.key == stored_key(key)))
            ).scalar_one_or_none()

    async def purge(self, older_than: timedelta) -> int:
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(idempotency).where(idempotency.c.created_at < self._db.clock() - older_than)
            )
            return int(result.rowcount)
