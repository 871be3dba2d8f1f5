"""Operator commands: ``python -m integrations.store {upgrade,current,revision}``.

The bot upgrades the schema itself at start-up; these are for doing it by hand and for
writing the next migration (``revision -m "add x" --autogenerate`` against a database at head).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from alembic import command
from sqlalchemy import Connection

from integrations.store.engine import alembic_config, create_engine, current_revision, safe_url, upgrade
from integrations.store.errors import StoreError


async def _run(args: argparse.Namespace) -> str:
    engine = create_engine(args.url)
    try:
        if args.command == "upgrade":
            await upgrade(engine, args.revision)
        elif args.command == "revision":

            def revise(conn: Connection) -> None:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.revision(cfg, message=args.message, autogenerate=args.autogenerate)

            async with engine.begin() as conn:
                await conn.run_sync(revise)
        return f"{safe_url(engine.url)}: revision {await current_revision(engine) or '(empty)'}"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.store", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("FLK_DATABASE_URL"),
        help="database URL (default: $FLK_DATABASE_URL, else the SQLite file)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("upgrade", help="upgrade the schema").add_argument("revision", nargs="?", default="head")
    sub.add_parser("current", help="show the schema revision")
    rev = sub.add_parser("revision", help="write a new migration file")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(_run(args)))
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
