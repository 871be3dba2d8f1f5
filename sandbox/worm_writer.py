"""The WORM audit log as the backend writes it: ``<root>/YYYY/MM/DD/<pod>-<HH>.jsonl``, one
JSON object per verification, UTC day folders, each file in time order.

Per tenant, ``worm.per_min`` records on a jittered grid anchored at the world's start; each
slot's draws come from a hash of the seed, the tenant and the slot, so a later call for a
later span appends exactly the records that follow (``write_worm(..., since=previous.until)``).
Escalations follow ``traffic.escalation_ratio`` through a golden-ratio sequence, which keeps
their share close to the ratio even over a few minutes.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from sandbox.backend.draws import digest, rfc3339_ms, uniforms
from sandbox.backend.pods import backend_pod_names
from sandbox.backend.policy import PolicyTimeline
from sandbox.world.live import LiveWorld
from sandbox.world.spec import Distribution, Tenant

WINDOW_S = 24 * 3600.0
_STANDARD = NormalDist()
_GOLDEN = (math.sqrt(5) - 1) / 2
_SILVER = math.sqrt(2) - 1
# Valid ranges; well-formed values are held inside, malformed ones are pushed out.
D_HAT_RANGE = (0.0, 3.0)
COH_RANGE = (0.0, 1.0)


@dataclass
class WormSummary:
    root: Path
    since: float
    until: float
    files: list[Path] = field(default_factory=list)
    # tenant -> {"accepted": n, "escalated": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # tenant -> escalations written with out-of-range or missing values
    malformed: dict[str, int] = field(default_factory=dict)

    @property
    def days(self) -> list[str]:
        """The day folders written to, as ``YYYY/MM/DD``."""
        return sorted({"/".join(p.relative_to(self.root).parts[:3]) for p in self.files})


def _draw(dist: Distribution, u: float) -> float:
    return dist.mean + dist.sd * _STANDARD.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _malform(record: dict[str, Any], kind: int) -> None:
    """Upstream corruption: one of four ways a record goes wrong."""
    if kind == 0:
        record["D_hat"] = -abs(record["D_hat"])
    elif kind == 1:
        record["D_hat"] = round(record["D_hat"] + D_HAT_RANGE[1], 4)
    elif kind == 2:
        record["coh_star"] = round(record["coh_star"] + COH_RANGE[1], 4)
    else:
        del record["coh_star"]


class _TenantRecords:
    def __init__(self, live: LiveWorld, tid: str, tenant: Tenant, policy: PolicyTimeline) -> None:
        self.live, self.tid, self.spec, self.policy = live, tid, tenant.worm, policy
        self.interval = 60.0 / self.spec.per_min
        self.shift = live.at(self.spec.shift_at) if self.spec.shift_at is not None else math.inf
        since = self.spec.malformed_since
        self.malformed_from = live.at(since) if since is not None else -math.inf
        phases = uniforms(digest(live.world.seed, "worm-phase", tid))
        self.phase, self.malformed_phase = phases[0], phases[1]

    def between(self, since: float, until: float) -> list[tuple[float, float, dict[str, Any]]]:
        """(time, shard draw, record) for the slots whose record falls in [since, until)."""
        out = []
        # The escalation ratio is a step function: look it up per step, not per record.
        steps = self.live.breakpoints(self.tid, ("escalation_ratio",), since, until)
        ratios = [self.live.value(self.tid, "escalation_ratio", s) for s in steps]
        first = math.floor((since - self.live.t0) / self.interval) - 1
        last = math.ceil((until - self.live.t0) / self.interval)
        for k in range(first, last + 1):
            draw = digest(self.live.world.seed, "worm", self.tid, k, size=40)
            jitter, u_d, u_c, u_shard = uniforms(draw[:32])
            t = self.live.t0 + (k + jitter) * self.interval
            if since <= t < until:
                ratio = ratios[max(bisect.bisect_right(steps, t) - 1, 0)]
                out.append((t, u_shard, self._record(k, t, ratio, (u_d, u_c), draw[32:].hex())))
        return out

    def _record(self, k: int, t: float, ratio: float, u: tuple[float, float], pcs: str) -> dict[str, Any]:
        spec = self.spec
        escalated = (self.phase + k * _GOLDEN) % 1.0 < ratio
        dists = spec.escalated if escalated else spec.accepted
        if t >= self.shift and spec.shifted is not None:
            dists = spec.shifted
        record: dict[str, Any] = {
            "ts": rfc3339_ms(t),
            "tenant_id": self.tid,
            "pcs_id": f"pcs-{pcs}",
            "D_hat": round(_clamp(_draw(dists["D_hat"], u[0]), D_HAT_RANGE), 4),
            "coh_star": round(_clamp(_draw(dists["coh_star"], u[1]), COH_RANGE), 4),
            "verify_outcome": "escalated" if escalated else "accepted",
            "reason": spec.reasons[k % len(spec.reasons)] if escalated else "",
            "policy_version": self.policy.version(self.tid, t),
        }
        malformed = (self.malformed_phase + k * _SILVER) % 1.0 < spec.malformed_share
        if escalated and malformed and t >= self.malformed_from:
            _malform(record, k % 4)
            record["_malformed"] = True
        return record


def write_worm(live: LiveWorld, root: Path, *, since: float | None = None, until: float | None = None) -> WormSummary:
    """Write (or append) the records in [since, until): by default the 24 h before the world's start."""
    until = live.t0 if until is None else until
    since = until - WINDOW_S if since is None else since
    summary = WormSummary(root=Path(root), since=since, until=until)
    policy = PolicyTimeline(live)
    shards = backend_pod_names(live.world)
    records: list[tuple[float, int, dict[str, Any]]] = []
    for tid, tenant in live.world.tenants.items():
        records.extend(_TenantRecords(live, tid, tenant, policy).between(since, until))
        summary.counts[tid] = {"accepted": 0, "escalated": 0}
        summary.malformed[tid] = 0
    records.sort(key=lambda r: r[0])
    files: dict[str, list[str]] = defaultdict(list)
    for t, u_shard, record in records:
        summary.counts[record["tenant_id"]][record["verify_outcome"]] += 1
        if record.pop("_malformed", False):
            summary.malformed[record["tenant_id"]] += 1
        shard = shards[int(u_shard * len(shards))]
        files[time.strftime(f"%Y/%m/%d/{shard}-%H.jsonl", time.gmtime(t))].append(json.dumps(record) + "\n")
    for name, lines in files.items():
        path = summary.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
        summary.files.append(path)
    summary.files.sort()
    return summary
