"""Migration 0004 on both backends: the outbox's rows become jobs with their ids, and the
scheduled checks still to run become unordered jobs due at their time (an open check from
before the change still runs); finished checks stay history. Downgrading puts them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store import Store
from integrations.store.engine import alembic_config, create_engine, upgrade

DUE = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _write_0003_rows(engine: AsyncEngine) -> int:
    naive = {"created": CREATED.replace(tzinfo=None), "due": DUE.replace(tzinfo=None)}
    async with engine.begin() as conn:
        incident_id = (
            await conn.execute(
                text(
                    "INSERT INTO incidents (kind, tenant, tenants, severity, title, state, opened_at, updated_at) "
                    "VALUES ('tenant', 'acme', '[\"acme\"]', 'P2', 'breach', 'open', :created, :created) RETURNING id"
                ),
                naive,
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO outbox (id, incident_id, op, payload, dedupe_key, attempts, created_at, next_attempt_at,"
                " done_at) VALUES (41, :i, 'post_parent', '{}', 'parent:1', 1, :created, :created, :created),"
                " (42, :i, 'post', '{\"text\": \"hi\"}', NULL, 0, :created, :created, NULL)"
            ),
            {"i": incident_id, **naive},
        )
        for kind, state, n in (
            ("slo", "pending", 1),
            ("slo", "claimed", 2),
            ("slo", "done", 3),
            ("rca_reminder", "pending", 0),
        ):
            await conn.execute(
                text(
                    "INSERT INTO scheduled_checks (incident_id, kind, due_at, payload, state, attempts)"
                    " VALUES (:i, :kind, :due, :payload, :state, 1)"
                ),
                {"i": incident_id, "kind": kind, "due": naive["due"], "payload": f'{{"n": {n}}}', "state": state},
            )
    return incident_id


async def test_open_checks_and_outbox_rows_become_jobs(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0003")
        incident_id = await _write_0003_rows(engine)
    finally:
        await engine.dispose()
    async with await Store.connect(db_url, clock=lambda: DUE + timedelta(seconds=1)) as store:
        jobs = await store.jobs.for_incident(incident_id)
        assert [(j.id, j.op, j.state, j.ordered) for j in jobs[:2]] == [
            (41, "post_parent", "done", True),
            (42, "post", "pending", True),
        ]
        checks = [(j.op, j.payload, j.ordered, j.attempts, j.due_at) for j in jobs[2:]]
        assert checks == [
            ("slo_check", {"n": 1}, False, 0, DUE),
            ("slo_check", {"n": 2}, False, 0, DUE),
            ("rca_reminder", {"n": 0}, False, 0, DUE),
        ]
        # New jobs get ids after the copied ones (PostgreSQL's sequence moved on).
        new = await store.jobs.enqueue("post", {}, incident_id=incident_id)
        assert new is not None and new.id > max(j.id for j in jobs)
        # Due now: the open checks run, beside the post the outbox had not sent yet.
        claimed = await store.jobs.claim_due(worker_id="w", limit=10)
        assert sorted(j.op for j in claimed) == ["post", "rca_reminder", "slo_check", "slo_check"]


async def test_downgrade_puts_pending_checks_back(db_url: str) -> None:
    engine = create_engine(db_url)

    def downgrade(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")

    try:
        await upgrade(engine, "0003")
        incident_id = await _write_0003_rows(engine)
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
            outbox = (await conn.execute(text("SELECT id FROM outbox ORDER BY id"))).scalars().all()
            checks = (
                await conn.execute(
                    text("SELECT kind, state FROM scheduled_checks WHERE incident_id = :i ORDER BY id"),
                    {"i": incident_id},
                )
            ).all()
        assert outbox == [41, 42]
        assert [tuple(c) for c in checks] == [("slo", "pending"), ("slo", "pending"), ("rca_reminder", "pending")]
    finally:
        await engine.dispose()
