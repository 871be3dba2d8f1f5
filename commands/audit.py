"""`flk audit verify [PATH] [--key-env VAR]`: check the bot's audit log chain; exit 0 when intact,
1 when broken (naming the first broken record), 2 on bad usage, a key that is missing or too
short among them. PATH defaults to $FLK_AUDIT_LOG; the key is read from the variable VAR names
(default FLK_AUDIT_KEY, when set), never from the command line, and never printed.

Replicas keep one chain each (FLK_AUDIT_LOG with `{replica}` in it): a PATH with `{replica}`, or a
folder, verifies every log it covers, each on its own line; the exit code is the worst of them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from integrations.audit import VerifyResult, audit_key, verify

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2
# In FLK_AUDIT_LOG: the replica's name (bot/service/settings.py), so each replica has its own chain.
REPLICA = "{replica}"
KEY_SETTING = "FLK_AUDIT_KEY"
UNKEYED = "SHA-256, unkeyed: anyone who can write the file can rewrite it consistently"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _algorithm(result: VerifyResult) -> str:
    if result.keyed_from is None:
        return UNKEYED
    if result.keyed_from == 1:
        return "HMAC-SHA256, keyed"
    before = _plural(result.keyed_from - 1, "record", "records")
    return f"HMAC-SHA256, keyed from record {result.keyed_from:,}; the {before} before it are covered through the chain"


def _recoveries(result: VerifyResult) -> str:
    recoveries = result.recoveries
    if len(recoveries) == 1:
        return f"recovered once at {recoveries[0].at}: {_plural(recoveries[0].bytes_dropped, 'byte', 'bytes')} dropped"
    drops = [f"{_plural(r.bytes_dropped, 'byte', 'bytes')} dropped at {r.at}" for r in recoveries]
    return f"recovered {len(recoveries)} times: " + "; ".join(drops)


def _key(name: str | None) -> bytes | None:
    """The key in the variable ``name`` (default: FLK_AUDIT_KEY, if set); ValueError when unset or too short."""
    if name is None:
        return audit_key(os.environ.get(KEY_SETTING))
    value = os.environ.get(name)
    if not value or not value.strip():
        raise ValueError(f"${name} is not set")
    return audit_key(value)


def logs_of(path: str) -> list[str]:
    """The logs ``path`` names: every replica's (``{replica}``), every ``*.jsonl`` of a folder, or itself."""
    if REPLICA in path:
        where = Path(path)
        return sorted(str(p) for p in where.parent.glob(where.name.replace(REPLICA, "*")))
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).glob("*.jsonl"))
    return [path]


def audit_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="flk audit", description="the bot's tamper-evident audit log")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check the hash chain and name the first broken record")
    check.add_argument("path", nargs="?", default=os.environ.get("FLK_AUDIT_LOG"), help="default: $FLK_AUDIT_LOG")
    check.add_argument(
        "--key-env", metavar="VAR", help=f"the environment variable holding the key (default: ${KEY_SETTING} if set)"
    )
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    if not args.path:
        print("flk audit verify: name the log (PATH) or set FLK_AUDIT_LOG", file=sys.stderr)
        return EXIT_USAGE
    try:
        key = _key(args.key_env)
    except ValueError as exc:
        print(f"flk audit verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs = logs_of(args.path)
    if not logs:
        print(f"flk audit verify: no audit log matches {args.path}", file=sys.stderr)
        return EXIT_USAGE
    return max(_verify_one(path, key, args.key_env) for path in logs)


def _verify_one(path: str, key: bytes | None, key_env: str | None) -> int:
    result = verify(path, key=key)
    if result.key_needed:
        print(f"{path}: {result.reason}; pass --key-env VAR, VAR holding the key", file=sys.stderr)
        return EXIT_USAGE
    if result.ok:
        line = f"{path}: chain intact ({_algorithm(result)}) · {_plural(result.records, 'record', 'records')}"
        if result.recoveries:
            line += f" · {_plural(len(result.recoveries), 'recovery', 'recoveries')}\n{_recoveries(result)}"
        print(line)
        return EXIT_OK
    checked = f"HMAC-SHA256 with the key in ${key_env or KEY_SETTING}" if key is not None else "no key"
    if result.first_broken is not None:
        where = f" (first broken record: {result.first_broken}); {result.records:,} records before it are intact"
    else:
        where = f"; {_plural(result.records, 'record', 'records')} read"
    print(f"{path}: BROKEN ({checked}) · {result.reason}{where}")
    return EXIT_BROKEN
