"""The `policy-registry` configmap (versions and per-tenant entries) and the admin API's feature
flags: what a tenant ran before and after a promotion, and when its flags last changed.

Triage and diagnose both read them: a promotion that changed none of the tenant's thresholds,
or a flag flipped just before a breach, is evidence either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from commands.timestamps import parse_time

_NUMBER = re.compile(r"\d+")


def registry_entries(data: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Key -> its JSON object; values that are not JSON objects are left out."""
    entries = {}
    for key, raw in data.items():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries[key] = value
    return entries


@dataclass(frozen=True)
class Active:
    version: str | None
    source: str  # where it was read: the backend logs, else the tenant configmap
    # version -> (first, last) time seen in the logs, oldest first
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    active: str | None
    promoted_at: float | None
    author: str
    previous: str | None
    diff: list[str]  # "tol_D: 1.6 → 1.2"
    thresholds: dict[str, str]


def _version_order(key: str, entry: dict[str, Any]) -> tuple[float, int]:
    created = parse_time(entry.get("created_at"))
    number = _NUMBER.search(key)
    return (created.timestamp() if created else 0.0, int(number.group()) if number else -1)


def history(entries: dict[str, dict[str, Any]], tenant: str, current: Active) -> History:
    """The active version's promotion, its predecessor, and the tenant's threshold changes."""
    versions = sorted((k for k in entries if "." not in k), key=lambda k: _version_order(k, entries[k]))

    def thresholds(version: str | None) -> dict[str, str]:
        base = entries.get(version or "", {}).get("thresholds") or {}
        override = entries.get(f"{tenant}.{version}", {}).get("thresholds") or {}
        return {str(k): str(v) for k, v in {**base, **override}.items()}

    version = current.version
    promoted = parse_time(entries.get(f"{tenant}.{version}", {}).get("created_at")) or parse_time(
        entries.get(version or "", {}).get("created_at")
    )
    # The version the tenant ran before, as the logs show it; else the registry's predecessor.
    before = [v for v in current.seen if v != version]
    previous = before[-1] if before else None
    if previous is None and version in versions and versions.index(version) > 0:
        previous = versions[versions.index(version) - 1]
    old, new = thresholds(previous), thresholds(version)
    diff = [
        f"{k}: {old.get(k, 'unset')} → {new.get(k, 'unset')}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
    author = str(entries.get(version or "", {}).get("author", "unknown"))
    return History(version, promoted.timestamp() if promoted else None, author, previous, diff if previous else [], new)


@dataclass(frozen=True)
class FlagChange:
    """One dated flip of a feature flag, as the admin API's ``changes`` list gives it."""

    scope: str  # "global" or a tenant
    flag: str
    value: object
    previous: object
    at: float
    author: str

    def text(self) -> str:
        who = self.author.split(" <")[0] or "unknown"
        where = "globally" if self.scope == "global" else f"for {self.scope}"
        return f"flag {self.flag} {self.previous} → {self.value} {where} by {who}"


def flag_changes(body: Mapping[str, Any], tenant: str) -> list[FlagChange]:
    """The dated changes that reach ``tenant`` (its own and global ones), oldest first; a change
    without a readable time is left out (it cannot be set against a breach)."""
    found = []
    for raw in body.get("changes") or []:
        if not isinstance(raw, dict) or raw.get("scope") not in ("global", tenant):
            continue
        when = parse_time(raw.get("at"))
        if when is None or not isinstance(raw.get("flag"), str):
            continue
        found.append(
            FlagChange(
                raw["scope"],
                raw["flag"],
                raw.get("value"),
                raw.get("previous"),
                when.timestamp(),
                str(raw.get("author", "")),
            )
        )
    # A global flip the tenant overrides does not reach it.
    mine = (body.get("tenants") or {}).get(tenant) or {}
    found = [c for c in found if c.scope == tenant or not (isinstance(mine, dict) and c.flag in mine)]
    return sorted(found, key=lambda c: c.at)


def flip_before(changes: list[FlagChange], start: float, window_s: float, slack_s: float) -> FlagChange | None:
    """The flag change closest before ``start`` (within ``window_s``; ``slack_s`` after it counts
    as before: rate windows blur a breach's start)."""
    near = [c for c in changes if c.at <= start + slack_s and start - c.at <= window_s]
    return max(near, key=lambda c: c.at) if near else None
