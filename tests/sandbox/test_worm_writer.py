"""The WORM audit files: day folders, exact record keys, escalation share, shifts, corruption."""

from __future__ import annotations

import json
import re
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.backend import backend_pod_names
from sandbox.world.live import LiveWorld
from sandbox.world.load import load_world
from sandbox.world.spec import World
from sandbox.worm_writer import WormSummary, write_worm

T0 = datetime.fromisoformat("2026-05-02T10:15:00+00:00").timestamp()
KEYS = ["ts", "tenant_id", "pcs_id", "D_hat", "coh_star", "verify_outcome", "reason", "policy_version"]
REASONS = ["D_hat above tol_D", "coh_star below tol_coh"]
WORLD = f"""
namespace: ledger
seed: 99
backend: {{pods: 2, deployment: verifier}}
policy_registry:
  - {{version: v10, created_at: -40d, thresholds: {{tol_D: "1.5"}}}}
  - {{version: v11, created_at: -3h, thresholds: {{tol_D: "1.4"}}}}
tenants:
  osprey:
    scenario: escalations
    config: {{strict_mode: "true", token_rate: "9", burst_rate: "9", daily_quota: "9", policy_version: v11}}
    policy: {{tol_D: "1.4", tol_coh: "0.7"}}
    signing_keys: {{k: "osprey-key"}}
    traffic: {{ingest_rps: 10, escalation_ratio: {{"-24h": 0.03, "-4h": 0.3}}, signature_error_ratio: 0}}
    worm:
      per_min: 20
      accepted: {{D_hat: {{mean: 1.1, sd: 0.05}}, coh_star: {{mean: 0.9, sd: 0.02}}}}
      escalated: {{D_hat: {{mean: 1.9, sd: 0.05}}, coh_star: {{mean: 0.6, sd: 0.02}}}}
      shift_at: -2h
      shifted: {{D_hat: {{mean: 1.5, sd: 0.05}}, coh_star: {{mean: 0.75, sd: 0.02}}}}
      malformed_share: 0.25
      reasons: {json.dumps(REASONS)}
  wren:
    scenario: none
    config: {{strict_mode: "true", token_rate: "9", burst_rate: "9", daily_quota: "9", policy_version: v10}}
    policy: {{tol_D: "1.5", tol_coh: "0.7"}}
    signing_keys: {{k: "wren-key"}}
    traffic: {{ingest_rps: 4, escalation_ratio: 0.01, signature_error_ratio: 0}}
    worm:
      per_min: 4
      accepted: {{D_hat: {{mean: 1.2, sd: 0.1}}, coh_star: {{mean: 0.85, sd: 0.03}}}}
      escalated: {{D_hat: {{mean: 1.6, sd: 0.05}}, coh_star: {{mean: 0.7, sd: 0.02}}}}
"""
Record = dict[str, Any]


def _when(record: Record) -> float:
    return datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


def _read(summary: WormSummary) -> dict[Path, list[Record]]:
    return {path: [json.loads(line) for line in path.read_text().splitlines()] for path in summary.files}


def _well_formed(record: Record) -> bool:
    return list(record) == KEYS and 0 <= record["D_hat"] <= 3 and 0 <= record["coh_star"] <= 1


@pytest.fixture(scope="module")
def live() -> LiveWorld:
    return LiveWorld(World.model_validate(yaml.safe_load(WORLD)), t0=T0)


@pytest.fixture(scope="module")
def written(live: LiveWorld, tmp_path_factory: pytest.TempPathFactory) -> tuple[WormSummary, dict[Path, list[Record]]]:
    summary = write_worm(live, tmp_path_factory.mktemp("worm"))
    return summary, _read(summary)


@pytest.fixture(scope="module")
def records(written: tuple[WormSummary, dict[Path, list[Record]]]) -> list[Record]:
    return sorted((r for rs in written[1].values() for r in rs), key=_when)


def test_files_span_two_day_folders_in_time_order(
    live: LiveWorld, written: tuple[WormSummary, dict[Path, list[Record]]]
) -> None:
    summary, files = written
    assert summary.days == ["2026/05/01", "2026/05/02"]
    pods = backend_pod_names(live.world)
    for path, rows in files.items():
        day, name = "/".join(path.relative_to(summary.root).parts[:3]), path.name
        match = re.fullmatch(r"(.+)-(\d\d)\.jsonl", name)
        assert match and match.group(1) in pods and rows
        times = [_when(r) for r in rows]
        assert times == sorted(times)
        for record in rows:
            assert record["ts"].startswith(day.replace("/", "-") + "T" + match.group(2))
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    for day in summary.days:
        assert any(rows for path, rows in files.items() if day in path.as_posix())


def test_records_have_exact_keys_and_unique_ids(live: LiveWorld, records: list[Record]) -> None:
    assert len({r["pcs_id"] for r in records}) == len(records)
    assert all(T0 - 86400 <= _when(r) < T0 for r in records)
    for record in records:
        if record["verify_outcome"] == "accepted":
            assert _well_formed(record) and record["reason"] == ""
        else:
            assert record["verify_outcome"] == "escalated" and record["reason"] in REASONS
        assert isinstance(record.get("D_hat", 0.0), float)
        assert record["pcs_id"].startswith("pcs-")
    for tid, tenant in live.world.tenants.items():
        count = sum(r["tenant_id"] == tid for r in records)
        assert count == pytest.approx(tenant.worm.per_min * 1440, abs=2)


def test_summary_counts_what_was_written(
    written: tuple[WormSummary, dict[Path, list[Record]]], records: list[Record]
) -> None:
    summary, _ = written
    for tid, counts in summary.counts.items():
        for outcome, count in counts.items():
            assert count == sum(r["tenant_id"] == tid and r["verify_outcome"] == outcome for r in records)
        malformed = [r for r in records if r["tenant_id"] == tid and not _well_formed(r)]
        assert summary.malformed[tid] == len(malformed)


def test_escalated_share_follows_the_ratio(records: list[Record]) -> None:
    def share(since: float, until: float) -> float:
        chosen = [r for r in records if r["tenant_id"] == "osprey" and since <= _when(r) < until]
        return sum(r["verify_outcome"] == "escalated" for r in chosen) / len(chosen)

    assert share(T0 - 86400, T0 - 4 * 3600) == pytest.approx(0.03, abs=0.003)
    assert share(T0 - 4 * 3600, T0) == pytest.approx(0.3, abs=0.01)
    assert share(T0 - 600, T0) == pytest.approx(0.3, abs=0.03)  # even over minutes
    wren = [r for r in records if r["tenant_id"] == "wren"]
    assert sum(r["verify_outcome"] == "escalated" for r in wren) / len(wren) == pytest.approx(0.01, abs=0.003)


def test_values_shift_for_accepted_and_escalated_records(records: list[Record]) -> None:
    shift = T0 - 2 * 3600

    def mean(outcome: str, key: str, before: bool) -> float:
        return statistics.mean(
            r[key]
            for r in records
            if r["tenant_id"] == "osprey"
            and r["verify_outcome"] == outcome
            and _well_formed(r)
            and (_when(r) < shift) == before
        )

    assert mean("accepted", "D_hat", True) == pytest.approx(1.1, abs=0.01)
    assert mean("accepted", "coh_star", True) == pytest.approx(0.9, abs=0.005)
    assert mean("escalated", "D_hat", True) == pytest.approx(1.9, abs=0.02)
    assert mean("accepted", "D_hat", False) == pytest.approx(1.5, abs=0.01)
    assert mean("escalated", "coh_star", False) == pytest.approx(0.75, abs=0.01)


def test_a_share_of_escalations_is_malformed(records: list[Record]) -> None:
    escalated = [r for r in records if r["tenant_id"] == "osprey" and r["verify_outcome"] == "escalated"]
    broken = [r for r in escalated if not _well_formed(r)]
    assert len(broken) / len(escalated) == pytest.approx(0.25, abs=0.03)
    assert any("coh_star" not in r for r in broken)
    assert any(r.get("D_hat", 0) < 0 for r in broken) and any(r.get("D_hat", 0) > 3 for r in broken)
    assert any(r.get("coh_star", 0) > 1 for r in broken)
    assert all(_well_formed(r) for r in records if r["tenant_id"] == "wren")


def test_policy_version_is_the_one_active_at_the_time(records: list[Record]) -> None:
    rollout = T0 - 3 * 3600
    osprey = [(r["policy_version"], _when(r)) for r in records if r["tenant_id"] == "osprey"]
    assert {v for v, t in osprey if t < rollout} == {"v10"}
    assert {v for v, t in osprey if t >= rollout} == {"v11"}
    assert {r["policy_version"] for r in records if r["tenant_id"] == "wren"} == {"v10"}


def test_appending_a_later_span_continues_the_files(live: LiveWorld, tmp_path: Path) -> None:
    whole = write_worm(live, tmp_path / "whole", since=T0 - 3 * 3600, until=T0 + 1800)
    first = write_worm(live, tmp_path / "parts", since=whole.since, until=T0 - 3600 + 0.5)
    second = write_worm(live, tmp_path / "parts", since=first.until, until=T0 + 1800)
    assert second.since == first.until
    contents = {p.relative_to(whole.root): p.read_text() for p in whole.files}
    parts = {p.relative_to(second.root): p.read_text() for p in {*first.files, *second.files}}
    assert parts == contents


def test_default_world_crosses_midnight(tmp_path: Path) -> None:
    world = load_world()
    live = LiveWorld(world, t0=datetime.fromisoformat("2026-11-26T16:20:00+00:00").timestamp())
    summary = write_worm(live, tmp_path)
    assert summary.days == ["2026/11/25", "2026/11/26"]
    rows = [json.loads(line) for path in summary.files for line in path.read_text().splitlines()]
    for tid, tenant in world.tenants.items():
        mine = [r for r in rows if r["tenant_id"] == tid]
        expected = sum(live.value(tid, "escalation_ratio", _when(r)) for r in mine)
        escalated = sum(r["verify_outcome"] == "escalated" for r in mine)
        assert abs(escalated - expected) <= max(3.0, 0.1 * expected), tid
        assert {r["policy_version"] for r in mine} <= {p.version for p in world.policy_registry}
        assert len(mine) == pytest.approx(tenant.worm.per_min * 1440, abs=2)


def test_a_start_just_after_midnight_still_fills_both_days(live: LiveWorld, tmp_path: Path) -> None:
    t0 = datetime.fromisoformat("2026-05-03T00:00:30+00:00").timestamp()
    summary = write_worm(LiveWorld(live.world, t0=t0), tmp_path, since=t0 - 3600)
    assert summary.days == ["2026/05/02", "2026/05/03"]
    today = [p for p in summary.files if "2026/05/03" in p.as_posix()]
    assert sum(len(p.read_text().splitlines()) for p in today) == pytest.approx(30 / 60 * 24, abs=2)
