"""Scan the WORM audit log ``<root>/YYYY/MM/DD/*.jsonl[.gz]`` for one tenant's records.

File names need not sort in exact time order (shards write side by side): each file's
time bounds come from its index, or from its first and last line (a ``.gz`` file's newest
record is bounded by its modification time, which gzip keeps from the original file),
files are read newest-bound first, and the scan stops once no unread file can hold a
record newer than the n-th newest found. Plain files are read backwards; ``.gz`` files
forwards, keeping only the newest n. A closed file is indexed the first time it is read
(see ``index_store``), and from then on only its candidate lines are read; files that are
still being written are scanned directly. All file IO runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from integrations.worm.index_store import QUIET, IndexStore
from integrations.worm.records import OutcomeCounts, ScanResult, ScanStats, WormRecord
from integrations.worm.sources import Indexing, Sources

MAX_DAYS = 366


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class WormScanner:
    def __init__(
        self,
        root: Path | str,
        *,
        block_size: int = 1 << 20,
        max_line: int = 1 << 20,
        gz_mtime_slack: timedelta = timedelta(minutes=5),
        index: Indexing = "build",
        index_cache: Path | str | None = None,
        index_quiet: timedelta = QUIET,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """``index``: "build" indexes closed files when first read and uses the indexes,
        "use" only uses those that exist, "off" scans every file directly. Indexes go
        beside the files, else (read-only WORM volume) under ``index_cache``."""
        self.root = Path(root)
        self.store = IndexStore(self.root, Path(index_cache) if index_cache is not None else None)
        self._sources = Sources(
            self.root,
            block_size=block_size,
            max_line=max_line,
            gz_mtime_slack=gz_mtime_slack,
            indexing=index,
            store=self.store,
            quiet=index_quiet,
            clock=clock,
        )

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
        stats = ScanStats()
        q = self._sources.query(tenant, outcome, stats)
        files = self._sources.files(q, start, end)
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
            backward, name, seq = not f.data.gz, str(f.path), 0
            with closing(self._sources.records(f, q, backward)) as records:
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
        q = self._sources.query(tenant, outcome, stats)
        files = self._sources.files(q, start, end)
        files.sort(key=lambda f: (f.lower is not None, f.lower or start, f.path.name))
        for f in files:
            stats.files += 1
            with closing(self._sources.records(f, q, backward=False)) as records:
                for rec in records:
                    if rec.ts > end:
                        break
                    if rec.ts >= start:
                        stats.matched += 1
                        yield rec
            stats.seconds = time.perf_counter() - began

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
        start, end = _utc(start), _utc(end)
        if start > end:
            raise ValueError("the window starts after it ends")
        if (end.date() - start.date()).days >= MAX_DAYS:
            raise ValueError(f"the window spans more than {MAX_DAYS} days")
        return start, end
