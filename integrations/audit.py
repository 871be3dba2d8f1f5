"""The bot's own audit trail: an append-only JSONL file that cannot be edited silently.

Records are chained (``integrations.audit_records``): editing, deleting or reordering one breaks
the chain at that record, and the head file names the last one, so records cut from the end are
noticed too. With a key (``FLK_AUDIT_KEY``, kept off the volume) each hash is an HMAC-SHA256, so
whoever can write the file still cannot rewrite it consistently. Secret-looking values, and the
key itself, are redacted before anything is written.

An append returns once its record and the head are on disk (fsync); appends that arrive while
one is being written share the next write and fsync (group commit), and processes take turns
with ``flock``. When a record cannot be made durable (disk full, read-only, no permission, a
log damaged beyond a torn write, the wrong key) the append raises ``AuditUnavailable`` and
leaves nothing of the record behind: whatever needed auditing must not go ahead. A torn write
left by a crash (``integrations.audit_tail``) is dropped by the next append or ``recover()``,
and an ``audit.recovered`` record names how many bytes went and their SHA-256, never the bytes.

    log = AuditLog("/var/lib/flk/audit.jsonl", key=audit_key(os.environ.get("FLK_AUDIT_KEY")))
    log.recover()  # at start: drops a torn tail; raises AuditUnavailable when it cannot write
    await log.append_async("U123", "mitigation.applied", incident_id="inc-1", tenant="acme", details={...})
    verify("/var/lib/flk/audit.jsonl", key=...)  # VerifyResult(ok, records, first_broken, reason, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integrations.audit_records import (
    GENESIS,
    HMAC_SHA256,
    MAC_FIELD,
    RECOVERED,
    SYSTEM_ACTOR,
    audit_key,
    canonical,
    check_key,
    is_keyed,
    record_hash,
)
from integrations.audit_tail import Tail, TailUnreadable, digest_of, head_line, head_path, read_head, read_tail
from integrations.audit_verify import Recovery, VerifyResult, verify
from integrations.store.scrub import REDACTED, scrub, scrub_text

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditUnavailable",
    "Recovery",
    "VerifyResult",
    "audit_key",
    "head_path",
    "record_hash",
    "verify",
]


class AuditUnavailable(Exception):
    """A record could not be written and made durable; nothing of it was kept."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"audit log {path} unavailable: {why}")
        self.path, self.why = path, why


@dataclass
class _Pending:
    """One append waiting for its turn; whoever writes it fills in ``record`` or ``failure``."""

    body: dict[str, Any]
    record: dict[str, Any] | None = None
    failure: AuditUnavailable | None = None


def _now() -> str:
    return _stamp(datetime.now(UTC))


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _without(value: Any, secret: str) -> Any:
    """``value`` with ``secret`` redacted from every string in it."""
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, dict):
        return {_without(k, secret): _without(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, secret) for v in value]
    return value


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    """Makes a file created in ``folder`` survive a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditLog:
    """Appends are serialised by a lock within the process and ``flock`` across processes.

    ``key``: the HMAC key (at least 16 bytes), or None for plain SHA-256. ``fsync=False`` is for
    tests and benchmarks only: a crash may then lose acknowledged records.
    """

    def __init__(self, path: str | Path, *, key: bytes | None = None, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._key = check_key(key)
        self._secret = None if key is None else key.decode("utf-8", "replace")
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._queue: list[_Pending] = []
        # The tail after this process's last write: skips re-reading it while no one else writes.
        self._tail: Tail | None = None
        # Torn tails already cut off whose record could not be written yet (written with the next).
        self._unrecorded: list[dict[str, Any]] = []

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r}, {'HMAC-SHA256' if self.keyed else 'SHA-256'})"

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
        """Write one record and return it (as written, secrets redacted); ``AuditUnavailable``
        when it cannot be made durable."""
        if action == RECOVERED:
            raise ValueError(f"{RECOVERED} records are the audit log's own")
        body = {
            "at": _stamp(at) if at else _now(),
            "actor": scrub_text(str(actor)),
            "action": scrub_text(str(action)),
            "incident_id": None if incident_id is None else scrub_text(str(incident_id)),
            "tenant": None if tenant is None else scrub_text(str(tenant)),
            # Through JSON once, so that what is hashed is what a reader will parse back.
            "details": scrub(json.loads(json.dumps(dict(details or {}), default=str))),
        }
        entry = _Pending(body if self._secret is None else _without(body, self._secret))
        with self._queue_lock:
            self._queue.append(entry)
        with self._write_lock:
            # A writer before us may have taken our record into its batch.
            if entry.record is None and entry.failure is None:
                with contextlib.suppress(AuditUnavailable):  # every entry of the batch holds it
                    self._run(self._take())
        if entry.failure is not None:
            raise AuditUnavailable(self.path, entry.failure.why) from entry.failure.__cause__
        assert entry.record is not None
        return entry.record

    async def append_async(self, actor: str, action: str, **fields: Any) -> dict[str, Any]:
        """``append`` on a worker thread: the event loop does not wait for the disk."""
        return await asyncio.to_thread(self.append, actor, action, **fields)

    def recover(self) -> dict[str, Any] | None:
        """Drop a torn tail now, as the first append would (call it at start); the
        ``audit.recovered`` record, or None when the log ended cleanly. Opening the log for
        writing, it raises ``AuditUnavailable`` when appends would fail."""
        with self._write_lock:
            return self._run(self._take())

    def _take(self) -> list[_Pending]:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        return batch

    def _run(self, batch: list[_Pending]) -> dict[str, Any] | None:
        """Write ``batch`` in one go; the recovered record, if a torn tail was dropped."""
        try:
            records = self._commit([entry.body for entry in batch])
        except AuditUnavailable as failure:
            for entry in batch:
                entry.failure = failure
            raise
        recovered = records[: len(records) - len(batch)]
        for entry, record in zip(batch, records[len(recovered) :], strict=True):
            entry.record = record
        return recovered[-1] if recovered else None

    def _commit(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records written: those of torn tails dropped first, then one per body."""
        fd: int | None = None
        try:
            created = not self.path.exists()
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if created and self.fsync:
                _fsync_dir(self.path.parent)
            return self._write(fd, self._current_tail(fd), bodies)
        except OSError as exc:
            self._tail = None
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(self.path) else ""
            raise AuditUnavailable(self.path, f"{exc.strerror or exc}{where}") from exc
        finally:
            if fd is not None:
                os.close(fd)  # also releases the flock

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
        try:
            return os.open(self.path, flags, 0o666)
        except FileNotFoundError:  # its folder is not there yet
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o666)

    def _current_tail(self, fd: int) -> Tail:
        size = os.fstat(fd).st_size
        if self._tail is not None and self._tail.end == size:
            return self._tail
        try:
            tail = read_tail(fd, size)
        except TailUnreadable as exc:
            raise AuditUnavailable(self.path, f"{exc}, which is not a torn write; run `flk audit verify`") from None
        self._check_continues(tail)
        return tail

    def _check_continues(self, tail: Tail) -> None:
        """Refuse to write after a tail this log cannot honestly continue."""
        last = tail.last
        if last is not None and is_keyed(last):
            if self._key is None:
                raise AuditUnavailable(self.path, "its records are keyed (HMAC-SHA256) but no key was given")
            if record_hash(last, self._key) != last["hash"]:
                raise AuditUnavailable(
                    self.path,
                    "its last record's HMAC does not match this key: another key wrote it, or it was altered",
                )
        try:
            head_seq, _ = read_head(self.path)
        except (OSError, ValueError):  # no head yet, or a garbled one: nothing to compare
            return
        if head_seq > tail.seq:
            raise AuditUnavailable(
                self.path,
                f"the head names record {head_seq} but the last whole record is {tail.seq}: acknowledged "
                "records are damaged or cut, not a torn write; run `flk audit verify`",
            )

    def _write(self, fd: int, tail: Tail, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        dropped = list(self._unrecorded)
        if tail.torn:
            digest = digest_of(fd, tail.end, tail.size)
            dropped.append({"bytes_dropped": tail.torn, "sha256": digest, "after_seq": tail.seq})
        bodies = [self._recovered_body(details) for details in dropped] + bodies
        if not bodies:
            return []
        records = self._chain(tail, bodies)
        lines = b"".join(canonical(record) + b"\n" for record in records)
        truncated = head_touched = False
        try:
            if tail.torn:
                os.ftruncate(fd, tail.end)
                truncated = True
            _write_all(fd, lines)
            if self.fsync:
                os.fsync(fd)
            head_touched = True
            self._write_head(records[-1])
        except OSError:
            # Nothing of a failed batch may stay: its callers are told it was not recorded.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, tail.end)
                if self.fsync:
                    os.fsync(fd)
            if head_touched:
                with contextlib.suppress(OSError):
                    self._write_head(tail.last)
            if truncated:
                self._unrecorded = dropped
            raise
        self._unrecorded = []
        self._tail = Tail(tail.end + len(lines), tail.end + len(lines), records[-1])
        return records

    def _recovered_body(self, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "at": _now(),
            "actor": SYSTEM_ACTOR,
            "action": RECOVERED,
            "incident_id": None,
            "tenant": None,
            "details": details,
        }

    def _chain(self, tail: Tail, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seq, prev = tail.seq, tail.hash
        records = []
        for body in bodies:
            seq += 1
            record = {**body, "seq": seq, "prev_hash": prev}
            if self._key is not None:
                record[MAC_FIELD] = HMAC_SHA256
            record["hash"] = prev = record_hash(record, self._key)
            records.append(record)
        return records

    def _write_head(self, last: Mapping[str, Any] | None) -> None:
        head = head_path(self.path)
        if last is None:
            head.unlink(missing_ok=True)
            return
        created = not head.exists()
        fd = os.open(head, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            line = head_line(int(last["seq"]), str(last["hash"]))
            if os.pwrite(fd, line, 0) != len(line):
                raise OSError(errno.EIO, "short write to the head file")
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and self.fsync:
            _fsync_dir(head.parent)
