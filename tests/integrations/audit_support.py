"""What the audit log tests share: logs of n records, their lines, and a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integrations.audit import AuditLog
from integrations.audit_records import canonical

KEY = b"test-audit-key-7f3e9a1c5b2d4e6f"
OTHER_KEY = b"another-audit-key-0a1b2c3d4e5f6a7b"


def write_log(path: Path, count: int, *, key: bytes | None = None) -> list[dict[str, Any]]:
    log = AuditLog(path, key=key, fsync=False)
    return [
        log.append(f"U{i}", "mitigation.applied", incident_id="inc-7", tenant="t-1", details={"n": i, "ok": True})
        for i in range(1, count + 1)
    ]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def line_of(record: dict[str, Any]) -> bytes:
    return canonical(record) + b"\n"


def records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(path)]
