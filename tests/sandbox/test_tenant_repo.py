"""The tenant config repository: a real git repo whose log tells the world's config history."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sandbox.tenant_repo import COMMITTER, INITIAL_MESSAGE, TenantRepoError, create_tenant_repo
from sandbox.world.live import LiveWorld
from sandbox.world.load import load_world
from sandbox.world.spec import World

WORLD = """
namespace: harbor
policy_registry:
  - {version: v5, created_at: -60d, thresholds: {tol_D: "1.5"}}
  - {version: v6, created_at: -2h, thresholds: {tol_D: "1.3"}}
tenants:
  pike:
    scenario: policy
    config: {strict_mode: "true", token_rate: "70", burst_rate: "140", daily_quota: "600000", policy_version: v6}
    policy: {tol_D: "1.3", tol_coh: "0.7"}
    signing_keys: {s-1: "pike-one", s-2: "pike-two"}
    traffic: {ingest_rps: 3, escalation_ratio: 0.01, signature_error_ratio: 0}
    worm: &worm
      accepted: {D_hat: {mean: 1.2, sd: 0.1}, coh_star: {mean: 0.85, sd: 0.03}}
      escalated: {D_hat: {mean: 1.6, sd: 0.05}, coh_star: {mean: 0.7, sd: 0.02}}
    git_history:
      - {at: -2h5m, author: "Ana Ruiz <ana@harbor.example>", message: "pike: move to v6", set: {policy_version: v6}}
      - {at: -26h, message: "pike: rotate key", set: {signing_key_id: s-2}}
  carp:
    scenario: quota
    config: {strict_mode: "false", token_rate: "35", burst_rate: "50", daily_quota: "250000", policy_version: v5}
    policy: {tol_D: "1.5", tol_coh: "0.7"}
    signing_keys: {s-1: "carp-one"}
    traffic: {ingest_rps: 3, escalation_ratio: 0.01, signature_error_ratio: 0}
    worm: *worm
    git_history:
      - at: -5h
        author: "Bo Lind <bo@harbor.example>"
        message: "carp: tighten burst"
        set: {burst_rate: "50", strict_mode: "false"}
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _log(repo: Path, *args: str) -> list[list[str]]:
    out = _git(repo, "log", "--format=%at|%an|%ae|%cn|%ce|%ct|%s", *args)
    return [line.split("|") for line in out.splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[LiveWorld, Path]:
    live = LiveWorld(World.model_validate(yaml.safe_load(WORLD)), t0=time.time())
    repo = tmp_path_factory.mktemp("repo") / "tenants"
    assert create_tenant_repo(live, repo) == repo
    return live, repo


def test_history_commits_are_dated_and_authored(built: tuple[LiveWorld, Path]) -> None:
    live, repo = built
    log = _log(repo)
    hours = {"pike: move to v6": -2 - 5 / 60, "carp: tighten burst": -5, "pike: rotate key": -26, INITIAL_MESSAGE: -720}
    assert [entry[6] for entry in log] == list(hours)
    for at, _, _, committer, committer_email, committed, subject in log:
        assert int(at) == int(live.t0 + hours[subject] * 3600) == int(committed)
        assert (committer, committer_email) == COMMITTER
    assert log[0][1:3] == ["Ana Ruiz", "ana@harbor.example"]
    assert log[1][1:3] == ["Bo Lind", "bo@harbor.example"]
    assert log[2][1:3] == ["platform-bot", "platform@fractal-lba.example"]


def test_files_hold_the_config_and_commits_change_them(built: tuple[LiveWorld, Path]) -> None:
    live, repo = built
    for tid, tenant in live.world.tenants.items():
        data = yaml.safe_load((repo / "infra" / "tenants" / f"{tid}.yaml").read_text())
        assert data["tenant_id"] == tid and {k: data[k] for k in tenant.config} == tenant.config
    assert yaml.safe_load((repo / "infra/tenants/pike.yaml").read_text())["signing_key_id"] == "s-2"
    diff = _git(repo, "show", "--format=", "HEAD", "--", "infra/tenants/pike.yaml")
    assert "-policy_version: v5" in diff and "+policy_version: v6" in diff
    assert _git(repo, "status", "--porcelain") == ""


def test_runbook_query_sees_the_last_day_only(built: tuple[LiveWorld, Path]) -> None:
    _, repo = built
    recent = _git(repo, "log", "--oneline", "--since=24 hours ago", "--", "infra/tenants/pike.yaml")
    assert [line.split(" ", 1)[1] for line in recent.splitlines()] == ["pike: move to v6"]
    assert _git(repo, "log", "--oneline", "--since=24 hours ago", "--", "infra/tenants/nobody.yaml") == ""


def test_default_world_has_a_commit_per_history_entry(tmp_path: Path) -> None:
    live = LiveWorld(load_world())
    repo = create_tenant_repo(live, tmp_path / "repo")
    subjects = [entry[6] for entry in _log(repo)]
    history = sorted((c.at, c.message) for t in live.world.tenants.values() for c in t.git_history)
    assert subjects == [m for _, m in reversed(history)] + [INITIAL_MESSAGE]
    assert sorted(p.stem for p in (repo / "infra" / "tenants").glob("*.yaml")) == sorted(live.world.tenants)


def test_refuses_a_folder_in_use(built: tuple[LiveWorld, Path]) -> None:
    live, repo = built
    with pytest.raises(TenantRepoError, match="not empty"):
        create_tenant_repo(live, repo)
