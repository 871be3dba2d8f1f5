"""Bounded block reading of JSONL files and the byte pre-filter.

Files are read in fixed-size blocks, forwards or (plain files) backwards, and never
whole: memory stays within one block plus one line of at most ``max_line`` bytes. A
block's complete lines form a *region* that is searched in place with ``bytes.find``
for the tenant's id, so only the tenant's lines are ever sliced out and decoded.

Every region also gets a cheap structural check: as many ``"tenant_id"`` keys as lines,
all spelt the same way. The spelling (``"tenant_id":"`` or
``"tenant_id": "``...) is learnt from the data, and the needle is that spelling
followed by the id (then a closing quote): a long needle that ``bytes.find`` skips
through fast. When the spelling varies the short ``"X"`` needle is used instead (the
decoded record is compared exactly anyway); when some line lacks the key or has it
twice, the region is walked line by line and the odd lines are decoded so that they
are counted as malformed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from integrations.worm.records import TOO_LONG, ScanStats

COMPACT_KEY = b'"tenant_id":"'
KEY = b'"tenant_id"'
NL = b"\n"
QUOTE = ord('"')

# Ids whose JSON encoding is the id itself between quotes, so a byte search is exact.
PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,252}")


class Prefilter:
    """The byte needles of one scan; learns how the writer spells the tenant_id key."""

    def __init__(self, tenant: str, outcome: str | None) -> None:
        for label, value in (("tenant id", tenant), ("outcome", outcome)):
            if value is not None and not PLAIN_ID.fullmatch(value):
                raise ValueError(f"invalid {label} {value[:40]!r}: letters, digits and . _ : @ + - only")
        self.tenant = tenant.encode()
        self.quoted = b'"' + self.tenant + b'"'
        self.outcome = f'"{outcome}"'.encode() if outcome else None
        self.key_form = COMPACT_KEY  # the key up to its value's opening quote
        self.longer_ids = False  # ids that start with this one (t12 for t1) are common

    def hit(self, line: bytes) -> bool:
        return self.quoted in line and (self.outcome is None or self.outcome in line)

    def learn(self, buf: bytes, start: int, end: int, keys: int) -> bool:
        """Take the region's first key spelling if all its ``keys`` have it; False if none fits."""
        i = buf.find(KEY, start, end)
        j = buf.find(b'"', i + len(KEY), min(end, i + len(KEY) + 16)) if i >= 0 else -1
        if j < 0:
            return False
        form = buf[i : j + 1]
        if form[len(KEY) : -1].strip(b" \t") != b":" or buf.count(form, start, end) != keys:
            return False
        self.key_form = form
        return True


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines ``buf[start:end]`` (a region), or one line when ``single``."""

    buf: bytes
    start: int
    end: int
    single: bool


def _lines_with(buf: bytes, start: int, end: int, needle: bytes, quote_after: bool) -> tuple[list[bytes], int]:
    """The lines of ``buf[start:end]`` that hold ``needle`` (followed by '"' if asked), and
    how many hits that quote check turned down."""
    out: list[bytes] = []
    find, rfind, size = buf.find, buf.rfind, len(needle)
    rejected = 0
    i = find(needle, start, end)
    while i >= 0:
        if quote_after and buf[i + size] != QUOTE:  # a longer id: acme1 for acme
            rejected += 1
            i = find(needle, i + size, end)
            continue
        a = rfind(NL, start, i) + 1 or start
        b = find(NL, i, end) + 1
        out.append(buf[a:b])
        i = find(needle, b, end)
    return out, rejected


def _odd(line: bytes) -> bool:
    # Not exactly one tenant_id key, or unterminated (a file's last line: maybe truncated).
    return line.count(KEY) != 1 or not line.endswith(NL)


def split(chunk: Chunk, pf: Prefilter, stats: ScanStats) -> tuple[list[bytes], list[bytes]]:
    """(hits, suspects) of a chunk, in file order. Hits hold the tenant's id (and the
    outcome's, when one is asked for) and are decoded and compared exactly; suspects are
    structurally odd lines, decoded only so that they are counted when malformed."""
    buf, start, end = chunk.buf, chunk.start, chunk.end
    if chunk.single:
        stats.lines += 1
        if pf.hit(buf):
            return [buf], []
        return [], [buf] if _odd(buf) else []
    lines = buf.count(NL, start, end)
    stats.lines += lines
    keys = buf.count(KEY, start, end)
    # Every key spelt as learnt (a key in another spelling on one line, two on another, would
    # also give one per line on average): then a record's key and id are the needle.
    if keys == lines and (buf.count(pf.key_form, start, end) == keys or pf.learn(buf, start, end, keys)):
        if pf.longer_ids:
            found, _ = _lines_with(buf, start, end, pf.key_form + pf.quoted[1:], quote_after=False)
        else:
            # Stopping short of the closing quote makes bytes.find faster (a needle ending
            # in a rarer byte than '"'), unless ids extending this one are common.
            found, rejected = _lines_with(buf, start, end, pf.key_form + pf.tenant, quote_after=True)
            pf.longer_ids = rejected > len(found) + 16
    elif keys == lines:
        found, _ = _lines_with(buf, start, end, pf.quoted, quote_after=False)
    else:
        return _split_lines(buf, start, end, pf.hit)
    return ([ln for ln in found if pf.outcome in ln] if pf.outcome else found), []


def _split_lines(buf: bytes, start: int, end: int, hit: Callable[[bytes], bool]) -> tuple[list[bytes], list[bytes]]:
    """The slow path, line by line, for a region where some line is odd."""
    hits: list[bytes] = []
    suspects: list[bytes] = []
    while start < end:
        stop = buf.find(NL, start, end) + 1
        line = buf[start:stop]
        start = stop
        if hit(line):
            hits.append(line)
        elif _odd(line):
            suspects.append(line)
    return hits, suspects


def read_forward(f: BinaryIO, block: int, max_line: int, stats: ScanStats) -> Iterator[Chunk]:
    """Chunks of a stream from its start; works on gzip streams too."""
    carry = b""
    overlong = False  # inside a line already counted as too long: drop up to its newline
    while data := f.read(block):
        stats.bytes += len(data)
        first = data.find(NL)
        if first < 0:
            if not overlong:
                carry += data
                if len(carry) > max_line:
                    stats.skip(TOO_LONG)
                    carry, overlong = b"", True
            continue
        # The block's first line is whole only when nothing was carried into it.
        start = first + 1 if carry or overlong else 0
        if overlong:
            overlong = False
        elif carry:
            line = carry + data[: first + 1]
            if len(line) > max_line:
                stats.skip(TOO_LONG)
            else:
                yield Chunk(line, 0, len(line), single=True)
        last = data.rfind(NL)
        if start < last + 1:
            yield Chunk(data, start, last + 1, single=False)
        carry = data[last + 1 :]
    if carry and not overlong:
        yield Chunk(carry, 0, len(carry), single=True)


def read_backward(f: BinaryIO, block: int, max_line: int, stats: ScanStats) -> Iterator[Chunk]:
    """Chunks of a seekable file from its end: newest lines first (the lines inside a
    region are still in file order; the caller walks them in reverse)."""
    pos = f.seek(0, 2)
    carry = b""  # the head of the later block: the end of a line that began earlier
    overlong = False
    while pos > 0:
        size = min(block, pos)
        pos -= size
        f.seek(pos)
        data = f.read(size)
        stats.bytes += len(data)
        last = data.rfind(NL)
        if last < 0:
            if not overlong:
                carry = data + carry
                if len(carry) > max_line:
                    stats.skip(TOO_LONG)
                    carry, overlong = b"", True
            continue
        if overlong:
            overlong = False
        elif last + 1 < len(data) or carry:
            line = data[last + 1 :] + carry
            if len(line) > max_line:
                stats.skip(TOO_LONG)
            else:
                yield Chunk(line, 0, len(line), single=True)
        first = data.find(NL)
        if first < last:
            yield Chunk(data, first + 1, last + 1, single=False)
        carry = data[: first + 1]
    if carry and not overlong:
        yield Chunk(carry, 0, len(carry), single=True)
