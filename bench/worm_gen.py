"""Generate a big synthetic WORM audit day for the scanner benchmark.

Shape: ``<root>/YYYY/MM/DD/backend-<shard>-<HH>.jsonl``, records in time order within
each file, compact JSON lines as the backend writes them. 200 tenants named ``t0`` ..
``t199`` so that many ids are prefixes of others (``t1``, ``t12``, ``t123``): exactly the
case where the runbook's ``grep "tenant_id.*X"`` over-matches. Traffic per tenant is
skewed (a few big tenants, a long tail) and one incident tenant escalates heavily in
the last hours of the day. A small share of escalation reasons name another tenant.

The day is written once and reused while its parameters are unchanged (a manifest
next to it records them). ``earlier_days`` adds the days before it, each a copy of it
with its dates moved back: a week of the same traffic, for multi-day queries.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("/tmp/flk-bench/worm")
MANIFEST = "manifest.json"
# Version of the record layout below; bump it to regenerate cached days.
LAYOUT = 2


@dataclass(frozen=True)
class DaySpec:
    day: str = "2026-11-26"
    size_bytes: int = 1 << 30
    tenants: int = 200
    escalation_share: float = 0.03
    shards: int = 4
    incident_tenant: str = "t12"
    incident_weight: float = 0.02  # share of all traffic
    incident_hours: int = 4  # the incident tenant escalates in the last hours of the day
    incident_ratio: float = 0.30
    cross_tenant_reason_share: float = 0.002  # of escalations
    seed: int = 7
    layout: int = LAYOUT

    def folder(self, root: Path) -> Path:
        d = date.fromisoformat(self.day)
        return root / f"{d:%Y}" / f"{d:%m}" / f"{d:%d}"


@dataclass(frozen=True)
class DayInfo:
    spec: DaySpec
    folder: Path
    files: int
    bytes: int
    records: int
    escalations: int
    # Per tenant: record and escalation counts, the ground truth for the benchmark.
    per_tenant: dict[str, tuple[int, int]]

    @property
    def escalation_share(self) -> float:
        return self.escalations / self.records if self.records else 0.0


_REASONS = ("D_hat above tol_D", "coh_star below tol_coh", "D_hat above tol_D; coh_star below tol_coh")
_ACCEPTED_REASON = "within tolerance"
_APPROX_LINE = 196  # bytes, measured on this layout; only sizes the record count


def _weights(spec: DaySpec, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.permutation(spec.tenants) + 1
    w = 1.0 / ranks**0.9
    incident = int(spec.incident_tenant[1:])
    w[incident] = 0.0
    w *= (1.0 - spec.incident_weight) / w.sum()
    w[incident] = spec.incident_weight
    return w


def _base_ratio(spec: DaySpec) -> float:
    # Solve overall share = base + incident part of the day's excess, for the base ratio.
    frac = spec.incident_weight * spec.incident_hours / 24
    return (spec.escalation_share - frac * spec.incident_ratio) / (1 - frac)


def _hour_lines(
    spec: DaySpec, rng: np.random.Generator, weights: np.ndarray, start: datetime, hour: int, n: int
) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    incident = int(spec.incident_tenant[1:])
    offsets_ms = np.sort(rng.integers(0, 3_600_000, n))
    tenant = rng.choice(spec.tenants, size=n, p=weights)
    ratio = np.full(n, _base_ratio(spec))
    if hour >= 24 - spec.incident_hours:
        ratio[tenant == incident] = spec.incident_ratio
    escalated = rng.random(n) < ratio
    d_hat = np.where(escalated, rng.normal(1.72, 0.08, n), rng.normal(1.25, 0.1, n))
    coh = np.where(escalated, rng.normal(0.70, 0.04, n), rng.normal(0.86, 0.03, n))
    shard = rng.integers(0, spec.shards, n)
    reason_pick = rng.integers(0, len(_REASONS), n)
    cross = rng.random(n) < spec.cross_tenant_reason_share
    other = rng.integers(0, spec.tenants, n)
    pcs = rng.integers(0, 1 << 62, n)
    base = start + timedelta(hours=hour)
    stamp = base.strftime("%Y-%m-%dT%H:")
    per_shard: list[list[str]] = [[] for _ in range(spec.shards)]
    for i in range(n):
        ms = int(offsets_ms[i])
        ts = f"{stamp}{ms // 60000:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
        if escalated[i]:
            outcome = "escalated"
            reason = _REASONS[reason_pick[i]]
            if cross[i]:
                reason = f"pcs_id replayed; first seen for tenant_id t{other[i]}"
        else:
            outcome, reason = "accepted", _ACCEPTED_REASON
        per_shard[shard[i]].append(
            f'{{"ts":"{ts}","tenant_id":"t{tenant[i]}","pcs_id":"pcs-{pcs[i]:016x}",'
            f'"D_hat":{d_hat[i]:.4f},"coh_star":{coh[i]:.4f},"verify_outcome":"{outcome}",'
            f'"reason":"{reason}","policy_version":"v41"}}\n'
        )
    counts = np.bincount(tenant, minlength=spec.tenants)
    esc_counts = np.bincount(tenant[escalated], minlength=spec.tenants)
    return per_shard, counts, esc_counts


def _close(path: Path, at: datetime) -> None:
    """Date the file as the writer leaves it: last written when its hour ended."""
    os.utime(path, (at.timestamp(), at.timestamp()))


def _load_cached(root: Path, spec: DaySpec) -> DayInfo | None:
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("spec") != asdict(spec):
        return None
    folder = spec.folder(root)
    if sum(1 for _ in folder.glob("*.jsonl")) != data["files"]:
        return None
    per_tenant = {k: (v[0], v[1]) for k, v in data["per_tenant"].items()}
    return DayInfo(spec, folder, data["files"], data["bytes"], data["records"], data["escalations"], per_tenant)


def generate_day(root: Path = DEFAULT_ROOT, spec: DaySpec | None = None, *, force: bool = False) -> DayInfo:
    """Write (or reuse) one synthetic day under ``root`` and return its ground truth."""
    spec = spec or DaySpec()
    if not force and (cached := _load_cached(root, spec)):
        return cached
    rng = np.random.default_rng(spec.seed)
    weights = _weights(spec, rng)
    folder = spec.folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl*"):
        old.unlink()
    start = datetime.fromisoformat(spec.day).replace(tzinfo=UTC)
    per_hour = spec.size_bytes // _APPROX_LINE // 24
    counts = np.zeros(spec.tenants, dtype=np.int64)
    esc = np.zeros(spec.tenants, dtype=np.int64)
    total_bytes = files = 0
    for hour in range(24):
        per_shard, c, e = _hour_lines(spec, rng, weights, start, hour, per_hour)
        counts += c
        esc += e
        for shard, lines in enumerate(per_shard):
            data = "".join(lines).encode()
            path = folder / f"backend-{shard}-{hour:02d}.jsonl"
            path.write_bytes(data)
            _close(path, start + timedelta(hours=hour + 1))
            total_bytes += len(data)
            files += 1
    per_tenant = {f"t{i}": (int(counts[i]), int(esc[i])) for i in range(spec.tenants)}
    info = DayInfo(spec, folder, files, total_bytes, int(counts.sum()), int(esc.sum()), per_tenant)
    manifest = {
        "spec": asdict(spec),
        "files": files,
        "bytes": total_bytes,
        "records": info.records,
        "escalations": info.escalations,
        "per_tenant": per_tenant,
    }
    (root / MANIFEST).write_text(json.dumps(manifest))
    return info


def earlier_days(info: DayInfo, count: int) -> list[Path]:
    """The ``count`` day folders before ``info``'s, written (or reused) as copies of it whose
    records are dated that day; oldest first."""
    day = date.fromisoformat(info.spec.day)
    folders = []
    for k in range(count, 0, -1):
        earlier = day - timedelta(days=k)
        folder = info.folder.parents[2] / f"{earlier:%Y}" / f"{earlier:%m}" / f"{earlier:%d}"
        sources = sorted(info.folder.glob("*.jsonl"))
        if sum(p.stat().st_size for p in folder.glob("*.jsonl")) != info.bytes:
            folder.mkdir(parents=True, exist_ok=True)
            old, new = f'"ts":"{day}T'.encode(), f'"ts":"{earlier}T'.encode()
            for source in sources:
                (folder / source.name).write_bytes(source.read_bytes().replace(old, new))
                _close(folder / source.name, datetime.fromtimestamp(source.stat().st_mtime, UTC) - timedelta(days=k))
        folders.append(folder)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--force", action="store_true", help="regenerate even when cached")
    args = parser.parse_args()
    info = generate_day(args.root, DaySpec(size_bytes=args.size_mib << 20), force=args.force)
    print(
        f"{info.folder}: {info.files} files, {info.bytes / 2**30:.2f} GiB, {info.records:,} records, "
        f"{info.escalation_share:.2%} escalated"
    )


if __name__ == "__main__":
    main()
