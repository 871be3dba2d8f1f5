"""The bot's own audit trail: an append-only JSONL file that cannot be edited silently.

Each record is ``{seq, at, actor, action, incident_id, tenant, details, prev_hash, hash}``;
``hash`` is the SHA-256 of the record's canonical JSON without ``hash``, and ``prev_hash`` the
previous record's hash, so editing, deleting or reordering a record breaks the chain at that
record. A head file beside the log (``<log>.head``) holds the last seq and hash, so records cut
from the end are noticed too. Secret-looking values are redacted before they are written.

    log = AuditLog("/var/lib/flk/audit.jsonl")
    log.append("U123", "mitigation.applied", incident_id="inc-1", tenant="acme", details={...})
    verify("/var/lib/flk/audit.jsonl")  # VerifyResult(ok, records, first_broken, reason)
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integrations.store.scrub import scrub, scrub_text

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "action", "incident_id", "tenant", "details", "prev_hash", "hash")
# How much of the end is read first to find the last record (most records are far smaller).
_TAIL_CHUNK = 64 * 1024


class AuditError(Exception):
    """The log cannot be appended to (unreadable, or its last record is cut short)."""


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


class AuditLog:
    """Appends are serialised by a lock within the process and ``flock`` across processes."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        # (file size, seq, hash) after this process's last append: skips re-reading the tail.
        self._last: tuple[int, int, str] | None = None

    def append(
        self,
        actor: str,
        action: str,
        *,
        incident_id: str | None = None,
        tenant: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Write one record and return it (as written, secrets redacted)."""
        body = {
            "at": (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "actor": scrub_text(str(actor)),
            "action": scrub_text(str(action)),
            "incident_id": None if incident_id is None else scrub_text(str(incident_id)),
            "tenant": None if tenant is None else scrub_text(str(tenant)),
            # Through JSON once, so that what is hashed is what a reader will parse back.
            "details": scrub(json.loads(json.dumps(dict(details or {}), default=str))),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                size = os.fstat(handle.fileno()).st_size
                seq, prev = self._tail(handle, size)
                record = {**body, "seq": seq + 1, "prev_hash": prev}
                record["hash"] = record_hash(record)
                line = canonical(record) + b"\n"
                handle.write(line)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
                self._last = (size + len(line), record["seq"], record["hash"])
                self._write_head(record["seq"], record["hash"])
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return record

    async def append_async(self, actor: str, action: str, **fields: Any) -> dict[str, Any]:
        """``append`` on a worker thread: the event loop does not wait for the disk."""
        return await asyncio.to_thread(self.append, actor, action, **fields)

    def _tail(self, handle: Any, size: int) -> tuple[int, str]:
        """(seq, hash) of the last record, or (0, GENESIS) for an empty log."""
        if self._last is not None and self._last[0] == size:
            return self._last[1], self._last[2]
        if size == 0:
            return 0, GENESIS
        span = _TAIL_CHUNK
        while True:
            # Back from the end until the line before the last one ends (or the file starts).
            handle.seek(max(0, size - span))
            chunk = handle.read()
            if not chunk.endswith(b"\n"):
                raise AuditError(f"{self.path}: the last record is cut short; run `flk audit verify` before appending")
            if b"\n" in chunk[:-1] or span >= size:
                break
            span *= 4
        last = chunk[:-1].rsplit(b"\n", 1)[-1]
        try:
            record = json.loads(last)
            return int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"{self.path}: the last record is unreadable; run `flk audit verify`") from None

    def _write_head(self, seq: int, digest: str) -> None:
        head = head_path(self.path)
        temp = head.with_name(head.name + ".tmp")
        temp.write_text(json.dumps({"seq": seq, "hash": digest}) + "\n", encoding="utf-8")
        os.replace(temp, head)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    # Records that chain correctly, from the first up to the first broken one.
    records: int
    # 1-based number of the first record that is broken or missing; None when ok or unreadable.
    first_broken: int | None
    reason: str


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def _check(number: int, raw: bytes, prev: str) -> tuple[str | None, str]:
    """(the problem with record ``number``, or None; its hash)."""
    if not raw.endswith(b"\n"):
        return "is cut short (no line end)", ""
    try:
        record = json.loads(raw)
    except ValueError:
        return "is not valid JSON", ""
    if not isinstance(record, dict) or set(record) != set(FIELDS):
        return "does not have the audit record fields", ""
    if record["hash"] != record_hash(record):
        return "was altered (its hash does not match its content)", ""
    if record["seq"] != number:
        return f"has seq {record['seq']} where {number} belongs (a record was deleted or moved)", ""
    if record["prev_hash"] != prev:
        return "does not follow the record before it (a record was deleted, moved or altered)", ""
    return None, record["hash"]


def verify(path: str | Path) -> VerifyResult:
    """Check the whole chain and the head; name the first broken record."""
    path = Path(path)
    prev, count = GENESIS, 0
    # The last two records' hashes: the head names one of them.
    recent: deque[str] = deque(maxlen=2)
    try:
        for number, raw in enumerate(_lines(path), start=1):
            problem, prev = _check(number, raw, prev)
            if problem:
                return VerifyResult(False, number - 1, number, f"record {number} {problem}")
            count = number
            recent.append(prev)
    except OSError as exc:
        return VerifyResult(False, 0, None, f"cannot read {path}: {exc.strerror or exc}")
    head = head_path(path)
    try:
        data = json.loads(head.read_text(encoding="utf-8"))
        head_seq, head_hash = int(data["seq"]), str(data["hash"])
    except FileNotFoundError:
        if count == 0:
            return VerifyResult(True, 0, None, "empty audit log")
        return VerifyResult(False, count, None, f"{head.name} is missing: records cut from the end would go unseen")
    except (OSError, ValueError, KeyError, TypeError):
        return VerifyResult(False, count, None, f"{head.name} is unreadable")
    if head_seq > count:
        missing = f"record {head_seq}" if head_seq == count + 1 else f"records {count + 1}–{head_seq}"
        return VerifyResult(False, count, count + 1, f"{missing} cut from the end (the head names record {head_seq})")
    # A crash between writing a record and the head leaves the head one record behind.
    expected = {count: recent[-1] if recent else None, count - 1: recent[0] if len(recent) == 2 else None}
    if expected.get(head_seq) != head_hash:
        return VerifyResult(False, count, None, f"{head.name} does not match the log's last records")
    return VerifyResult(True, count, None, f"{count} records, chain intact")
