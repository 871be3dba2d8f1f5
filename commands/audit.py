"""`flk audit verify [PATH]`: check the bot's audit log chain; exit 0 when intact, 1 when broken
(naming the first broken record), 2 on bad usage. PATH defaults to $FLK_AUDIT_LOG."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from integrations.audit import verify

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


def audit_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="flk audit", description="the bot's tamper-evident audit log")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check the hash chain and name the first broken record")
    check.add_argument("path", nargs="?", default=os.environ.get("FLK_AUDIT_LOG"), help="default: $FLK_AUDIT_LOG")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    if not args.path:
        print("flk audit verify: name the log (PATH) or set FLK_AUDIT_LOG", file=sys.stderr)
        return EXIT_USAGE
    result = verify(args.path)
    if result.ok:
        print(f"{args.path}: OK · {result.reason}")
        return EXIT_OK
    where = f" (first broken record: {result.first_broken})" if result.first_broken is not None else ""
    print(f"{args.path}: BROKEN · {result.reason}{where}; {result.records} records before it are intact")
    return EXIT_BROKEN
