"""The tenant config repository: a real git repository with ``infra/tenants/<t>.yaml`` and
the world's config history as dated commits, so ``git log --since="24 hours ago"`` tells
what a real one would.

One initial commit 30 days back holds every tenant's file as it was before its history;
then each ``git_history`` commit (all tenants, in time order) applies its ``set``, dated
``live.at(commit.at)`` and authored by the commit's author. git runs with argument lists
and an isolated environment: no shell, no global or system config.
"""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import yaml

from sandbox.world.live import LiveWorld
from sandbox.world.spec import Tenant, World

INITIAL_AGE = timedelta(days=30)
COMMITTER = ("flk-sandbox", "sandbox@fractal-lba.example")
INITIAL_MESSAGE = "tenants: initial configuration"


class TenantRepoError(Exception):
    """git failed while building the repository; the message names the command's complaint."""


def _previous(world: World, tenant: Tenant, key: str, value: str) -> str | None:
    """What ``key`` held before the history first set it to ``value`` (None: it was not there)."""
    if key == "policy_version":
        ordered = [p.version for p in sorted(world.policy_registry, key=lambda p: p.created_at)]
        if value in ordered and ordered.index(value) > 0:
            return ordered[ordered.index(value) - 1]
        return tenant.config.get(key)
    if value in tenant.signing_keys:
        keys = sorted(tenant.signing_keys)
        return keys[keys.index(value) - 1] if keys.index(value) > 0 else None
    if value.isdigit():
        return str(int(value) * 4 // 5)  # a number the history raised to this
    return None


def _initial(world: World, tid: str, tenant: Tenant) -> dict[str, str]:
    data = {"tenant_id": tid, "region": tenant.region, **tenant.config}
    for commit in sorted(tenant.git_history, key=lambda c: c.at, reverse=True):
        for key, value in commit.set.items():
            before = _previous(world, tenant, key, value)
            if before is None:
                data.pop(key, None)
            else:
                data[key] = before
    return data


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_COMMITTER_NAME=COMMITTER[0],
        GIT_COMMITTER_EMAIL=COMMITTER[1],
        LC_ALL="C",
    )
    return env


def _git(repo: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        complaint = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise TenantRepoError(f"git {args[0]} failed: {complaint[:200]}")


def _commit(repo: Path, env: dict[str, str], when: float, author: str, message: str) -> None:
    name, email = parseaddr(author)
    stamp = f"{int(when)} +0000"
    dated = {
        **env,
        "GIT_AUTHOR_NAME": name or author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
    }
    _git(repo, dated, "add", "--all", "infra")
    # A change that restates a value leaves no diff; the commit still belongs in the log.
    _git(repo, dated, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)


def _write(path: Path, data: dict[str, str]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), encoding="utf-8")


def create_tenant_repo(live: LiveWorld, path: Path) -> Path:
    """Create the repository at ``path`` (absent or empty folder) and return ``path``."""
    repo = Path(path)
    if repo.exists() and any(repo.iterdir()):
        raise TenantRepoError(f"{repo} already exists and is not empty")
    world = live.world
    files = {tid: _initial(world, tid, tenant) for tid, tenant in world.tenants.items()}
    history = sorted(
        ((commit.at, tid, commit) for tid, tenant in world.tenants.items() for commit in tenant.git_history),
        key=lambda item: item[0],
    )
    first = min([-INITIAL_AGE, *(at - timedelta(hours=1) for at, _, _ in history)])
    env = _git_env()
    folder = repo / "infra" / "tenants"
    folder.mkdir(parents=True, exist_ok=True)
    _git(repo, env, "init", "--quiet", "--initial-branch=main")
    for tid, data in files.items():
        _write(folder / f"{tid}.yaml", data)
    _commit(repo, env, live.at(first), f"{COMMITTER[0]} <{COMMITTER[1]}>", INITIAL_MESSAGE)
    for at, tid, commit in history:
        files[tid].update(commit.set)
        _write(folder / f"{tid}.yaml", files[tid])
        _commit(repo, env, live.at(at), commit.author, commit.message)
    return repo
