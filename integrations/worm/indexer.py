"""Index every closed file of a WORM root ahead of the queries: ``build_index``.

Files are indexed in ``jobs`` worker processes (each file is one job); a file whose index
already describes it is left alone unless ``force``. Indexes whose file is gone (expired
from the WORM volume) are removed, beside the files and in the cache folder alike.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from integrations.worm.index_build import build
from integrations.worm.index_store import (
    INDEX_DIR,
    QUIET,
    SUFFIX,
    DataFile,
    IndexStore,
    data_files,
    day_folders,
    is_closed,
)

_UNREADABLE = (OSError, EOFError, zlib.error)


@dataclass
class BuildReport:
    files: int = 0  # data files found
    built: int = 0  # indexed now
    fresh: int = 0  # already had an index that describes them
    open: int = 0  # still being written: left to direct scans
    changed: int = 0  # changed while being indexed: left for next time
    failed: int = 0  # unreadable (e.g. a corrupt .gz)
    unsaved: int = 0  # indexed, but neither beside the file nor the cache was writable
    pruned: int = 0  # indexes removed because their file is gone
    bytes: int = 0  # of the files indexed now
    seconds: float = 0.0
    places: Counter[str] = field(default_factory=Counter)  # "beside" / "cache" -> indexes written there

    @property
    def gb_per_s(self) -> float:
        return self.bytes / 1e9 / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        parts = [
            f"{self.built} of {self.files} files indexed ({self.bytes / 2**30:.2f} GiB in {self.seconds:.2f} s, "
            f"{self.gb_per_s:.2f} GB/s)"
        ]
        for count, what in (
            (self.places["beside"], "beside their files"),
            (self.places["cache"], "in the cache folder"),
            (self.fresh, "already indexed"),
            (self.open, "still open"),
            (self.changed, "changed while read"),
            (self.failed, "unreadable"),
            (self.unsaved, "not saved: no writable place"),
            (self.pruned, "indexes of files no longer there removed"),
        ):
            if count:
                parts.append(f"{count} {what}")
        return "; ".join(parts)


def _index_one(root: Path, cache: Path | None, f: DataFile, max_line: int) -> tuple[str, str | None]:
    """(outcome, where the index went) for one file; runs in a worker process."""
    try:
        index = build(f.path, f.rel, f.gz, max_line=max_line)
    except _UNREADABLE:
        return "failed", None
    if index is None:
        return "changed", None
    assert index.blob is not None
    store = IndexStore(root, cache)
    place = store.save(f, index.blob)
    if place is None:
        return "unsaved", None
    return "built", "cache" if place.is_relative_to(store.cache) else "beside"


def _closed_files(
    root: Path,
    store: IndexStore,
    report: BuildReport,
    first: date | None,
    last: date | None,
    *,
    now: datetime,
    quiet: timedelta,
    force: bool,
) -> Iterator[DataFile]:
    for day, folder in day_folders(root, first, last):
        for f in data_files(root, day, folder):
            report.files += 1
            if not is_closed(f.path.name, day, f.mtime_ns, now, quiet):
                report.open += 1
            elif not force and store.load(f)[0] is not None:
                report.fresh += 1
            else:
                yield f


def _prune(root: Path, cache: Path) -> int:
    """Remove the indexes whose data file is gone; how many."""
    orphans = [
        p for p in root.glob(f"*/*/*/{INDEX_DIR}/*{SUFFIX}") if not (p.parent.parent / p.name[: -len(SUFFIX)]).exists()
    ]
    orphans += [
        p
        for p in cache.glob(f"*/*/*/*{SUFFIX}")
        if not (root / p.relative_to(cache).as_posix()[: -len(SUFFIX)]).exists()
    ]
    removed = 0
    for path in orphans:
        with contextlib.suppress(OSError):  # read-only, or removed by another builder meanwhile
            path.unlink()
            removed += 1
    return removed


def build_index(
    root: Path | str,
    *,
    cache: Path | str | None = None,
    jobs: int = 1,
    first: date | None = None,
    last: date | None = None,
    force: bool = False,
    now: datetime | None = None,
    quiet: timedelta = QUIET,
    max_line: int = 1 << 20,
) -> BuildReport:
    """Index the closed files of the day folders under ``root`` (from ``first`` to ``last``);
    ValueError when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no WORM root at {root}")
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    cache_dir = Path(cache) if cache is not None else None
    store = IndexStore(root, cache_dir)
    report = BuildReport()
    began = time.perf_counter()
    todo = list(_closed_files(root, store, report, first, last, now=now or datetime.now(UTC), quiet=quiet, force=force))
    if jobs == 1 or len(todo) < 2:
        results = [_index_one(root, store.cache, f, max_line) for f in todo]
    else:
        # Imported only here: 50 ms that a scan need not pay.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the caller may be a threaded process (the bot), where fork is unsafe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
            results = list(pool.map(_index_one, *zip(*((root, store.cache, f, max_line) for f in todo), strict=True)))
    for f, (outcome, place) in zip(todo, results, strict=True):
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome == "built":
            report.bytes += f.size
            report.places[place or "beside"] += 1
    if first is None and last is None:
        report.pruned = _prune(root, store.cache)
    report.seconds = time.perf_counter() - began
    return report
