"""Timestamps as the API server writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(t: float) -> str:
    """``metav1.Time``: whole seconds, UTC, ``Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(t: float) -> str:
    """The kubelet's log timestamp: always nine fractional digits."""
    whole = int(t // 1)
    nanos = round((t - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return f"{datetime.fromtimestamp(whole, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp; ValueError when it is not one."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.timestamp()
