"""The WORM audit scanner against files written here: exactness, order, gz, bad input, bounds."""

from __future__ import annotations

import json
import os
import random
import re
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.worm import WormScanner
from tests.integrations.worm_support import COMPACT, day_dir, line_count, oracle, pcs, rec, write

T0 = datetime(2031, 3, 9, 23, 0, tzinfo=UTC)  # an hour before midnight UTC
LATER = T0 + timedelta(days=30)  # when every file written here is closed


@pytest.fixture(params=["direct", "indexed"])
def make_scanner(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., WormScanner]:
    """Scanners that read every file directly, or that index each (closed) file when first
    read and then read only its candidate lines: the answers must not differ."""

    def make(root: Path, **options: Any) -> WormScanner:
        if request.param == "direct":
            return WormScanner(root, index="off", **options)
        return WormScanner(root, index_cache=tmp_path / "index-cache", clock=lambda: LATER, **options)

    return make


async def test_tenant_id_is_compared_exactly_where_grep_is_not(
    tmp_path: Path, make_scanner: Callable[..., WormScanner]
) -> None:
    folder = day_dir(tmp_path, T0)
    records = [
        rec(T0 + timedelta(seconds=1), "acme", "escalated"),
        rec(T0 + timedelta(seconds=2), "acme1", "escalated"),
        rec(T0 + timedelta(seconds=3), "globex", "escalated", reason="replayed; first seen for tenant_id acme"),
        rec(T0 + timedelta(seconds=4), "globex", "escalated", reason="acme"),
        rec(T0 + timedelta(seconds=5), "acme", "accepted"),
        rec(T0 + timedelta(seconds=6), "acme", "escalated"),
        # Two tenant_id keys on one line: only the top-level one counts.
        rec(T0 + timedelta(seconds=7), "acme", "escalated", meta={"tenant_id": "globex"}),
        rec(T0 + timedelta(seconds=8), "globex", "escalated", meta={"tenant_id": "acme"}),
    ]
    write(folder / "a-compact.jsonl", records[:3] + records[6:])
    # Default json.dumps spacing: the compact needle does not apply, the loose one must.
    write(folder / "b-spaced.jsonl", records[3:6], seps=(", ", ": "))
    # Both spellings in one file: the pre-filter falls back to the bare quoted id.
    mixed = [
        rec(T0 + timedelta(seconds=10 + i), tenant, "escalated", reason=why)
        for i, (tenant, why) in enumerate([("acme", ""), ("globex", "acme"), ("acme1", ""), ("acme", "")])
    ]
    first = json.dumps(rec(T0, "umbrella"), separators=COMPACT) + "\n"  # keeps the rest in one region
    (folder / "c-mixed.jsonl").write_text(
        first
        + "".join(json.dumps(r, separators=COMPACT if i % 2 else (", ", ": ")) + "\n" for i, r in enumerate(mixed))
    )
    lines = [ln for p in sorted(folder.iterdir()) for ln in p.read_text().splitlines()]
    grep_hits = [ln for ln in lines if re.search("tenant_id.*acme", ln) and '"escalated"' in ln]
    assert len(grep_hits) == 11  # the runbook's grep also takes acme1 and the globex records

    result = await make_scanner(tmp_path).newest("acme", start=T0, end=T0 + timedelta(hours=1), n=10)

    assert pcs(result.records) == oracle(tmp_path, "acme", "escalated", T0, T0 + timedelta(hours=1))
    assert [r.tenant_id for r in result.records] == ["acme"] * 5
    assert result.complete and result.stats.malformed == 0


async def test_a_key_spelt_otherwise_is_not_hidden_by_a_line_with_two_keys(
    tmp_path: Path, make_scanner: Callable[..., WormScanner]
) -> None:
    # As many compact "tenant_id":" keys as lines, yet the acme record spells its key with a
    # space: the line with two keys makes up for it. Neither the count nor the needle may fool.
    lines = [
        json.dumps(rec(T0, "umbrella"), separators=COMPACT),  # a file's first line is read on its own
        json.dumps(rec(T0 + timedelta(seconds=1), "acme", "escalated")),
        json.dumps(
            rec(T0 + timedelta(seconds=2), "globex", "escalated", meta={"tenant_id": "initech"}), separators=COMPACT
        ),
    ]
    (day_dir(tmp_path, T0) / "backend-0-23.jsonl").write_text("\n".join(lines) + "\n")

    result = await make_scanner(tmp_path).newest("acme", start=T0, end=T0 + timedelta(hours=1), n=10)

    assert pcs(result.records) == oracle(tmp_path, "acme", "escalated", T0, T0 + timedelta(hours=1))
    assert len(result.records) == 1


async def test_ids_that_extend_the_tenant_id_dominate(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    # Mostly t10..t19 around a few t1 records: the pre-filter changes needle mid-scan.
    recs = [
        rec(T0 + timedelta(milliseconds=50 * i), "t1" if i % 9 == 0 else f"t1{i % 10}", "escalated")
        for i in range(20_000)
    ]
    write(day_dir(tmp_path, T0) / "backend-0-23.jsonl", recs)
    start, end = T0, T0 + timedelta(hours=1)

    result = await make_scanner(tmp_path, block_size=64 << 10).window("t1", start=start, end=end)

    assert pcs(result.records) == oracle(tmp_path, "t1", None, start, end)[::-1]
    assert result.stats.parsed == len(result.records)


async def test_newest_across_midnight_in_time_order(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    # Two shards per hour on both sides of midnight: name order is not time order.
    midnight = T0 + timedelta(hours=1)
    for day_start in (T0, midnight):
        for shard in range(2):
            recs = [
                rec(day_start + timedelta(seconds=10 * i + shard), "acme", "escalated" if i % 3 else "accepted")
                for i in range(30)
            ]
            write(day_dir(tmp_path, day_start) / f"backend-{shard}-{day_start:%H}.jsonl", recs)
    start, end = T0 + timedelta(minutes=2), midnight + timedelta(minutes=2)

    result = await make_scanner(tmp_path).newest("acme", start=start, end=end, n=25)

    expected = oracle(tmp_path, "acme", "escalated", start, end)[:25]
    assert pcs(result.records) == expected
    assert {r.ts.date() for r in result.records} == {T0.date(), midnight.date()}
    assert all(a.ts > b.ts for a, b in zip(result.records, result.records[1:], strict=False))


async def test_gz_and_plain_files_together(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    folder = day_dir(tmp_path, T0 - timedelta(hours=3))
    base = T0 - timedelta(hours=3)
    for hour in range(3):
        recs = [
            rec(base + timedelta(hours=hour, seconds=7 * i), "acme" if i % 2 else "initech", "escalated")
            for i in range(200)
        ]
        path = folder / f"backend-0-{hour:02d}.jsonl{'.gz' if hour < 2 else ''}"
        write(path, recs)
        # As gzip keeps it: the time the plain file was last written.
        last = (base + timedelta(hours=hour, seconds=7 * 199 + 1)).timestamp()
        os.utime(path, (last, last))
    scanner = make_scanner(tmp_path, block_size=512)
    start, end = base, base + timedelta(hours=3)

    # Newest 150 reach back past the plain file into the newest gz file.
    newest = await scanner.newest("acme", start=start, end=end, n=150)
    everything = await scanner.window("acme", start=start, end=end, outcome="escalated")
    counts = await scanner.outcome_counts("acme", start=start, end=end)

    assert pcs(newest.records) == oracle(tmp_path, "acme", "escalated", start, end)[:150]
    assert pcs(everything.records) == oracle(tmp_path, "acme", "escalated", start, end)[::-1]
    assert counts.counts == {"escalated": 300}
    assert everything.stats.files == 3
    # The oldest gz file cannot hold any of the newest 150: never opened.
    assert (newest.stats.files, newest.stats.files_skipped) == (2, 1)


async def test_malformed_input_is_counted_never_fatal(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    folder = day_dir(tmp_path, T0)
    good = [rec(T0 + timedelta(seconds=i), "acme", "escalated") for i in range(4)]
    lines = [
        json.dumps(good[0], separators=COMPACT),
        "this is not json",
        json.dumps({k: v for k, v in good[1].items() if k != "tenant_id"}, separators=COMPACT),
        "[1, 2, 3]",
        json.dumps(good[1] | {"ts": "yesterday"}, separators=COMPACT),
        json.dumps(good[2], separators=COMPACT),
        "",
        "x" * 5000,
        json.dumps(good[3], separators=COMPACT),
    ]
    truncated = json.dumps(rec(T0 + timedelta(seconds=9), "umbrella"), separators=COMPACT)[:40]
    (folder / "backend-0-23.jsonl").write_text("\n".join(lines) + "\n" + truncated)
    # The tenant's own record cut before its outcome: no escalation to find, still counted.
    own_cut = json.dumps(rec(T0 + timedelta(seconds=8), "acme", "escalated"), separators=COMPACT)[:90]
    write(folder / "backend-2-23.jsonl", [rec(T0 + timedelta(seconds=7), "acme")], tail=own_cut)
    others = [rec(T0 + timedelta(milliseconds=i), "umbrella", pcs_id=f"p{i * 7919 % 10007}") for i in range(2000)]
    write(folder / "backend-1-23.jsonl.gz", others)
    cut = (folder / "backend-1-23.jsonl.gz").read_bytes()
    (folder / "backend-1-23.jsonl.gz").write_bytes(cut[: len(cut) // 2])
    start, end = T0 - timedelta(days=2), T0 + timedelta(minutes=59)  # the two earlier day folders are missing

    # Small blocks: the 5,000-byte line straddles blocks and exceeds max_line.
    scanner = make_scanner(tmp_path, block_size=256, max_line=1024)
    result = await scanner.newest("acme", start=start, end=end, n=10)
    missing = await make_scanner(tmp_path / "nowhere").newest("acme", start=start, end=end, n=10)

    assert pcs(result.records) == [good[3]["pcs_id"], good[2]["pcs_id"], good[0]["pcs_id"]]
    assert dict(result.stats.malformed_by) == {
        "not JSON": 2,
        "no tenant_id": 1,
        "bad ts": 1,
        "too long": 1,
        "truncated": 2,
    }
    assert result.stats.malformed == 7
    assert result.stats.missing_days == 2
    assert result.stats.unreadable_files == 1
    assert "7 malformed lines skipped" in result.stats.summary()
    assert missing.records == [] and missing.stats.missing_root and missing.stats.missing_days == 3


async def test_stops_early_once_it_has_the_newest(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    for hour in range(6):
        recs = [
            rec(T0 - timedelta(hours=6 - hour, seconds=-i), f"t{i % 7}", "escalated" if i % 4 == 0 else "accepted")
            for i in range(2000)
        ]
        write(day_dir(tmp_path, T0) / f"backend-0-{hour:02d}.jsonl", recs)
    total = line_count(tmp_path)
    start, end = T0 - timedelta(hours=7), T0

    result = await make_scanner(tmp_path, block_size=8192).newest("t0", start=start, end=end, n=20)

    assert pcs(result.records) == oracle(tmp_path, "t0", "escalated", start, end)[:20]
    assert not result.complete
    assert result.stats.lines < total // 10
    assert result.stats.files == 1 and result.stats.files_skipped == 5


async def test_file_larger_than_any_buffer_is_read_in_bounded_memory(tmp_path: Path) -> None:
    rng = random.Random(5)
    recs = [
        rec(
            T0 + timedelta(milliseconds=37 * i),
            rng.choice(["acme", "acme1", "xacme", "initech"]),
            rng.choice(["accepted", "escalated"]),
            reason="r" * rng.randrange(0, 300),
        )
        for i in range(25_000)
    ]
    path = day_dir(tmp_path, T0) / "backend-0-23.jsonl"
    write(path, recs)
    size = path.stat().st_size
    block = 1000  # smaller than some lines, so lines straddle blocks both ways
    scanner = WormScanner(tmp_path, block_size=block, max_line=4096)
    start, end = T0, T0 + timedelta(hours=1)

    tracemalloc.start()
    newest = scanner.newest_sync("acme", start, end, "escalated", 50)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    everything = scanner.newest_sync("acme", start, end, None, 100_000)

    assert size > 5_000_000
    assert pcs(newest.records) == oracle(tmp_path, "acme", "escalated", start, end)[:50]
    assert pcs(everything.records) == oracle(tmp_path, "acme", None, start, end)
    assert everything.stats.lines == len(recs) and everything.stats.malformed == 0
    # A few blocks, one line and the 50 records kept: nothing that grows with the file.
    assert peak < 256 << 10


async def test_random_days_match_a_full_decode(tmp_path: Path, make_scanner: Callable[..., WormScanner]) -> None:
    rng = random.Random(11)
    tenants = ["t1", "t12", "t123", "t2"]
    start_day = T0.replace(hour=0)
    for day in range(2):
        for shard in range(3):
            base = start_day + timedelta(days=day)
            times = sorted(rng.sample(range(86_400_000), 400))
            recs = [
                rec(base + timedelta(milliseconds=ms), rng.choice(tenants), rng.choice(["accepted", "escalated"]))
                for ms in times
            ]
            write(day_dir(tmp_path, base) / f"s{shard}.jsonl{'.gz' if shard == 2 else ''}", recs)
    start, end = start_day + timedelta(hours=5), start_day + timedelta(days=1, hours=20)
    scanner = make_scanner(tmp_path, block_size=701)

    for tenant in tenants:
        for n in (1, 30, 10_000):
            result = await scanner.newest(tenant, start=start, end=end, n=n)
            assert pcs(result.records) == oracle(tmp_path, tenant, "escalated", start, end)[:n]
        batches = [b async for b in scanner.iter_window(tenant, start=start, end=end, batch=64)]
        got = sorted(r.pcs_id for b in batches for r in b)
        assert got == sorted(oracle(tmp_path, tenant, None, start, end))
        assert all(len(b) <= 64 for b in batches)


@pytest.mark.parametrize(
    ("tenant", "n", "start", "end", "message"),
    [
        ("acme*", 10, T0, T0, "invalid tenant id"),
        ('a"b', 10, T0, T0, "invalid tenant id"),
        ("acme", 0, T0, T0, "n must be"),
        ("acme", 10, T0, T0 - timedelta(seconds=1), "starts after it ends"),
        ("acme", 10, T0 - timedelta(days=400), T0, "more than"),
    ],
)
async def test_bad_arguments_get_a_clear_error(
    tmp_path: Path, tenant: str, n: int, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await WormScanner(tmp_path).newest(tenant, start=start, end=end, n=n)
