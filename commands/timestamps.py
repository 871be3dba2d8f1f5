"""Timestamps as the backends write them (RFC 3339, ``Z`` or an offset, sometimes none)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """An aware datetime, or None for anything else: not a string, empty, unparsable, or Go's
    zero time (``0001-01-01T00:00:00Z``, Alertmanager's "no end")."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
