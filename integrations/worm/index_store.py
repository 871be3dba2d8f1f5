"""Where WORM indexes live, when a file is closed enough to index, and indexing a whole root.

An index sits beside its file, in the day folder's ``.flk-index/`` (hidden from the
runbook's ``grep … ROOT/YYYY/MM/DD/*``), or, when the WORM volume is not writable, under a
cache folder at the file's path relative to the root. Either is written to a temporary
file and renamed into place, so that two replicas indexing the same file at once each
leave a whole index, never a mixed one. A file is indexed once it is closed: its hour
(``<pod>-<HH>.jsonl``) is over and it has not changed for a while. Until then, and
whenever its size or mtime differ from its index's, it is scanned directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from integrations.worm.index_format import CorruptIndex, FileIndex, describes, read

INDEX_DIR = ".flk-index"
SUFFIX = ".idx"
QUIET = timedelta(minutes=5)  # unchanged for this long (and past its hour): closed
_HOUR = re.compile(r"-(\d{2})\.jsonl(?:\.gz)?$")


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/flk/worm-index`` (``~/.cache`` by default, the temp folder without a home)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory to be found
            base = tempfile.gettempdir()
    return Path(base) / "flk" / "worm-index"


def is_closed(name: str, day: date, mtime_ns: int, now: datetime, quiet: timedelta = QUIET) -> bool:
    """Whether a file of ``day``'s folder is done being written."""
    if mtime_ns > (now - quiet).timestamp() * 1e9:
        return False
    hour = _HOUR.search(name)
    if hour and int(hour[1]) < 24:
        return now >= datetime.combine(day, time(int(hour[1])), UTC) + timedelta(hours=1) + quiet
    return True


@dataclass(frozen=True, slots=True)
class DataFile:
    path: Path
    rel: str  # relative to the WORM root, "/"-separated
    day: date
    gz: bool
    size: int
    mtime_ns: int


class IndexStore:
    def __init__(self, root: Path, cache: Path | None = None) -> None:
        self.root = root
        self.cache = cache if cache is not None else default_cache()
        self._unwritable: set[Path] = set()  # folders a write failed in: not tried again
        self._distrusted: set[Path] = set()  # index files found wrong that could not be removed

    def places(self, f: DataFile) -> list[Path]:
        """Where the file's index may be, in the order they are tried."""
        return [f.path.parent / INDEX_DIR / (f.path.name + SUFFIX), self.cache / (f.rel + SUFFIX)]

    def load(self, f: DataFile) -> tuple[FileIndex | None, int]:
        """The file's index if one describes it as it is now, and how many index files
        were found unusable on the way (stale, corrupt or another file's)."""
        rejected = 0
        for place in self.places(f):
            if place in self._distrusted:
                continue
            try:
                index = read(place)
            except FileNotFoundError:
                continue
            except (OSError, CorruptIndex):
                rejected += 1
                continue
            if describes(index, f.rel, f.size, f.mtime_ns):
                return index, rejected
            rejected += 1
        return None, rejected

    def save(self, f: DataFile, blob: bytes) -> Path | None:
        """Store an index (beside the file, else in the cache); None when neither is writable."""
        for place in self.places(f):
            folder = place.parent
            if folder in self._unwritable:
                continue
            tmp = folder / f".{place.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with open(tmp, "xb") as fh:
                    fh.write(blob)
                os.replace(tmp, place)
                self._distrusted.discard(place)
                return place
            except OSError:
                self._unwritable.add(folder)
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return None

    def distrust(self, index: FileIndex) -> None:
        """An index that checked out but does not match its file: removed, or else ignored."""
        if index.path is None:
            return
        try:
            index.path.unlink()
        except OSError:
            self._distrusted.add(index.path)


def day_folders(root: Path, first: date | None = None, last: date | None = None) -> list[tuple[date, Path]]:
    """The ``YYYY/MM/DD`` folders under ``root`` (between ``first`` and ``last``), oldest first."""
    found: list[tuple[date, Path]] = []
    for folder in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]")):
        try:
            day = date(int(folder.parent.parent.name), int(folder.parent.name), int(folder.name))
        except ValueError:
            continue
        if (first is None or day >= first) and (last is None or day <= last) and folder.is_dir():
            found.append((day, folder))
    return found


def data_files(root: Path, day: date, folder: Path) -> list[DataFile]:
    """The day folder's ``.jsonl`` and ``.jsonl.gz`` files, by name."""
    out: list[DataFile] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            gz = entry.name.endswith(".jsonl.gz")
            if not (gz or entry.name.endswith(".jsonl")) or not entry.is_file():
                continue
            st = entry.stat()
            rel = f"{day:%Y}/{day:%m}/{day:%d}/{entry.name}"
            out.append(DataFile(Path(entry.path), rel, day, gz, st.st_size, st.st_mtime_ns))
    return out
