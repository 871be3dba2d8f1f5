"""`/flk export <tenant> escalations [n]`: the tenant's newest n escalations from the WORM audit
log as a CSV file (runbook §5, short-term 3: "export last 1000 escalations to CSV").

Exactly that tenant's records (the parsed ``tenant_id``, not a substring), newest first,
across day folders; the bot uploads the file at ``CsvExport.path`` as ``CsvExport.filename`` with
``CsvExport.summary`` as its comment.
"""

from __future__ import annotations

import asyncio
import csv
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from commands.config import RunbookConfig
from commands.context import Context
from commands.registry import UsageError, Verb, register, tenant_arg
from integrations.errors import BackendError
from integrations.worm import WormRecord

HEADER = ("pcs_id", "ts", "D_hat", "coh_star", "reason", "policy_version")
_DIGITS = re.compile(r"[0-9]{1,18}")
# A text cell, or any part of it after a separator a spreadsheet may split on (`,` `;` tab `|`,
# whatever the locale), that starts with one of = + - @ tab CR is a formula (CSV injection).
_FORMULA = re.compile(r"(?:^|[,;\t|])\s*[=+\-@\t\r]")


def _rows(word: str) -> int:
    if not _DIGITS.fullmatch(word.replace(",", "").replace("_", "")):
        raise UsageError(f"`{word[:20]}` is not a number of rows")
    return int(word.replace(",", "").replace("_", ""))


def parse_args(args: list[str]) -> dict[str, Any]:
    if len(args) < 2:
        raise UsageError("expected a tenant and `escalations`")
    if len(args) > 3:
        raise UsageError("too many arguments")
    tenant = tenant_arg(args[0])
    if args[1].lower() != "escalations":
        raise UsageError(f"only `escalations` can be exported, not `{args[1][:40]}`")
    return {"tenant": tenant, "what": "escalations", "n": _rows(args[2]) if len(args) == 3 else None}


VERB = register(
    Verb(
        "export",
        "export <tenant> escalations [n]",
        "runbook §5: the newest n escalations (default 1000) from the WORM audit log as a CSV file",
        parse_args,
        examples=("export acme escalations", "export acme escalations 5000"),
    )
)


def rows_for(n: int | None, config: RunbookConfig) -> int:
    """The number of rows to export; UsageError (with the verb's usage) outside 1..cap."""
    cap = config.export.max_rows
    rows = config.export.default_rows if n is None else n
    if rows < 1:
        raise UsageError("export at least one row", VERB)
    if rows > cap:
        raise UsageError(f"at most {cap:,} rows can be exported at once, not {rows:,}", VERB)
    return rows


@dataclass(frozen=True)
class CsvExport:
    tenant: str
    filename: str
    path: Path  # the UTF-8 CSV, in a temporary file the caller moves or deletes
    rows: int
    requested: int
    summary: str


def _text(value: str) -> str:
    return "'" + value if _FORMULA.search(value) else value


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_csv(records: Iterable[WormRecord], out: TextIO) -> None:
    """The CSV, row by row into ``out`` (never the whole document in memory)."""
    # Every cell quoted: no value can end its cell or its row early.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER)
    for r in records:
        writer.writerow(
            (
                _text(r.pcs_id),
                _iso(r.ts),
                _number(r.D_hat),
                _number(r.coh_star),
                _text(r.reason),
                _text(r.policy_version),
            )
        )


def _to_temp_file(records: Sequence[WormRecord], tenant: str) -> Path:
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", prefix=f"flk-export-{tenant}-", suffix=".csv", delete=False
    ) as out:
        write_csv(records, out)
    return Path(out.name)


def _summary(tenant: str, records: Sequence[WormRecord], requested: int, days: int, skipped: str) -> str:
    if not records:
        return f"no escalations of `{tenant}` in the last {days} days{skipped}"
    lead = f"newest {len(records):,} escalations" if len(records) == requested else f"all {len(records):,} escalations"
    span = f"{records[-1].ts:%Y-%m-%d %H:%M} → {records[0].ts:%Y-%m-%d %H:%M} UTC"
    versions = ", ".join(
        f"{v or 'unknown'} ×{n:,}" for v, n in Counter(r.policy_version for r in records).most_common(3)
    )
    within = "" if len(records) == requested else f" in the last {days} days"
    return f"{lead} of `{tenant}`{within}, {span} (policy {versions}){skipped}"


async def run_export(ctx: Context, tenant: str, n: int | None = None, *, now: datetime | None = None) -> CsvExport:
    """The newest ``n`` escalations of ``tenant`` as CSV; BackendError when the WORM log is not configured."""
    tenant_arg(tenant)
    rows = rows_for(n, ctx.config)
    if ctx.worm is None:
        raise BackendError("WORM audit log", "no WORM root configured (FLK_WORM_ROOT)")
    end = now or datetime.now(UTC)
    days = ctx.config.export.lookback_days
    result = await ctx.worm.newest(tenant, start=end - timedelta(days=days), end=end, outcome="escalated", n=rows)
    stats = result.stats
    skipped = f"; {stats.malformed} malformed WORM lines skipped" if stats.malformed else ""
    return CsvExport(
        tenant=tenant,
        filename=f"escalations-{tenant}-{end:%Y%m%dT%H%MZ}.csv",
        path=await asyncio.to_thread(_to_temp_file, result.records, tenant),
        rows=len(result.records),
        requested=rows,
        summary=_summary(tenant, result.records, rows, days, skipped),
    )
