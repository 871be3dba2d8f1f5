"""WORM audit records, scan statistics, and the decoding of one JSONL line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

# Kinds of skipped input, as counted in ScanStats.malformed_by.
NOT_JSON = "not JSON"
TRUNCATED = "truncated"
NO_TENANT = "no tenant_id"
BAD_TS = "bad ts"
TOO_LONG = "too long"


class WormRecord(msgspec.Struct, frozen=True, gc=False):
    """One audit record. ``D_hat`` / ``coh_star`` are None when missing or not a number
    (which is itself evidence of upstream corruption)."""

    ts: datetime
    tenant_id: str
    pcs_id: str
    D_hat: float | None
    coh_star: float | None
    verify_outcome: str
    reason: str
    policy_version: str


@dataclass
class ScanStats:
    files: int = 0  # files read
    files_skipped: int = 0  # outside the window, or not needed once the newest n were found
    bytes: int = 0  # bytes read (decompressed for .gz)
    lines: int = 0  # lines read
    parsed: int = 0  # lines decoded as JSON (the rest were rejected by the byte pre-filter)
    matched: int = 0  # records of the tenant (and outcome) inside the window
    malformed: int = 0
    malformed_by: Counter[str] = field(default_factory=Counter)
    missing_days: int = 0
    missing_root: bool = False
    unreadable_files: int = 0  # unreadable or corrupt compressed files, skipped
    indexed: int = 0  # files read through their index (only the candidate lines)
    indexes_built: int = 0  # of those, indexes built by this scan
    indexes_rejected: int = 0  # index files found stale, corrupt or foreign (the file was scanned or re-indexed)
    seconds: float = 0.0

    def skip(self, kind: str) -> None:
        self.malformed += 1
        self.malformed_by[kind] += 1

    def summary(self) -> str:
        """One line for a finding, e.g. "96 files, 5,478,264 lines in 1.20 s; 3 malformed lines
        skipped (2 not JSON, 1 truncated)"."""
        through = f" ({self.indexed} through the index)" if self.indexed else ""
        parts = [f"{self.files} files{through}, {self.lines:,} lines in {self.seconds:.2f} s"]
        if self.missing_root:
            parts.append("WORM root missing")
        elif self.missing_days:
            parts.append(f"{self.missing_days} day folder{'s' * (self.missing_days != 1)} missing")
        if self.malformed:
            kinds = ", ".join(f"{n} {kind}" for kind, n in self.malformed_by.most_common())
            parts.append(f"{self.malformed} malformed line{'s' * (self.malformed != 1)} skipped ({kinds})")
        if self.unreadable_files:
            parts.append(f"{self.unreadable_files} unreadable file{'s' * (self.unreadable_files != 1)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ScanResult:
    records: list[WormRecord]
    stats: ScanStats
    # True when every match in the window is in ``records``; False when the scan stopped
    # once it had enough, so older matches may exist.
    complete: bool


@dataclass(frozen=True)
class OutcomeCounts:
    counts: dict[str, int]  # verify_outcome -> records in the window
    stats: ScanStats

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Typed(msgspec.Struct, gc=False):
    """A well-formed record's fields, typed; other fields are skipped unread."""

    ts: str
    tenant_id: str
    pcs_id: str = ""
    D_hat: float | None = None
    coh_star: float | None = None
    verify_outcome: str = ""
    reason: str = ""
    policy_version: str = ""


class _Fields(msgspec.Struct, gc=False):
    """The fields of any record, of any JSON type (checked by ``decode``)."""

    ts: Any = None
    tenant_id: Any = None
    pcs_id: Any = None
    D_hat: Any = None
    coh_star: Any = None
    verify_outcome: Any = None
    reason: Any = None
    policy_version: Any = None


class _Ts(msgspec.Struct, gc=False):
    ts: Any = None


_TYPED = msgspec.json.Decoder(_Typed)
_FIELDS = msgspec.json.Decoder(_Fields)
_TS = msgspec.json.Decoder(_Ts)


def fields(line: bytes) -> _Fields | str:
    """The record fields of a JSON object line, else the kind of malformed line it is: the
    one JSON reading of a line, shared by the scanner and the index builder."""
    try:
        return _FIELDS.decode(line)
    except msgspec.ValidationError:  # JSON, but not an object
        return NOT_JSON
    except msgspec.DecodeError:  # bad JSON or bad UTF-8; cut short when it has no newline
        return NOT_JSON if line.endswith(b"\n") else TRUNCATED


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def line_ts(line: bytes) -> datetime | None:
    """The ``ts`` of a line, or None; used to find a file's time bounds."""
    try:
        return parse_ts(_TS.decode(line).ts)
    except msgspec.DecodeError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decode(line: bytes, stats: ScanStats) -> WormRecord | None:
    """Decode one line; a line that is not a usable record is counted and gives None."""
    if not line.strip():
        return None
    stats.parsed += 1
    try:
        typed = _TYPED.decode(line)
    except msgspec.DecodeError:  # not JSON, or some field of another type: read leniently below
        pass
    else:
        ts = parse_ts(typed.ts)
        if typed.tenant_id and ts is not None:
            return WormRecord(
                ts,
                typed.tenant_id,
                typed.pcs_id,
                typed.D_hat,
                typed.coh_star,
                typed.verify_outcome,
                typed.reason,
                typed.policy_version,
            )
    obj = fields(line)
    if isinstance(obj, str):
        stats.skip(obj)
        return None
    tenant = obj.tenant_id
    if not isinstance(tenant, str) or not tenant:
        stats.skip(NO_TENANT)
        return None
    ts = parse_ts(obj.ts)
    if ts is None:
        stats.skip(BAD_TS)
        return None
    return WormRecord(
        ts=ts,
        tenant_id=tenant,
        pcs_id=_text(obj.pcs_id),
        D_hat=_number(obj.D_hat),
        coh_star=_number(obj.coh_star),
        verify_outcome=_text(obj.verify_outcome),
        reason=_text(obj.reason),
        policy_version=_text(obj.policy_version),
    )
