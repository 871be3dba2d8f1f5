"""What the WORM tests share: records as the backend writes them, files, and an oracle that
decodes every line of every data file."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from integrations.worm import WormRecord

COMPACT = (",", ":")


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def rec(ts: datetime, tenant: str, outcome: str = "accepted", **extra: Any) -> dict[str, Any]:
    body = {
        "ts": iso(ts),
        "tenant_id": tenant,
        "pcs_id": f"pcs-{tenant}-{int(ts.timestamp() * 1000)}",
        "D_hat": 1.5,
        "coh_star": 0.8,
        "verify_outcome": outcome,
        "reason": "D_hat above tol_D" if outcome == "escalated" else "within tolerance",
        "policy_version": "v7",
    }
    return body | extra


def day_dir(root: Path, ts: datetime) -> Path:
    folder = root / f"{ts:%Y}" / f"{ts:%m}" / f"{ts:%d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write(path: Path, records: list[dict[str, Any]], *, seps: tuple[str, str] = COMPACT, tail: str = "") -> None:
    text = "".join(json.dumps(r, separators=seps) + "\n" for r in records) + tail
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def data_paths(root: Path) -> list[Path]:
    """The data files of the day folders (not the indexes in their .flk-index/)."""
    return sorted(p for p in root.glob("*/*/*/*") if p.name.endswith((".jsonl", ".jsonl.gz")))


def oracle(root: Path, tenant: str, outcome: str | None, start: datetime, end: datetime) -> list[str]:
    """pcs ids of the matching records, newest first, by decoding every line of every file."""
    found: list[tuple[str, str]] = []
    for path in data_paths(root):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        for line in data.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict) or obj.get("tenant_id") != tenant or "ts" not in obj:
                continue
            if outcome and obj.get("verify_outcome") != outcome:
                continue
            if iso(start) <= obj["ts"] <= iso(end):
                found.append((obj["ts"], obj["pcs_id"]))
    return [pcs for _, pcs in sorted(found, reverse=True)]


def line_count(root: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in data_paths(root) if p.name.endswith(".jsonl"))


def pcs(records: list[WormRecord]) -> list[str]:
    return [r.pcs_id for r in records]
