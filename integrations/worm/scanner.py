"""Scan the WORM audit log ``<root>/YYYY/MM/DD/*.jsonl[.gz]`` for one tenant's records.

File names need not sort in exact time order (shards write side by side): each file's
time bounds are read from its first and last line (a ``.gz`` file's newest record is
bounded by its modification time, which gzip keeps from the original file), files are
read newest-bound first, and the scan stops once no unread file can hold a record newer
than the n-th newest found. Plain files are read backwards; ``.gz`` files forwards,
keeping only the newest n. All file IO runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import gzip
import heapq
import os
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from integrations.worm.blocks import Prefilter, read_backward, read_forward, split
from integrations.worm.records import OutcomeCounts, ScanResult, ScanStats, WormRecord, decode, line_ts

MAX_DAYS = 366
_PROBE = 16 << 10  # bytes read at each end of a file to find its time bounds
_UNREADABLE = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    gz: bool
    lower: datetime | None  # first record's ts; None when unknown
    upper: datetime | None  # newest record's ts or a bound on it; None when unknown


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _first_ts(lines: list[bytes]) -> datetime | None:
    for line in lines:
        if ts := line_ts(line):
            return ts
    return None


class WormScanner:
    def __init__(
        self,
        root: Path | str,
        *,
        block_size: int = 1 << 20,
        max_line: int = 1 << 20,
        gz_mtime_slack: timedelta = timedelta(minutes=5),
    ) -> None:
        self.root = Path(root)
        self.block_size = block_size
        self.max_line = max_line
        self.gz_mtime_slack = gz_mtime_slack

    # -- public, async ------------------------------------------------------------

    async def newest(
        self,
        tenant: str,
        *,
        start: datetime,
        end: datetime,
        outcome: str | None = "escalated",
        n: int = 1000,
    ) -> ScanResult:
        """The tenant's newest ``n`` records in ``[start, end]`` (of ``outcome``; None for
        any), newest first."""
        return await asyncio.to_thread(self.newest_sync, tenant, start, end, outcome, n)

    async def window(
        self,
        tenant: str,
        *,
        start: datetime,
        end: datetime,
        outcome: str | None = None,
        limit: int = 100_000,
    ) -> ScanResult:
        """All the tenant's records in ``[start, end]``, oldest first; at most the newest
        ``limit`` of them (``complete`` says whether any were left out)."""
        result = await asyncio.to_thread(self.newest_sync, tenant, start, end, outcome, limit)
        return ScanResult(result.records[::-1], result.stats, result.complete)

    async def outcome_counts(self, tenant: str, *, start: datetime, end: datetime) -> OutcomeCounts:
        """Records per ``verify_outcome`` for the tenant in ``[start, end]``."""

        def count() -> OutcomeCounts:
            stats = ScanStats()
            counts = Counter(r.verify_outcome for r in self.iter_sync(tenant, start, end, None, stats))
            return OutcomeCounts(dict(counts), stats)

        return await asyncio.to_thread(count)

    async def iter_window(
        self,
        tenant: str,
        *,
        start: datetime,
        end: datetime,
        outcome: str | None = None,
        stats: ScanStats | None = None,
        batch: int = 1000,
    ) -> AsyncIterator[list[WormRecord]]:
        """The tenant's records in ``[start, end]`` in batches, in bounded memory; in time
        order within a file, not across files. ``stats`` is filled in as it goes."""
        records = self.iter_sync(tenant, start, end, outcome, stats or ScanStats())
        with closing(records):
            while chunk := await asyncio.to_thread(lambda: list(islice(records, batch))):
                yield chunk

    # -- sync core ----------------------------------------------------------------

    def newest_sync(self, tenant: str, start: datetime, end: datetime, outcome: str | None, n: int) -> ScanResult:
        began = time.perf_counter()
        if n < 1:
            raise ValueError("n must be at least 1")
        start, end = self._check_window(start, end)
        pf = Prefilter(tenant, outcome)
        stats = ScanStats()
        files = self._files(start, end, stats)
        # Newest bound first; unknown bounds first of all since they may hold anything.
        files.sort(key=lambda f: (f.upper is None, f.upper or start, f.path.name), reverse=True)
        heap: list[tuple[tuple[datetime, str, int], WormRecord]] = []
        complete = True
        for i, f in enumerate(files):
            if len(heap) >= n and f.upper is not None and f.upper < heap[0][0][0]:
                stats.files_skipped += len(files) - i
                complete = False
                break
            stats.files += 1
            backward, name, seq = not f.gz, str(f.path), 0
            with closing(self._file_records(f, pf, tenant, outcome, stats, backward)) as records:
                for rec in records:
                    if rec.ts > end or rec.ts < start:
                        # Lines are in time order: past the window's far side, the file is done.
                        if (rec.ts < start) == backward:
                            break
                        continue
                    stats.matched += 1
                    seq += 1
                    key = (rec.ts, name, -seq if backward else seq)
                    if len(heap) < n:
                        heapq.heappush(heap, (key, rec))
                        continue
                    complete = False
                    if key > heap[0][0]:
                        heapq.heapreplace(heap, (key, rec))
                    elif backward:
                        break  # the rest of this file is older still
        stats.seconds = time.perf_counter() - began
        heap.sort(key=lambda item: item[0], reverse=True)
        return ScanResult([rec for _, rec in heap], stats, complete)

    def iter_sync(
        self, tenant: str, start: datetime, end: datetime, outcome: str | None, stats: ScanStats
    ) -> Iterator[WormRecord]:
        """The tenant's records in the window, file by file, each file read forwards."""
        began = time.perf_counter()
        start, end = self._check_window(start, end)
        pf = Prefilter(tenant, outcome)
        files = self._files(start, end, stats)
        files.sort(key=lambda f: (f.lower is not None, f.lower or start, f.path.name))
        for f in files:
            stats.files += 1
            with closing(self._file_records(f, pf, tenant, outcome, stats, backward=False)) as records:
                for rec in records:
                    if rec.ts > end:
                        break
                    if rec.ts >= start:
                        stats.matched += 1
                        yield rec
            stats.seconds = time.perf_counter() - began

    # -- files --------------------------------------------------------------------

    @staticmethod
    def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
        start, end = _utc(start), _utc(end)
        if start > end:
            raise ValueError("the window starts after it ends")
        if (end.date() - start.date()).days >= MAX_DAYS:
            raise ValueError(f"the window spans more than {MAX_DAYS} days")
        return start, end

    def _files(self, start: datetime, end: datetime, stats: ScanStats) -> list[_File]:
        """The files of the window's day folders whose time bounds meet the window."""
        days = (end.date() - start.date()).days + 1
        if not self.root.is_dir():
            stats.missing_root, stats.missing_days = True, days
            return []
        found: list[_File] = []
        for k in range(days):
            day = start.date() + timedelta(days=k)
            folder = self.root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                stats.missing_days += 1
                continue
            for entry in entries:
                gz = entry.name.endswith(".jsonl.gz")
                if not (gz or entry.name.endswith(".jsonl")) or not entry.is_file():
                    continue
                f = self._probe(Path(entry.path), gz, stats)
                if f is None:
                    continue
                if (f.upper is not None and f.upper < start) or (f.lower is not None and f.lower > end):
                    stats.files_skipped += 1
                else:
                    found.append(f)
        return found

    def _probe(self, path: Path, gz: bool, stats: ScanStats) -> _File | None:
        """A file's time bounds, from a few KiB at each end (start only, for .gz)."""
        try:
            if gz:
                with gzip.open(path, "rb") as fh:
                    head = fh.read(_PROBE)
                mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC) + self.gz_mtime_slack
                stats.bytes += len(head)
                lower = _first_ts(head.split(b"\n")[:-1])
                # A modification time older than the first record is no bound at all.
                return _File(path, True, lower, mtime if lower is None or mtime >= lower else None)
            with open(path, "rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(0)
                head = fh.read(_PROBE)
                fh.seek(max(0, size - _PROBE))
                tail = fh.read(_PROBE)
        except _UNREADABLE:
            stats.unreadable_files += 1
            return None
        stats.bytes += len(head) + len(tail)
        tail_lines = tail.split(b"\n")
        if size > _PROBE:
            tail_lines = tail_lines[1:]  # the first piece may be the end of a cut line
        return _File(path, False, _first_ts(head.split(b"\n")[:-1]), _first_ts(tail_lines[::-1]))

    def _file_records(
        self, f: _File, pf: Prefilter, tenant: str, outcome: str | None, stats: ScanStats, backward: bool
    ) -> Iterator[WormRecord]:
        """The file's records of the tenant (and outcome), in file order or reversed."""
        try:
            with open(f.path, "rb", buffering=0) as raw:
                fh: BinaryIO = gzip.GzipFile(fileobj=raw) if f.gz else raw
                reader = read_backward if backward else read_forward
                for chunk in reader(fh, self.block_size, self.max_line, stats):
                    hits, suspects = split(chunk, pf, stats)
                    for line in suspects:
                        decode(line, stats)
                    for line in reversed(hits) if backward else hits:
                        rec = decode(line, stats)
                        if rec and rec.tenant_id == tenant and (outcome is None or rec.verify_outcome == outcome):
                            yield rec
        except _UNREADABLE:
            stats.unreadable_files += 1
