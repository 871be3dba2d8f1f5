"""Checking a whole audit log: the chain, the head, the key, and the torn tails it recovered.

With a key, every keyed record's HMAC is checked, and a record after the first keyed one must be
keyed too; the unkeyed records before it (written before the key was set) are covered through
the chain, since the first keyed record's MAC holds the hash of the one before it. Without a
key, keyed records are checked for their order and links only, and the result says so.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.audit_records import GENESIS, RECOVERED, SYSTEM_ACTOR, check_key, is_keyed, record_hash, shape_problem
from integrations.audit_tail import head_path, read_head


@dataclass(frozen=True)
class Recovery:
    """A torn tail the log dropped, as its ``audit.recovered`` record tells it."""

    seq: int
    at: str
    bytes_dropped: int
    sha256: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    # Records that chain correctly, from the first up to the first broken one.
    records: int
    # 1-based number of the first record that is broken or missing; None when ok or unreadable.
    first_broken: int | None
    reason: str
    # 1-based number of the first keyed (HMAC-SHA256) record; None when none is.
    keyed_from: int | None = None
    recoveries: tuple[Recovery, ...] = ()
    # Keyed records were found and no key given: their MACs could not be checked.
    key_needed: bool = False

    @property
    def algorithm(self) -> str:
        return "SHA-256" if self.keyed_from is None else "HMAC-SHA256"


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def _recovery(record: dict[str, Any]) -> Recovery | None:
    if record["action"] != RECOVERED or record["actor"] != SYSTEM_ACTOR or not isinstance(record["details"], dict):
        return None
    dropped, digest = record["details"].get("bytes_dropped"), record["details"].get("sha256")
    return Recovery(record["seq"], str(record["at"]), dropped if isinstance(dropped, int) else 0, str(digest))


class _Chain:
    """The records read so far, and what the next one must follow."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.prev, self.count = GENESIS, 0
        self.keyed_from: int | None = None
        self.recoveries: list[Recovery] = []
        # The last two records' hashes: the head names one of them.
        self.recent: deque[str] = deque(maxlen=2)

    def result(self, ok: bool, first_broken: int | None, reason: str, *, key_needed: bool = False) -> VerifyResult:
        recoveries = tuple(self.recoveries)
        return VerifyResult(ok, self.count, first_broken, reason, self.keyed_from, recoveries, key_needed)

    def add(self, number: int, raw: bytes) -> str | None:
        """The problem with record ``number``, or None once it is taken into the chain."""
        if not raw.endswith(b"\n"):
            return "is cut short (no line end): a torn write, dropped at the bot's next start or append"
        try:
            record = json.loads(raw)
        except ValueError:
            return "is not valid JSON"
        if problem := shape_problem(record):
            return problem
        if is_keyed(record):
            if self.key is not None and record["hash"] != record_hash(record, self.key):
                return "does not match its HMAC-SHA256 (altered, or written with another key)"
            self.keyed_from = self.keyed_from or number
        elif self.keyed_from is not None:
            return "is unkeyed after keyed records (rewritten without the key)"
        elif record["hash"] != record_hash(record):
            return "was altered (its hash does not match its content)"
        if record["seq"] != number:
            return f"has seq {record['seq']} where {number} belongs (a record was deleted or moved)"
        if record["prev_hash"] != self.prev:
            return "does not follow the record before it (a record was deleted, moved or altered)"
        if recovery := _recovery(record):
            self.recoveries.append(recovery)
        self.prev, self.count = record["hash"], number
        self.recent.append(self.prev)
        return None


def verify(path: str | Path, key: bytes | None = None) -> VerifyResult:
    """Check the whole chain (HMACs too, given the key) and the head; name the first broken record."""
    path = Path(path)
    chain = _Chain(check_key(key))
    try:
        for number, raw in enumerate(_lines(path), start=1):
            if problem := chain.add(number, raw):
                return chain.result(False, number, f"record {number} {problem}")
    except OSError as exc:
        return VerifyResult(False, 0, None, f"cannot read {path}: {exc.strerror or exc}")
    if failure := _head_problem(path, chain):
        return failure
    count, keyed_from = chain.count, chain.keyed_from
    if keyed_from is not None and key is None:
        span = f"record {count}" if keyed_from == count else f"records {keyed_from}–{count}"
        reason = f"{span} are keyed (HMAC-SHA256): without the key only their order and links were checked"
        return chain.result(False, None, reason, key_needed=True)
    if key is not None and keyed_from is None and count:
        return chain.result(False, None, "no record is keyed: the log was written, or rewritten, without the key")
    return chain.result(True, None, f"{count} records, chain intact" if count else "empty audit log")


def _head_problem(path: Path, chain: _Chain) -> VerifyResult | None:
    count, recent = chain.count, chain.recent
    head = head_path(path)
    try:
        head_seq, head_hash = read_head(path)
    except FileNotFoundError:
        if count == 0:
            return None
        return chain.result(False, None, f"{head.name} is missing: records cut from the end would go unseen")
    except (OSError, ValueError):
        return chain.result(False, None, f"{head.name} is unreadable")
    if head_seq > count:
        missing = f"record {head_seq}" if head_seq == count + 1 else f"records {count + 1}–{head_seq}"
        return chain.result(False, count + 1, f"{missing} cut from the end (the head names record {head_seq})")
    # A crash between writing a record and the head leaves the head one record behind.
    expected = {count: recent[-1] if recent else None, count - 1: recent[0] if len(recent) == 2 else None}
    if expected.get(head_seq) != head_hash:
        return chain.result(False, None, f"{head.name} does not match the log's last records")
    return None
