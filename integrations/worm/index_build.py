"""Build the index of one WORM file: one forward read, every line decoded once.

The common line is a JSON object with a string ``tenant_id`` and ``verify_outcome``:
msgspec decodes just those two fields. Any other line is decoded with the scanner's own
reading of a line (``records.fields``), so that it lands under the tenant the scanner
would give it, or under the lines that are no record.
"""

from __future__ import annotations

import gzip
import os
from array import array
from collections import defaultdict, deque
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

import msgspec

from integrations.worm.index_format import NOT_RECORDS, Directory, FileIndex, encode, parse, width_for
from integrations.worm.records import fields, line_ts

BLOCK = 8 << 20
_BOUND_LINES = 64  # lines tried at each end of a file for its time bounds


class Key(msgspec.Struct, frozen=True, gc=False):
    """A line's (tenant, outcome), straight from msgspec: hashable, so lines group by it."""

    tenant_id: str = NOT_RECORDS
    verify_outcome: str = ""


_KEY = msgspec.json.Decoder(Key)
_NOT_A_RECORD = Key()
_PLUS_ONE = (1).__add__  # a line's length plus its newline


def _line_key(line: bytes) -> Key | None:
    """The key of one line as the scanner reads it; None for a blank line (never a record)."""
    if not line.strip():
        return None
    obj = fields(line)
    if isinstance(obj, str) or not isinstance(obj.tenant_id, str) or not obj.tenant_id:
        return _NOT_A_RECORD
    return Key(obj.tenant_id, obj.verify_outcome if isinstance(obj.verify_outcome, str) else "")


def _keys(lines: list[bytes]) -> list[Key | None]:
    keys: list[Key | None] = []
    while len(keys) < len(lines):
        try:
            # list.extend keeps what it took from the map before a line failed to decode.
            keys.extend(map(_KEY.decode, lines[len(keys) :] if keys else lines))
        except msgspec.DecodeError:  # not an object of two strings: read as the scanner does
            keys.append(_line_key(lines[len(keys)]))
    return keys


class _Builder:
    def __init__(self, max_line: int, typecode: str) -> None:
        self.max_line = max_line
        self.typecode = typecode
        self.starts: dict[Key | None, array] = {}
        self.lines = 0
        self.pos = 0  # where the next line starts
        self.head: list[bytes] = []  # the file's first lines, for its lower time bound
        self.tail: list[bytes] = []  # its last lines, for the upper bound

    def add(self, lines: list[bytes]) -> None:
        """Complete lines (without their newlines) that follow the previous ones."""
        groups: defaultdict[Key | None, list[int]] = defaultdict(list)
        # accumulate() also yields where the next block starts: one more item than lines.
        starts = accumulate(map(_PLUS_ONE, map(len, lines)), initial=self.pos)
        # groups[key].append(start) for every line, without a Python loop (the hot spot).
        deque(map(list.append, map(groups.__getitem__, _keys(lines)), starts), maxlen=0)
        for key, found in groups.items():
            self.starts.setdefault(key, array(self.typecode)).extend(found)
        self.pos += sum(map(len, lines)) + len(lines)
        self.lines += len(lines)
        if len(self.head) < _BOUND_LINES:
            self.head += lines[: _BOUND_LINES - len(self.head)]
        self.tail = (self.tail + lines if len(lines) < _BOUND_LINES else lines)[-_BOUND_LINES:]

    def skip(self, length: int, terminated: bool) -> None:
        """A line too long to decode: listed with the lines that are no record."""
        self.starts.setdefault(_NOT_A_RECORD, array(self.typecode)).append(self.pos)
        self.pos += length + terminated
        self.lines += 1

    def read(self, stream: BinaryIO) -> None:
        carry: list[bytes] = []  # the pieces of a line that began in an earlier block
        carried = 0
        overlong = False  # inside a line already listed as too long
        while data := stream.read(BLOCK):
            lines = data.split(b"\n")
            rest = lines.pop()  # after the block's last newline: the start of the next line
            if lines:
                first = b"".join([*carry, lines[0]])
                if overlong:
                    self.pos += len(first) + 1
                    overlong = False
                    lines = lines[1:]
                elif len(first) > self.max_line:
                    self.skip(len(first), True)
                    lines = lines[1:]
                else:
                    lines[0] = first
                self.add(lines)
                carry, carried = [], 0
            carry.append(rest)
            carried += len(rest)
            if carried > self.max_line and not overlong:
                self.skip(carried, False)  # its start is listed now; the rest is skipped
                overlong, carry, carried = True, [], 0
            elif overlong:
                self.pos += carried
                carry, carried = [], 0
        last = b"".join(carry)
        if last.strip() and not overlong:
            self.add([last])  # the file's unterminated last line, perhaps a torn write
            self.pos -= 1  # that has no newline

    def bounds(self) -> tuple[float | None, float | None]:
        lower = next((ts for ts in map(line_ts, self.head) if ts), None)
        upper = next((ts for ts in map(line_ts, reversed(self.tail)) if ts), None)
        return (lower.timestamp() if lower else None), (upper.timestamp() if upper else None)


def build(path: Path, rel: str, gz: bool, *, max_line: int = 1 << 20) -> FileIndex | None:
    """The index of the file at ``path`` (``rel`` from the WORM root) as it is now; None
    when the file changed while it was read. OSError, EOFError or zlib.error if unreadable."""
    with open(path, "rb", buffering=0) as raw:
        before = os.fstat(raw.fileno())
        # Offsets into a compressed file's contents need not fit in 32 bits as its size does.
        builder = _Builder(max_line, "Q" if gz or width_for(before.st_size) == 8 else "I")
        if gz:
            with gzip.GzipFile(fileobj=raw) as stream:
                builder.read(stream)
        else:
            builder.read(raw)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return None
    builder.starts.pop(None, None)  # blank lines
    width = width_for(builder.pos)
    code = "I" if width == 4 else "Q"
    starts = {
        (k.tenant_id, k.verify_outcome): v if v.typecode == code else array(code, v)
        for k, v in builder.starts.items()
        if k is not None
    }
    lower, upper = builder.bounds()
    head = Directory(rel, before.st_size, before.st_mtime_ns, builder.lines, lower, upper, {})
    blob = encode(head, starts, width)
    return parse(blob, len(blob), blob=blob)
