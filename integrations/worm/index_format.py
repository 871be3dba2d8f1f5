"""The binary format of a WORM file's index, and its checked reading.

An index holds, for one closed ``.jsonl[.gz]`` file, where each (tenant, outcome) pair's
lines start, so that a query reads and decodes only its candidate lines. Layout
(little-endian)::

    header     magic "FLKWORMI", version u16, offset width u16 (4 or 8), directory length
               u32, directory CRC-32 u32, body length u64
    directory  msgpack: the data file (path relative to the WORM root, size, mtime_ns),
               its line count and time bounds, and per tenant, per outcome, a section:
               its line count, the offset of its starts in the body and their CRC-32
    body       per section, the byte offsets of its lines' starts, ascending

Lines that are not records (not JSON, no tenant) sit under tenant ``""``, so that every
query still decodes, and counts, them. Nothing read is trusted unchecked: a wrong magic,
version, length or checksum, or a directory for another file or another size or mtime,
makes the index unusable (``CorruptIndex`` or ``None``), never a source of answers.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

MAGIC = b"FLKWORMI"
VERSION = 1
HEADER = struct.Struct("<8sHHIIQ")
NOT_RECORDS = ""  # the tenant of lines that are no record
_TYPECODE = {4: "I", 8: "Q"}
_SWAP = sys.byteorder != "little"
_HEAD_READ = 16 << 10  # the first read of an index file: its header and, usually, its directory
_MAX_DIRECTORY = 64 << 20


class CorruptIndex(Exception):
    """An index file that cannot be trusted; it is ignored and rebuilt."""


class Section(msgspec.Struct, array_like=True, frozen=True):
    outcome: str
    count: int
    offset: int  # of its starts, from the start of the body
    crc: int


class Directory(msgspec.Struct, array_like=True, frozen=True):
    path: str  # the data file, relative to the WORM root
    size: int
    mtime_ns: int
    lines: int
    lower: float | None  # the first record's ts, epoch seconds
    upper: float | None  # the last record's ts
    # Each tenant's sections, msgpack-encoded: a query decodes only its own.
    tenants: dict[str, msgspec.Raw]


_DIRECTORY = msgspec.msgpack.Decoder(Directory)
_SECTIONS = msgspec.msgpack.Decoder(list[Section])
_ENCODER = msgspec.msgpack.Encoder()


def _typecode(width: int) -> str:
    code = _TYPECODE[width]
    if array(code).itemsize != width:  # not on the usual 64-bit platforms
        raise RuntimeError(f"no {width}-byte array type on this platform")
    return code


def width_for(size: int) -> int:
    return 4 if size < 1 << 32 else 8


def encode(head: Directory, starts: dict[tuple[str, str], array], width: int) -> bytes:
    """One index file; ``head.tenants`` is filled in from ``starts`` (each ascending)."""
    body: list[bytes] = []
    tenants: dict[str, list[Section]] = {}
    offset = 0
    for (tenant, outcome), values in sorted(starts.items()):
        if _SWAP:
            values = array(values.typecode, values)
            values.byteswap()
        raw = values.tobytes()
        tenants.setdefault(tenant, []).append(Section(outcome, len(values), offset, zlib.crc32(raw)))
        body.append(raw)
        offset += len(raw)
    encoded = {tenant: msgspec.Raw(_ENCODER.encode(sections)) for tenant, sections in tenants.items()}
    directory = _ENCODER.encode(msgspec.structs.replace(head, tenants=encoded))
    header = HEADER.pack(MAGIC, VERSION, width, len(directory), zlib.crc32(directory), offset)
    return b"".join([header, directory, *body])


@dataclass(frozen=True)
class FileIndex:
    """A checked index: its directory, and its body read on demand (from ``blob`` when
    the index was just built in memory, else from ``path``)."""

    path: Path | None
    blob: bytes | None
    directory: Directory
    width: int
    body_at: int
    body_len: int

    def sections(self, tenant: str, outcome: str | None) -> list[Section]:
        """The sections a query of ``tenant`` (and ``outcome``; None for any) reads: its own,
        and the lines that are no record (decoded by every query, as a direct scan would, so
        that they are counted)."""
        found = [s for s in self._tenant(tenant) if outcome is None or s.outcome == outcome]
        return found + self._tenant(NOT_RECORDS)

    def _tenant(self, tenant: str) -> list[Section]:
        raw = self.directory.tenants.get(tenant)
        if raw is None:
            return []
        try:
            sections = _SECTIONS.decode(raw)
        except msgspec.DecodeError as exc:
            raise CorruptIndex(f"{self._name()}: sections do not decode: {exc}") from None
        for k in sections:
            if k.count < 0 or k.offset < 0 or k.offset + k.count * self.width > self.body_len:
                raise CorruptIndex(f"{self._name()}: a section lies outside the body")
        return sections

    def has(self, tenant: str, outcome: str | None) -> bool:
        """Whether a query must read the file at all."""
        return bool(self.sections(tenant, outcome))

    def starts(self, sections: Iterable[Section]) -> list[int]:
        """The line starts of ``sections``, ascending; CorruptIndex when a checksum fails."""
        wanted = sorted(sections, key=lambda k: k.offset)
        merged: list[int] = []
        for key, raw in zip(wanted, self._sections(wanted), strict=True):
            if zlib.crc32(raw) != key.crc:
                raise CorruptIndex(f"{self._name()}: a section's checksum does not match")
            values = array(_typecode(self.width))
            values.frombytes(raw)
            if _SWAP:
                values.byteswap()
            merged.extend(values)
        if len(wanted) > 1:
            merged.sort()
        return merged

    def _sections(self, keys: list[Section]) -> Iterator[bytes]:
        if self.blob is not None:
            for k in keys:
                at = self.body_at + k.offset
                yield self.blob[at : at + k.count * self.width]
            return
        assert self.path is not None
        with open(self.path, "rb", buffering=0) as fh:
            for k in keys:
                fh.seek(self.body_at + k.offset)
                yield fh.read(k.count * self.width)

    def _name(self) -> str:
        return str(self.path) if self.path else self.directory.path


def parse(head: bytes, total: int, *, path: Path | None = None, blob: bytes | None = None) -> FileIndex:
    """Check an index from its first bytes (``total`` long in all); CorruptIndex if bad."""
    if len(head) < HEADER.size:
        raise CorruptIndex("shorter than its header")
    magic, version, width, dir_len, dir_crc, body_len = HEADER.unpack_from(head)
    if magic != MAGIC:
        raise CorruptIndex("not a WORM index")
    if version != VERSION:
        raise CorruptIndex(f"index version {version}, not {VERSION}")
    if width not in _TYPECODE or dir_len > _MAX_DIRECTORY or HEADER.size + dir_len + body_len != total:
        raise CorruptIndex("lengths do not add up")
    raw = head[HEADER.size : HEADER.size + dir_len]
    if len(raw) != dir_len or zlib.crc32(raw) != dir_crc:
        raise CorruptIndex("directory checksum does not match")
    try:
        directory = _DIRECTORY.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptIndex(f"directory does not decode: {exc}") from None
    return FileIndex(path, blob, directory, width, HEADER.size + dir_len, body_len)


def read(path: Path) -> FileIndex:
    """The index file at ``path``, checked; OSError if unreadable, CorruptIndex if bad."""
    with open(path, "rb", buffering=0) as fh:
        total = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(_HEAD_READ)
        if len(head) >= HEADER.size:
            dir_len = HEADER.unpack_from(head)[3]
            if HEADER.size + dir_len > len(head) and dir_len <= _MAX_DIRECTORY:
                head += fh.read(HEADER.size + dir_len - len(head))
    return parse(head, total, path=path)


def describes(index: FileIndex, rel: str, size: int, mtime_ns: int) -> bool:
    """Whether the index was built from this very file as it is now."""
    d = index.directory
    return d.path == rel and d.size == size and d.mtime_ns == mtime_ns
