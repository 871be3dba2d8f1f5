"""What the world spec gained for generated worlds: jittered retry loops, corruption that starts
at a time, and dated feature-flag changes served by the admin API."""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
import yaml

from sandbox.backend import BackendLogs, BackendServer
from sandbox.world.live import LiveWorld
from sandbox.world.load import WorldError, load_world
from sandbox.world.spec import World
from sandbox.worm_writer import write_worm

T0 = datetime.fromisoformat("2026-07-09T13:20:00+00:00").timestamp()
WORLD = """
namespace: ext
seed: 31
backend: {pods: 2}
policy_registry:
  - {version: v5, created_at: -9d, thresholds: {tol_D: "1.5", tol_coh: "0.7"}}
feature_flags:
  global: {strict_schema: false}
  wisp-2: {strict_schema: true}
flag_changes:
  - {scope: wisp-2, flag: strict_schema, value: false, at: -3d}
  - {scope: wisp-2, flag: strict_schema, value: true, previous: false, at: -35m, author: "ana <ana@x.example>"}
tenants:
  wisp-2:
    scenario: quota
    config: {strict_mode: "true", token_rate: "9", burst_rate: "9", daily_quota: "9", policy_version: v5}
    policy: {tol_D: "1.5", tol_coh: "0.7"}
    signing_keys: {k: "wisp-key"}
    traffic: {ingest_rps: 10, escalation_ratio: {"-24h": 0.01, "-1h": 0.2}, signature_error_ratio: 0}
    logs:
      - {message: quota exceeded, per_min: 120, since: -30m, timing: fixed, jitter: 0.3,
         sources: ["192.0.2.7", "192.0.2.8"]}
    worm:
      per_min: 30
      accepted: {D_hat: {mean: 1.1, sd: 0.05}, coh_star: {mean: 0.9, sd: 0.02}}
      escalated: {D_hat: {mean: 1.7, sd: 0.05}, coh_star: {mean: 0.6, sd: 0.02}}
      malformed_share: 0.5
      malformed_since: -1h
"""


def _world(text: str = WORLD) -> World:
    return World.model_validate(yaml.safe_load(text))


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_jittered_retries_keep_their_rate_and_rhythm_but_not_exact_spacing() -> None:
    logs = BackendLogs(LiveWorld(_world(), t0=T0))
    lines = sorted(line for pod in logs.pod_names() for line in logs.for_pod(pod, now=T0))
    times = [t for t, line in lines if "quota exceeded" in line]
    assert len(times) == pytest.approx(30 * 120, abs=2)
    assert min(times) >= T0 - 1800 and max(times) < T0
    by_source: dict[str, list[float]] = defaultdict(list)
    for t, line in lines:
        if "quota exceeded" in line:
            by_source[line.rsplit("src=", 1)[1]].append(t)
    assert set(by_source) == {"192.0.2.7", "192.0.2.8"}
    for source_times in by_source.values():
        gaps = [b - a for a, b in itertools.pairwise(sorted(source_times))]
        # Each source retries every 1 s, moved by up to ±0.15 s: regular, yet not a metronome.
        assert statistics.median(gaps) == pytest.approx(1.0, abs=0.05)
        assert 0.02 < statistics.pstdev(gaps) / statistics.fmean(gaps) < 0.25


def test_jittered_lines_come_once_whatever_the_pieces() -> None:
    live = LiveWorld(_world(), t0=T0)
    whole = BackendLogs(live)
    pieces = BackendLogs(live)
    pod = pieces.pod_names()[0]
    for now in (T0 - 600.3, T0 - 600, T0 - 17.7, T0):
        pieces.for_pod(pod, now=now)
    for name in whole.pod_names():
        assert pieces.for_pod(name, now=T0) == whole.for_pod(name, now=T0)


def test_jitter_needs_fixed_timing(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(WORLD.replace("timing: fixed, jitter: 0.3", "jitter: 0.3"))
    with pytest.raises(WorldError, match="'jitter' applies to 'timing: fixed' only"):
        load_world(path)


def test_corruption_starts_at_malformed_since(tmp_path: Path) -> None:
    summary = write_worm(LiveWorld(_world(), t0=T0), tmp_path)
    records = [json.loads(line) for path in summary.files for line in path.read_text().splitlines()]
    escalated = [r for r in records if r["verify_outcome"] == "escalated"]

    def malformed(r: dict) -> bool:
        return "coh_star" not in r or not (0 <= r["D_hat"] <= 3 and 0 <= r["coh_star"] <= 1)

    before = [r for r in escalated if _stamp(r["ts"]) < T0 - 3600]
    after = [r for r in escalated if _stamp(r["ts"]) >= T0 - 3600]
    assert before and not any(malformed(r) for r in before)
    assert sum(map(malformed, after)) / len(after) == pytest.approx(0.5, abs=0.05)
    assert summary.malformed["wisp-2"] == sum(map(malformed, escalated))


async def test_the_admin_api_dates_each_flag_change() -> None:
    live = LiveWorld(_world(), t0=T0)
    server = BackendServer(live, None, lambda tenant: None)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/admin/flags") as response:
            body = await response.json()
    finally:
        await server.stop()
    assert body["tenants"] == {"wisp-2": {"strict_schema": True}}
    assert [(c["value"], c["previous"], _stamp(c["at"]), c["author"]) for c in body["changes"]] == [
        (False, None, T0 - 3 * 86400, "flag-bot"),
        (True, False, T0 - 35 * 60, "ana <ana@x.example>"),
    ]


async def test_a_world_without_flag_changes_serves_no_changes_key() -> None:
    server = BackendServer(LiveWorld(load_world(), t0=T0), None, lambda tenant: None)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/admin/flags") as response:
            assert set(await response.json()) == {"global", "tenants"}
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "value: true, previous: false, at: -35m",
            "value: false, previous: true, at: -35m",
            "the newest change of wisp-2.strict_schema sets False, but feature_flags holds True",
        ),
        (
            "{scope: wisp-2, flag: strict_schema, value: false, at: -3d}",
            "{scope: wisp-3, flag: x, value: 1, at: -3d}",
            "'wisp-3' is neither 'global' nor a tenant",
        ),
    ],
)
def test_flag_changes_must_agree_with_the_flags(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "world.yaml"
    assert old in WORLD
    path.write_text(WORLD.replace(old, new))
    with pytest.raises(WorldError, match=message):
        load_world(path)
