"""Read a file's candidate lines by their starts (from its index), a few ``pread``s at a time.

Starts close to each other are read in one go; every start must follow a newline (or be the
file's start), else the index does not describe the file and ``CorruptIndex`` is raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from integrations.worm.index_format import CorruptIndex
from integrations.worm.records import TOO_LONG, ScanStats

GAP = 4 << 10  # starts closer than this share a read
SPAN = 1 << 20  # the most one read covers
SLACK = 1 << 10  # read past a group's last start, for its line
NL = ord("\n")


def _groups(starts: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Index ranges [i, j) of starts read together."""
    out: list[tuple[int, int]] = []
    i, prev = 0, -1
    for j, s in enumerate(starts):
        if s <= prev or s >= size:
            raise CorruptIndex("line starts out of order or past the end of the file")
        if j > i and (s - prev > GAP or s - starts[i] > SPAN):
            out.append((i, j))
            i = j
        prev = s
    if starts:
        out.append((i, len(starts)))
    return out


def _rest_of_line(fd: int, start: int, size: int, max_line: int, stats: ScanStats) -> bytes | None:
    """A line that runs past a group's read; None when longer than ``max_line``."""
    parts: list[bytes] = []
    pos, length = start, 0
    while pos < size and length <= max_line:
        data = os.pread(fd, min(64 << 10, size - pos), pos)
        if not data:
            break
        stats.bytes += len(data)
        end = data.find(b"\n")
        if end >= 0:
            parts.append(data[: end + 1])
            length += end + 1
            break
        parts.append(data)
        length += len(data)
        pos += len(data)
    return b"".join(parts) if length <= max_line else None


def _read_group(fd: int, starts: Sequence[int], size: int, max_line: int, stats: ScanStats) -> list[bytes]:
    low = max(starts[0] - 1, 0)  # the byte before the first start: its line's boundary
    buf = os.pread(fd, min(starts[-1] + SLACK, size) - low, low)
    stats.bytes += len(buf)
    lines: list[bytes] = []
    for s in starts:
        at = s - low
        if s and buf[at - 1] != NL:
            raise CorruptIndex(f"no line starts at byte {s}")
        end = buf.find(b"\n", at, at + max_line + 1)
        if end >= 0:
            lines.append(buf[at : end + 1])
            continue
        line = buf[at : at + max_line + 1] if len(buf) - at > max_line else _rest_of_line(fd, s, size, max_line, stats)
        if line is None or len(line) > max_line:
            stats.skip(TOO_LONG)
        else:
            lines.append(line)
    return lines


def read_lines(
    fd: int, starts: Sequence[int], size: int, *, max_line: int, stats: ScanStats, backward: bool
) -> Iterator[bytes]:
    """The lines at ``starts`` (ascending) of a file of ``size`` bytes, in file order or
    reversed; each with its newline (the file's last line may have none)."""
    groups = _groups(starts, size)
    for i, j in reversed(groups) if backward else groups:
        lines = _read_group(fd, starts[i:j], size, max_line, stats)
        stats.lines += j - i
        yield from reversed(lines) if backward else lines
