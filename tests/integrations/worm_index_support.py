"""What the WORM index tests share: a generated day's tenants and outcomes, lines of every
kind a writer (or a broken one) leaves, closed hour files, and the two ways to scan them."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from integrations.worm import WormScanner
from tests.integrations.worm_support import COMPACT, day_dir, rec, write

DAY0 = datetime(2031, 3, 8, tzinfo=UTC)
LATER = DAY0 + timedelta(days=30)  # every file of the generated days is closed by then
# Ids that are prefixes of each other, as the runbook's grep confuses them.
TENANTS = ["t1", "t10", "t12", "t123", "acme", "acme1"]
OUTCOMES = ["accepted", "escalated", "rejected"]
DUPLICATES = [f"{t}0" for t in TENANTS]  # the tenant of a line that gives its tenant_id twice


def indexed(root: Path, cache: Path, **options: Any) -> WormScanner:
    return WormScanner(root, index_cache=cache, clock=lambda: LATER, **options)


def direct(root: Path) -> WormScanner:
    return WormScanner(root, index="off")


def line_of(ts: datetime, tenant: str, outcome: str, kind: str) -> str:
    body = rec(ts, tenant, outcome)
    if kind == "spaced":
        return json.dumps(body) + "\n"
    if kind == "nested":  # another tenant's id in a nested object, and in the reason
        body |= {"meta": {"tenant_id": random.choice(TENANTS)}, "reason": f"first seen for tenant_id {tenant}1"}
    if kind == "duplicate":  # the last of two tenant_id keys is the one a JSON reader keeps
        return json.dumps(body, separators=COMPACT)[:-1] + f',"tenant_id":"{tenant}0"}}\n'
    if kind == "not_json":
        return '{"ts":"' + body["ts"] + '","tenant_id":"' + tenant + '",oops}\n'
    if kind == "no_tenant":
        del body["tenant_id"]
    if kind == "bad_ts":
        body["ts"] = "yesterday"
    if kind == "typed_oddly":  # a well-formed record whose fields have other JSON types
        body |= {"D_hat": "1.5", "coh_star": True, "policy_version": 7}
    if kind == "blank":
        return "\n"
    return json.dumps(body, separators=COMPACT) + "\n"


KINDS = ["plain"] * 12 + ["spaced", "nested", "duplicate", "not_json", "no_tenant", "bad_ts", "typed_oddly", "blank"]


def hour_file(root: Path, hour: int, tenants: list[str], n: int, seed: int, day: datetime = DAY0) -> Path:
    rng = random.Random(seed)
    base = day + timedelta(hours=hour)
    recs = [
        rec(base + timedelta(milliseconds=ms), rng.choice(tenants), rng.choice(OUTCOMES))
        for ms in sorted(rng.sample(range(3_600_000), n))
    ]
    path = day_dir(root, base) / f"backend-0-{hour:02d}.jsonl"
    write(path, recs)
    return path
