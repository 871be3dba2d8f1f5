"""`/flk export <tenant> escalations [n]`: exactly the tenant's newest n escalations, across
midnight, as CSV; bad numbers are usage errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.config import Export as ExportConfig
from commands.config import RunbookConfig
from commands.context import Context
from commands.export import HEADER, parse_args, rows_for, run_export
from commands.registry import UsageError, parse
from integrations.worm import WormScanner
from sandbox.up import Sandbox

MIDNIGHT = datetime(2031, 3, 10, tzinfo=UTC)
NOW = MIDNIGHT + timedelta(minutes=30)


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_hours(root: Path, records: list[dict[str, Any]], tail: str = "") -> None:
    """One file per hour in its day folder; ``tail`` (a cut line) ends the newest file."""
    by_file: dict[Path, list[str]] = {}
    for r in records:
        ts = datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
        path = root / f"{ts:%Y/%m/%d}" / f"backend-0-{ts:%H}.jsonl"
        by_file.setdefault(path, []).append(json.dumps(r, separators=(",", ":")))
    newest = max(by_file)
    for path, lines in by_file.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n" + (tail if path == newest else ""))


@pytest.fixture
def worm_root(tmp_path: Path) -> Path:
    """An hour either side of midnight: every 30 s a record of t1, of t10 and of xt1, each
    tenant's every third one escalated (every 90 s); the last file ends in a cut line."""
    records = []
    for k in range(240):
        ts = MIDNIGHT - timedelta(hours=1) + timedelta(seconds=30 * k)
        for tenant in ("t1", "t10", "xt1"):
            records.append(
                {
                    "ts": iso(ts),
                    "tenant_id": tenant,
                    "pcs_id": f"pcs-{tenant}-{k}",
                    "D_hat": 1.5 + k / 1000,
                    "coh_star": 0.8,
                    "verify_outcome": "escalated" if k % 3 == 0 else "accepted",
                    "reason": '=HYPERLINK("x")' if k == 180 else "D_hat above tol_D",
                    "policy_version": "v7",
                }
            )
    write_hours(tmp_path, records, tail='{"ts":"2031-03-10T00:59:')
    return tmp_path


def context_on(root: Path, config: RunbookConfig | None = None) -> Context:
    return Context(config or RunbookConfig(), None, None, None, None, None, WormScanner(root))  # type: ignore[arg-type]


def rows(content: bytes) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(content.decode()))
    assert tuple(reader.fieldnames or ()) == HEADER
    return list(reader)


async def test_newest_n_of_exactly_that_tenant_across_midnight(worm_root: Path) -> None:
    # Up to NOW (00:30) t1 escalated 21 times after midnight: 25 reach back into the day before,
    # and nothing after NOW is taken.
    export = await run_export(context_on(worm_root), "t1", 25, now=NOW)
    got = rows(export.path.read_bytes())
    assert [r["pcs_id"] for r in got] == [f"pcs-t1-{k}" for k in range(180, 180 - 25 * 3, -3)]
    assert got[-1]["ts"].startswith("2031-03-09T23:") and got[0]["ts"].startswith("2031-03-10T00:")
    assert export.rows == export.requested == 25
    assert export.filename == "escalations-t1-20310310T0030Z.csv"
    assert "newest 25 escalations of `t1`" in export.summary and "1 malformed WORM lines skipped" in export.summary
    first = got[0]
    # A text cell that a spreadsheet would run as a formula is defused.
    assert first["reason"] == '\'=HYPERLINK("x")'
    assert (first["D_hat"], first["coh_star"], first["policy_version"]) == (repr(1.5 + 180 / 1000), "0.8", "v7")


async def test_fewer_escalations_than_asked(worm_root: Path) -> None:
    export = await run_export(context_on(worm_root), "t10", 1000, now=NOW)
    assert export.rows == 61 and "all 61 escalations of `t10` in the last 7 days" in export.summary
    assert {r["pcs_id"].rsplit("-", 1)[0] for r in rows(export.path.read_bytes())} == {"pcs-t10"}
    nothing = await run_export(context_on(worm_root), "t2", None, now=NOW)
    assert nothing.rows == 0 and rows(nothing.path.read_bytes()) == []
    assert "no escalations of `t2`" in nothing.summary


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("export t1 escalations lots", "is not a number"),
        ("export t1 escalations -5", "is not a number"),
        ("export t1 escalations 1e3", "is not a number"),
        ("export t1 accepted", "only `escalations`"),
        ("export t1", "expected a tenant"),
        ("export t1 escalations 5 6", "too many"),
    ],
)
def test_bad_export_arguments(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert message in str(caught.value)
    assert "Usage: `/flk export <tenant> escalations [n]`" in caught.value.text()


def test_row_counts_and_the_cap() -> None:
    assert parse_args(["t1", "escalations", "2,500"])["n"] == 2500
    config = RunbookConfig()
    assert rows_for(None, config) == 1000
    assert rows_for(100_000, config) == 100_000
    for n in (0, 100_001):
        with pytest.raises(UsageError) as caught:
            rows_for(n, config)
        assert "Usage: `/flk export" in caught.value.text()
    small = RunbookConfig(export=ExportConfig(max_rows=10))
    with pytest.raises(UsageError, match="at most 10 rows"):
        rows_for(11, small)


async def test_over_the_cap_reads_nothing(tmp_path: Path) -> None:
    config = RunbookConfig(export=ExportConfig(max_rows=10))
    with pytest.raises(UsageError):
        await run_export(context_on(tmp_path / "missing", config), "t1", 11, now=NOW)


# -- against the running sandbox's WORM files ------------------------------------------


@pytest.fixture(scope="module")
async def sandbox_ctx(sandbox: Sandbox) -> AsyncIterator[Context]:
    settings, config = load_settings(sandbox.env)
    ctx = await build_context(settings, config)
    try:
        yield ctx
    finally:
        await ctx.close()


def oracle(root: Path, tenant: str) -> list[tuple[str, str]]:
    """(ts, pcs_id) of every escalation of the tenant, newest first, from every line of every file."""
    found = []
    for path in root.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["tenant_id"] == tenant and r["verify_outcome"] == "escalated":
                found.append((r["ts"], r["pcs_id"]))
    return sorted(found, reverse=True)


async def test_sandbox_export_matches_every_file(sandbox: Sandbox, sandbox_ctx: Context) -> None:
    end = sandbox.live.start
    for tenant in sandbox.live.world.tenants:
        expected = oracle(sandbox.worm_root, tenant)
        today = sum(ts >= f"{end:%Y-%m-%d}" for ts, _ in expected)
        # Reach past midnight whenever there is a day before in the files.
        n = min(len(expected), today + 5)
        export = await run_export(sandbox_ctx, tenant, n, now=end)
        got = [(r["ts"], r["pcs_id"]) for r in rows(export.path.read_bytes())]
        assert got == expected[:n], tenant
        # Right after midnight there may be nothing today: then every row is from before.
        crosses = 0 < today < len(expected)
        assert len({ts[:10] for ts, _ in got}) == (2 if crosses else 1)
