"""The WORM index on files that grow, tear, sit on a read-only volume or have a bad index,
built by two builders at once, pruned, and from the CLI: answers stay those of a full decode."""

from __future__ import annotations

import errno
import json
import os
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.errors import BackendError
from integrations.worm import WormScanner, build_index
from integrations.worm.__main__ import main as cli
from integrations.worm.index_format import HEADER, describes, read
from integrations.worm.index_store import INDEX_DIR, IndexStore, data_files
from tests.integrations.worm_index_support import DAY0, LATER, TENANTS, direct, hour_file, indexed
from tests.integrations.worm_support import COMPACT, data_paths, day_dir, oracle, pcs, rec, write


def _section_byte(index_path: Path, tenant: str, outcome: str) -> int:
    """Where in an index file the line starts of (tenant, outcome) lie."""
    index = read(index_path)
    key = index.sections(tenant, outcome)[0]
    return index.body_at + key.offset + 1


async def test_a_file_that_grows_after_indexing_is_rescanned(tmp_path: Path) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    path = hour_file(root, 10, TENANTS, 500, seed=1)
    hour_file(root, 11, TENANTS, 500, seed=2)
    start, end = DAY0, DAY0 + timedelta(days=1)
    first = await indexed(root, cache).newest("t1", start=start, end=end, n=10_000)
    assert first.stats.indexes_built == 2

    # A late writer appends to the closed hour: its size and mtime no longer match the index.
    late = [
        rec(DAY0 + timedelta(hours=10, minutes=59, seconds=59), "t1", "escalated", pcs_id=f"late-{i}") for i in "ab"
    ]
    with path.open("a") as fh:
        fh.writelines(json.dumps(r, separators=COMPACT) + "\n" for r in late)
    now = datetime.now(UTC)
    changed = await WormScanner(root, index_cache=cache, clock=lambda: now).newest("t1", start=start, end=end, n=10_000)

    assert pcs(changed.records) == oracle(root, "t1", "escalated", start, end)
    assert {"late-a", "late-b"} <= set(pcs(changed.records))
    # The grown file was scanned directly (too fresh to index again), the other one indexed.
    assert (changed.stats.indexed, changed.stats.indexes_built, changed.stats.indexes_rejected) == (1, 0, 1)

    # Quiet again later: indexed anew on the next read, and the answer is the same.
    rebuilt = await indexed(root, cache).newest("t1", start=start, end=end, n=10_000)
    assert (rebuilt.stats.indexed, rebuilt.stats.indexes_built) == (2, 1)
    assert pcs(rebuilt.records) == pcs(changed.records)


@pytest.mark.parametrize("cut", ["mid_record", "after_brace"])
async def test_a_torn_last_line_reads_as_in_a_direct_scan(tmp_path: Path, cut: str) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    base = DAY0 + timedelta(hours=3)
    recs = [rec(base + timedelta(seconds=i), "t1" if i % 2 else "t10", "escalated") for i in range(20)]
    last = json.dumps(rec(base + timedelta(seconds=30), "t1", "escalated", pcs_id="torn"), separators=COMPACT)
    # Cut inside the record, or right after it: then it is whole JSON, only without its newline.
    write(day_dir(root, base) / "backend-0-03.jsonl", recs, tail=last[:60] if cut == "mid_record" else last)
    start, end = DAY0, DAY0 + timedelta(days=1)

    want = await direct(root).newest("t1", start=start, end=end, n=100)
    got = await indexed(root, cache).newest("t1", start=start, end=end, n=100)

    assert pcs(got.records) == pcs(want.records) == oracle(root, "t1", "escalated", start, end)
    assert ("torn" in pcs(got.records)) == (cut == "after_brace")
    assert (
        dict(got.stats.malformed_by)
        == dict(want.stats.malformed_by)
        == ({"truncated": 1} if cut == "mid_record" else {})
    )
    assert got.stats.indexed == 1


async def test_a_read_only_worm_root_gets_its_indexes_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    for hour in range(3):
        hour_file(root, hour, TENANTS, 300, seed=hour)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        # As on a read-only mount (the tests run as root, whom file modes do not stop).
        if self.is_relative_to(root):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    start, end = DAY0, DAY0 + timedelta(days=1)
    first = await indexed(root, cache).newest("acme", start=start, end=end, n=10_000)
    report = build_index(root, cache=cache, now=LATER)
    later = await indexed(root, cache, index="use").newest("acme", start=start, end=end, n=10_000)

    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written to the WORM root
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.idx")) == [
        f"2031/03/08/backend-0-{h:02d}.jsonl.idx" for h in range(3)
    ]
    assert first.stats.indexes_built == 3 and report.fresh == 3 and report.built == 0
    assert later.stats.indexed == 3
    assert pcs(later.records) == pcs(first.records) == oracle(root, "acme", "escalated", start, end)


async def test_with_nowhere_to_keep_indexes_files_are_scanned_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    for hour in range(3):
        hour_file(root, hour, TENANTS, 300, seed=hour)

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    scanner = indexed(root, cache)
    start, end = DAY0, DAY0 + timedelta(days=1)
    first = await scanner.newest("t10", start=start, end=end, n=10_000)
    second = await scanner.newest("t10", start=start, end=end, n=10_000)

    # One index built (and used) before it was clear that none can be kept; none after.
    assert (first.stats.indexes_built, first.stats.indexed, second.stats.indexes_built) == (1, 1, 0)
    assert pcs(first.records) == pcs(second.records) == oracle(root, "t10", "escalated", start, end)
    assert "scanned directly" in caplog.text
    assert not cache.exists() and not list(root.rglob("*.idx"))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "body byte flipped": lambda p, other: _flip(p, _section_byte(p, "t12", "escalated")),
    "directory byte flipped": lambda p, other: _flip(p, HEADER.size + 5),
    "cut short": lambda p, other: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p, other: p.write_bytes(b""),
    "foreign magic": lambda p, other: p.write_bytes(b"PK\x03\x04" + p.read_bytes()[4:]),
    "later version": lambda p, other: p.write_bytes(p.read_bytes()[:8] + b"\x63\x00" + p.read_bytes()[10:]),
    "another file's index": lambda p, other: p.write_bytes(other.read_bytes()),
    "random bytes": lambda p, other: p.write_bytes(random.Random(3).randbytes(4096)),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
async def test_a_corrupt_or_foreign_index_is_ignored_and_rebuilt(tmp_path: Path, corruption: str) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    hour_file(root, 5, TENANTS, 400, seed=5)
    hour_file(root, 6, TENANTS, 400, seed=6)
    assert build_index(root, now=LATER).built == 2
    bad, other = sorted(root.glob(f"*/*/*/{INDEX_DIR}/*.idx"))
    CORRUPTIONS[corruption](bad, other)
    start, end = DAY0, DAY0 + timedelta(days=1)

    result = await indexed(root, cache).newest("t12", start=start, end=end, n=10_000)

    assert pcs(result.records) == oracle(root, "t12", "escalated", start, end)
    assert (result.stats.indexes_rejected, result.stats.indexes_built, result.stats.indexed) == (1, 1, 2)
    f = next(d for d in data_files(root, DAY0.date(), day_dir(root, DAY0)) if bad.name.startswith(d.path.name))
    assert describes(read(bad), f.rel, f.size, f.mtime_ns)  # replaced by a good one


async def test_an_index_that_checks_out_but_does_not_fit_its_file_is_not_trusted(tmp_path: Path) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    path = hour_file(root, 7, TENANTS, 400, seed=7)
    build_index(root, now=LATER)
    # The same bytes moved by one, with the same size and mtime: every indexed start is off.
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(b" " + data[:-2] + b"\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    start, end = DAY0, DAY0 + timedelta(days=1)

    result = await indexed(root, cache).newest("t1", start=start, end=end, n=10_000)

    assert pcs(result.records) == oracle(root, "t1", "escalated", start, end)
    assert result.stats.indexes_rejected == 1 and result.stats.indexes_built == 1


async def test_an_index_found_wrong_midway_fails_the_query_and_is_replaced(tmp_path: Path) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    path = hour_file(root, 8, [f"t{i}" for i in range(30)], 3000, seed=8)
    build_index(root, now=LATER)
    # Only the file's first half moves by one byte: read newest first, the index checks out
    # for the second half (whose records are handed out) and fails in the first.
    st, data = path.stat(), path.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(b" " + data[: half - 2] + b"\n" + data[half:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    start, end = DAY0, DAY0 + timedelta(days=1)

    with pytest.raises(BackendError, match="does not match the file"):
        await indexed(root, cache).newest("t1", start=start, end=end, n=10_000)
    again = await indexed(root, cache).newest("t1", start=start, end=end, n=10_000)

    assert pcs(again.records) == oracle(root, "t1", "escalated", start, end)
    assert again.stats.indexed == 1 and again.stats.indexes_rejected == 0  # the index was replaced


def test_concurrent_builders_leave_whole_indexes(tmp_path: Path) -> None:
    root = tmp_path / "worm"
    for hour in range(4):
        hour_file(root, hour, TENANTS, 2000, seed=hour)

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: build_index(root, force=True, now=LATER), range(8)))

    assert all(r.built == 4 for r in reports)
    store = IndexStore(root, tmp_path / "cache")
    for f in data_files(root, DAY0.date(), day_dir(root, DAY0)):
        index, rejected = store.load(f)
        assert index is not None and rejected == 0
    assert sorted(p.name for p in (day_dir(root, DAY0) / INDEX_DIR).iterdir()) == [
        f"backend-0-{h:02d}.jsonl.idx" for h in range(4)
    ]  # no temporary file left behind


def test_indexes_of_expired_files_are_pruned(tmp_path: Path) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    paths = [hour_file(root, hour, TENANTS, 100, seed=hour) for hour in range(3)]
    build_index(root, cache=cache, now=LATER)
    # One more index in the cache, as a read-only WORM volume would have it.
    cached = cache / "2031/03/08/backend-0-01.jsonl.idx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((day_dir(root, DAY0) / INDEX_DIR / "backend-0-01.jsonl.idx").read_bytes())
    paths[0].unlink()  # expired from the WORM volume
    paths[1].unlink()

    report = build_index(root, cache=cache, now=LATER)

    assert (report.pruned, report.fresh, report.built) == (3, 1, 0)
    assert [p.name for p in root.rglob("*.idx")] == ["backend-0-02.jsonl.idx"] and not list(cache.rglob("*.idx"))


def test_the_cli_indexes_closed_files_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    past = datetime(2020, 1, 1, tzinfo=UTC)  # the CLI goes by the real clock
    for hour in range(2):
        path = hour_file(root, hour, TENANTS, 200, seed=hour, day=past)
        os.utime(path, (past.timestamp() + 86_400,) * 2)
    # The current hour, still being written: left to direct scans.
    now = datetime.now(UTC)
    write(day_dir(root, now) / f"backend-0-{now:%H}.jsonl", [rec(now, "t1")])

    assert cli(["index", str(root), "--cache", str(cache), "--jobs", "2"]) == 0
    first = capsys.readouterr().out
    assert cli(["index", str(root), "--cache", str(cache)]) == 0
    second = capsys.readouterr().out
    assert cli(["index", str(tmp_path / "nowhere")]) == 2

    assert first.startswith("2 of 3 files indexed") and "2 beside their files" in first and "1 still open" in first
    assert second.startswith("0 of 3 files indexed") and "2 already indexed" in second
    assert "no WORM root" in capsys.readouterr().err
    assert Counter(p.parent.name for p in root.rglob("*.idx")) == {INDEX_DIR: 2}


async def test_the_scan_summary_says_what_the_index_spared(tmp_path: Path) -> None:
    root, cache = tmp_path / "worm", tmp_path / "cache"
    for hour in range(3):
        hour_file(root, hour, [f"t{i}" for i in range(30)], 3000, seed=hour)
    scanner = indexed(root, cache)
    start, end = DAY0, DAY0 + timedelta(days=1)
    await scanner.newest("t12", start=start, end=end, n=10_000)

    result = await scanner.newest("t12", start=start, end=end, n=10_000)

    total = sum(p.stat().st_size for p in data_paths(root))
    assert result.stats.indexed == 3 and result.stats.indexes_built == 0
    assert result.stats.lines == result.stats.parsed == len(result.records)  # only the candidates decoded
    assert result.stats.bytes < total // 4
    assert result.stats.summary().startswith(f"3 files (3 through the index), {len(result.records):,} lines in")
