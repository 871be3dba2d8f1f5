"""``python -m integrations.worm index ROOT [--cache DIR] [--jobs N]``: index a WORM root's closed files."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from integrations.worm.index_store import default_cache
from integrations.worm.indexer import build_index


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text[:40]!r}") from None


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m integrations.worm", description="WORM audit log tools")
    commands = main.add_subparsers(dest="command", required=True)
    index = commands.add_parser(
        "index",
        help="index the closed files of a WORM root",
        description="Index every closed file under ROOT/YYYY/MM/DD/ so that queries read only the lines they need. "
        "Indexes go beside the files (in .flk-index/), or under --cache when the WORM volume is not writable.",
    )
    index.add_argument("root", type=Path, help="the WORM root (the folder holding YYYY/MM/DD/)")
    index.add_argument(
        "--cache", type=Path, help=f"where indexes go when ROOT is read-only (default {default_cache()})"
    )
    index.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    index.add_argument("--from", dest="first", type=_day, help="first day to index (YYYY-MM-DD)")
    index.add_argument("--to", dest="last", type=_day, help="last day to index (YYYY-MM-DD)")
    index.add_argument("--force", action="store_true", help="rebuild indexes that are up to date")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = build_index(
            args.root, cache=args.cache, jobs=args.jobs, first=args.first, last=args.last, force=args.force
        )
    except ValueError as exc:
        print(f"worm index: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
