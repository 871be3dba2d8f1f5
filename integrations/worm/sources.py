"""The files a scan reads, and one tenant's records out of each: through the file's index
when it has one (building it when the file is closed and read for the first time), else by
scanning the file directly with the byte pre-filter.

Either way every candidate line is decoded and its ``tenant_id`` (and outcome) compared
exactly: the index only narrows which lines are decoded, never decides a match.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

from integrations.errors import BackendError
from integrations.worm.blocks import Prefilter, read_backward, read_forward, split
from integrations.worm.index_build import build
from integrations.worm.index_format import CorruptIndex, FileIndex
from integrations.worm.index_lines import read_lines
from integrations.worm.index_store import QUIET, DataFile, IndexStore, data_files, is_closed
from integrations.worm.records import ScanStats, WormRecord, decode, line_ts

log = logging.getLogger(__name__)
Indexing = Literal["build", "use", "off"]
_PROBE = 16 << 10  # bytes read at each end of a file to find its time bounds
_UNREADABLE = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@dataclass(slots=True)
class WormFile:
    data: DataFile
    lower: datetime | None  # first record's ts; None when unknown
    upper: datetime | None  # newest record's ts or a bound on it; None when unknown
    index: FileIndex | None  # one that describes the file as it is now
    closed: bool  # done being written: indexed when first read

    @property
    def path(self) -> Path:
        return self.data.path


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _first_ts(lines: list[bytes]) -> datetime | None:
    for line in lines:
        if ts := line_ts(line):
            return ts
    return None


@dataclass
class Query:
    tenant: str
    outcome: str | None
    prefilter: Prefilter
    stats: ScanStats
    now: datetime


class Sources:
    def __init__(
        self,
        root: Path,
        *,
        block_size: int,
        max_line: int,
        gz_mtime_slack: timedelta,
        indexing: Indexing,
        store: IndexStore,
        quiet: timedelta = QUIET,
        clock: Callable[[], datetime],
    ) -> None:
        self.root = root
        self.block_size = block_size
        self.max_line = max_line
        self.gz_mtime_slack = gz_mtime_slack
        self.indexing = indexing
        self.store = store
        self.quiet = quiet
        self.clock = clock

    def query(self, tenant: str, outcome: str | None, stats: ScanStats) -> Query:
        return Query(tenant, outcome, Prefilter(tenant, outcome), stats, self.clock())

    # -- listing --------------------------------------------------------------------

    def files(self, q: Query, start: datetime, end: datetime) -> list[WormFile]:
        """The files of the window's day folders that may hold the query's records in it."""
        days = (end.date() - start.date()).days + 1
        stats = q.stats
        if not self.root.is_dir():
            stats.missing_root, stats.missing_days = True, days
            return []
        found: list[WormFile] = []
        for k in range(days):
            day = start.date() + timedelta(days=k)
            folder = self.root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            try:
                entries = data_files(self.root, day, folder)
            except OSError:
                stats.missing_days += 1
                continue
            for data in entries:
                f = self._describe(data, day, q)
                if f is None:
                    continue
                if (f.upper is not None and f.upper < start) or (f.lower is not None and f.lower > end):
                    stats.files_skipped += 1
                else:
                    found.append(f)
        return found

    def _describe(self, data: DataFile, day: date, q: Query) -> WormFile | None:
        """A file's time bounds, from its index or else from its two ends; None when it is
        unreadable, or when its index says it holds none of the query's lines."""
        if self.indexing != "off":
            index, rejected = self.store.load(data)
            q.stats.indexes_rejected += rejected
            try:
                needed = index is not None and index.has(q.tenant, q.outcome)
            except CorruptIndex:
                q.stats.indexes_rejected += 1
                assert index is not None
                self.store.distrust(index)
                index = None
            if index is not None:
                if not needed:
                    q.stats.files_skipped += 1
                    return None
                d = index.directory
                return WormFile(data, _epoch(d.lower), _epoch(d.upper), index, closed=True)
        closed = self.indexing == "build" and is_closed(data.path.name, day, data.mtime_ns, q.now, self.quiet)
        try:
            lower, upper = self._probe(data, q.stats)
        except _UNREADABLE:
            q.stats.unreadable_files += 1
            return None
        return WormFile(data, lower, upper, None, closed)

    def _probe(self, data: DataFile, stats: ScanStats) -> tuple[datetime | None, datetime | None]:
        """A file's time bounds, from a few KiB at each end (start only, for .gz)."""
        if data.gz:
            with gzip.open(data.path, "rb") as fh:
                head = fh.read(_PROBE)
            mtime = datetime.fromtimestamp(data.mtime_ns / 1e9, UTC) + self.gz_mtime_slack
            stats.bytes += len(head)
            lower = _first_ts(head.split(b"\n")[:-1])
            # A modification time older than the first record is no bound at all.
            return lower, mtime if lower is None or mtime >= lower else None
        with open(data.path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            head = fh.read(_PROBE)
            fh.seek(max(0, size - _PROBE))
            tail = fh.read(_PROBE)
        stats.bytes += len(head) + len(tail)
        tail_lines = tail.split(b"\n")
        if size > _PROBE:
            tail_lines = tail_lines[1:]  # the first piece may be the end of a cut line
        return _first_ts(head.split(b"\n")[:-1]), _first_ts(tail_lines[::-1])

    # -- reading --------------------------------------------------------------------

    def records(self, f: WormFile, q: Query, backward: bool) -> Iterator[WormRecord]:
        """The file's records of the tenant (and outcome), in file order or reversed."""
        if f.index is None and f.closed and self.indexing == "build":
            f.index = self._build(f.data, q.stats)
            if f.index is not None and not f.index.has(q.tenant, q.outcome):
                return
        for _ in range(2):  # an index found not to match its file is rebuilt, and tried once more
            if f.index is None or f.data.gz:  # a compressed file is read whole anyway
                break
            yielded = False
            q.stats.indexed += 1
            try:
                for rec in self._indexed(f, f.index, q, backward):
                    yielded = True
                    yield rec
                return
            except CorruptIndex as exc:
                q.stats.indexed -= 1
                q.stats.indexes_rejected += 1
                self.store.distrust(f.index)
                f.index = self._build(f.data, q.stats) if self.indexing == "build" else None
                if yielded:
                    raise BackendError(
                        "WORM audit log", f"the index of {f.data.rel} does not match the file ({exc}); it was rebuilt"
                    ) from None
        yield from self._scanned(f.data, q, backward and not f.data.gz)

    def _build(self, data: DataFile, stats: ScanStats) -> FileIndex | None:
        try:
            index = build(data.path, data.rel, data.gz, max_line=self.max_line)
        except _UNREADABLE:
            return None  # the direct scan counts it as unreadable
        if index is None:  # it changed while it was read: not closed after all
            return None
        stats.indexes_built += 1
        stats.bytes += data.size
        assert index.blob is not None
        if self.store.save(data, index.blob) is None and self.indexing == "build":
            # Building costs more than a direct scan: without a place to keep indexes, stop.
            self.indexing = "use"
            log.warning(
                "WORM index: neither the WORM root nor %s is writable; closed files are scanned directly",
                self.store.cache,
            )
        return index

    def _indexed(self, f: WormFile, index: FileIndex, q: Query, backward: bool) -> Iterator[WormRecord]:
        starts = index.starts(index.sections(q.tenant, q.outcome))
        tenant, outcome, stats = q.tenant, q.outcome, q.stats
        with open(f.path, "rb", buffering=0) as fh:
            lines = read_lines(
                fh.fileno(), starts, index.directory.size, max_line=self.max_line, stats=stats, backward=backward
            )
            for line in lines:
                rec = decode(line, stats)
                if rec and rec.tenant_id == tenant and (outcome is None or rec.verify_outcome == outcome):
                    yield rec

    def _scanned(self, data: DataFile, q: Query, backward: bool) -> Iterator[WormRecord]:
        tenant, outcome, stats, pf = q.tenant, q.outcome, q.stats, q.prefilter
        try:
            with open(data.path, "rb", buffering=0) as raw:
                fh: BinaryIO = gzip.GzipFile(fileobj=raw) if data.gz else raw
                reader = read_backward if backward else read_forward
                with closing(reader(fh, self.block_size, self.max_line, stats)) as chunks:
                    for chunk in chunks:
                        hits, suspects = split(chunk, pf, stats)
                        for line in suspects:
                            decode(line, stats)
                        for line in reversed(hits) if backward else hits:
                            rec = decode(line, stats)
                            if rec and rec.tenant_id == tenant and (outcome is None or rec.verify_outcome == outcome):
                                yield rec
        except _UNREADABLE:
            stats.unreadable_files += 1
