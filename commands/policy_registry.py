"""The `policy-registry` configmap: each key's JSON value (versions and per-tenant entries)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
