"""The WORM index on generated days: every query the bot makes gives the same answer through
the index as by a direct scan and by a full decode of every line."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from integrations.worm import WormScanner, build_index, index_build
from tests.integrations.worm_index_support import (
    DAY0,
    DUPLICATES,
    KINDS,
    LATER,
    OUTCOMES,
    TENANTS,
    direct,
    indexed,
    line_of,
)
from tests.integrations.worm_support import day_dir, oracle, pcs, write


@dataclass(frozen=True)
class FileSpec:
    day: int
    hour: int
    shard: int
    gz: bool
    torn: bool  # the last line cut short, as by a writer that died mid-write
    lines: tuple[tuple[int, str, str, str], ...]  # (ms into the hour, tenant, outcome, kind)


@st.composite
def file_specs(draw: st.DrawFn) -> list[FileSpec]:
    specs = []
    for day in range(2):
        for hour in draw(st.sets(st.integers(0, 23), min_size=1, max_size=2)):
            for shard in range(draw(st.integers(1, 2))):
                n = draw(st.integers(0, 40))
                stamps = sorted(draw(st.lists(st.integers(0, 3_599_999), min_size=n, max_size=n)))
                line = st.tuples(st.sampled_from(TENANTS), st.sampled_from(OUTCOMES), st.sampled_from(KINDS))
                lines = tuple((ms, *draw(line)) for ms in stamps)
                specs.append(FileSpec(day, hour, shard, draw(st.booleans()), draw(st.booleans()), lines))
    return specs


def write_specs(root: Path, specs: list[FileSpec]) -> None:
    for f in specs:
        base = DAY0 + timedelta(days=f.day, hours=f.hour)
        text = "".join(line_of(base + timedelta(milliseconds=ms), t, o, kind) for ms, t, o, kind in f.lines)
        if f.torn and text:
            text = text[: -random.randint(2, 40)]
        path = day_dir(root, base) / f"backend-{f.shard}-{f.hour:02d}.jsonl"
        if f.gz:
            write(path.with_name(path.name + ".gz"), [], tail=text)
        else:
            path.write_text(text)


async def answers(root: Path, scanner: WormScanner, start: datetime, end: datetime) -> dict[str, Any]:
    """Every kind of query the bot makes, for every tenant (and one nobody has)."""
    out: dict[str, Any] = {}
    for tenant in [*TENANTS, "t", "nobody"]:
        every = oracle(root, tenant, "escalated", start, end)
        for n in (1, 5, 10_000):
            r = await scanner.newest(tenant, start=start, end=end, n=n)
            out[f"{tenant} newest {n}"] = pcs(r.records)
            # Complete means nothing was left out (an index may know that where a direct scan cannot).
            assert not r.complete or pcs(r.records) == every
            assert r.complete or len(every) >= n
        w = await scanner.window(tenant, start=start, end=end, outcome="accepted")
        out[f"{tenant} window"] = (w.records, w.complete)
        c = await scanner.outcome_counts(tenant, start=start, end=end)
        out[f"{tenant} counts"] = c.counts
        batches = [b async for b in scanner.iter_window(tenant, start=start, end=end, batch=7)]
        out[f"{tenant} batches"] = sorted(r.pcs_id for b in batches for r in b)
    return out


def differences(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    return {k: (got.get(k), want.get(k)) for k in got.keys() | want.keys() if got.get(k) != want.get(k)}


# Derandomized (the same examples every run) and not shrunk: a failure is reported at once,
# as generated, instead of after minutes of shrinking.
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(specs=file_specs(), window=st.tuples(st.integers(0, 47), st.integers(1, 48)))
async def test_indexed_answers_equal_direct_scans_and_a_full_decode(
    specs: list[FileSpec], window: tuple[int, int]
) -> None:
    random.seed(len(specs))
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "worm", Path(tmp) / "cache"
        write_specs(root, specs)
        start = DAY0 + timedelta(hours=window[0], minutes=17)
        end = start + timedelta(hours=window[1])

        expected = await answers(root, direct(root), start, end)
        first = await answers(root, indexed(root, cache), start, end)  # indexes the files it reads when it meets them
        build_index(root, now=LATER)  # and the rest
        stored = indexed(root, cache, index="use")  # only reads the indexes
        again = await answers(root, stored, start, end)

        assert differences(first, expected) == {}
        assert differences(again, expected) == {}
        for tenant in TENANTS:
            assert expected[f"{tenant} newest 10000"] == oracle(root, tenant, "escalated", start, end)
            assert expected[f"{tenant} batches"] == sorted(oracle(root, tenant, None, start, end))
        # The stored indexes were used, and only read: every plain file with a line that is
        # not blank is read through its index by some tenant's query (or by all of them).
        used = [await stored.window(t, start=DAY0, end=DAY0 + timedelta(days=2)) for t in TENANTS + DUPLICATES]
        assert sum(r.stats.indexes_built for r in used) == 0
        has_lines = any(not f.gz and any(kind != "blank" for *_, kind in f.lines) for f in specs)
        assert (sum(r.stats.indexed for r in used) > 0) == has_lines


@pytest.mark.parametrize("block", [1, 7, 97, 4096])
async def test_lines_across_read_blocks_and_too_long_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    # The builder reads in blocks: lines straddle them, and some run longer than max_line.
    monkeypatch.setattr(index_build, "BLOCK", block)
    root, cache = tmp_path / "worm", tmp_path / "cache"
    rng = random.Random(block)
    base = DAY0 + timedelta(hours=9)
    lines = []
    for i in range(300):
        kind = rng.choice(KINDS)
        line = line_of(base + timedelta(seconds=i), rng.choice(TENANTS), rng.choice(OUTCOMES), kind)
        if i % 37 == 5:  # far past max_line, with or without the tenant's id in it
            line = line[:-2] + ',"pad":"' + "x" * 3000 + '"}\n'
        lines.append(line)
    text = "".join(lines) + "x" * 2500  # and a last line too long, without its newline
    (day_dir(root, base) / "backend-0-09.jsonl").write_text(text)
    start, end = DAY0, DAY0 + timedelta(days=1)

    # A direct scan with blocks no longer than max_line skips every line past max_line too.
    plain = WormScanner(root, index="off", max_line=1024, block_size=1024)
    for tenant in TENANTS:
        for outcome in (None, "escalated"):
            want = plain.newest_sync(tenant, start, end, outcome, 10_000)
            got = WormScanner(root, index_cache=cache, clock=lambda: LATER, max_line=1024)
            result = got.newest_sync(tenant, start, end, outcome, 10_000)
            assert pcs(result.records) == pcs(want.records)
            assert result.stats.indexed == 1
            assert result.stats.malformed_by["too long"] >= 1  # the last line, whatever the tenant
