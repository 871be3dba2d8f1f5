"""Where a log's last whole record ends, what a torn write left after it, and the head file.

A write cut short by a crash or a full disk leaves bytes after the last record that are not a
record: half a line, a line without its line end, NUL bytes where the filesystem grew the file
but never wrote it, or a line holding such NULs. None of them was acknowledged (an append
returns only once its line, line end included, is on disk), so all of them are dropped, even a
line that parses but lacks its line end: its append failed, and its caller was told so. More
than one bad line after the last record is not a torn write; that is left for a human.

The head file beside the log (``<log>.head``) names the last acknowledged record (seq and hash),
so records cut from the end are noticed. It is one fixed-width line rewritten in place: a write
that small lands whole or not at all, and needs no directory fsync once the file exists.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.audit_records import GENESIS, parse_record

HEAD_WIDTH = 128
# How much of the end is read first (most records are far smaller); grown ×4 as needed.
_CHUNK = 64 * 1024


class TailUnreadable(Exception):
    """The log ends in more than a torn write: its last lines are not records."""


@dataclass(frozen=True)
class Tail:
    # The offset just past the last whole record: where the next record goes.
    end: int
    # The file's size; the bytes from ``end`` to ``size`` are a torn write.
    size: int
    # The last whole record, or None for a log without one.
    last: dict[str, Any] | None

    @property
    def seq(self) -> int:
        return 0 if self.last is None else int(self.last["seq"])

    @property
    def hash(self) -> str:
        return GENESIS if self.last is None else str(self.last["hash"])

    @property
    def torn(self) -> int:
        return self.size - self.end


def _line_ending_at(data: bytes, end: int) -> tuple[int, bytes]:
    """(start, line) of the line whose line end is ``data[end]``."""
    start = data.rfind(b"\n", 0, end) + 1
    return start, data[start : end + 1]


def read_tail(fd: int, size: int) -> Tail:
    """The tail of the log open at ``fd`` (``size`` bytes long)."""
    span = _CHUNK
    while True:
        base = max(0, size - span)
        data = os.pread(fd, size - base, base)
        # Three line ends: the last line's, the one before it, and the one before a bad last line.
        if data.count(b"\n") >= 3 or base == 0:
            break
        span *= 4
    last_end = data.rfind(b"\n")
    if last_end < 0:
        return Tail(0, size, None)
    start, line = _line_ending_at(data, last_end)
    record = parse_record(line)
    if record is not None:
        return Tail(base + last_end + 1, size, record)
    if start == 0:
        return Tail(0, size, None)
    record = parse_record(_line_ending_at(data, start - 1)[1])
    if record is None:
        raise TailUnreadable("its last two lines are not audit records")
    return Tail(base + start, size, record)


def digest_of(fd: int, start: int, end: int) -> str:
    """SHA-256 of bytes ``start``..``end`` of ``fd``: what was dropped, without keeping it."""
    digest = hashlib.sha256()
    while start < end:
        chunk = os.pread(fd, min(_CHUNK, end - start), start)
        if not chunk:
            break
        digest.update(chunk)
        start += len(chunk)
    return digest.hexdigest()


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def read_head(path: Path) -> tuple[int, str]:
    """(seq, hash) the head of log ``path`` names; OSError when unreadable, ValueError when garbled."""
    try:
        data = json.loads(head_path(path).read_bytes())
        return int(data["seq"]), str(data["hash"])
    except (KeyError, TypeError) as exc:
        raise ValueError("not a head") from exc


def head_line(seq: int, digest: str) -> bytes:
    return (json.dumps({"seq": seq, "hash": digest}).ljust(HEAD_WIDTH - 1) + "\n").encode("ascii")
