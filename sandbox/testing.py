"""Helpers for tests that need a running sandbox: a second world unlike the default one, and
a way to start a Sandbox for a world given as YAML text."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from sandbox.up import Sandbox

# One tenant per runbook scenario plus a healthy one, like the default world, but with other
# names, namespace, rates, breach times and policy versions: generic code must not notice.
_SECOND_WORLD = """\
namespace: lba-staging
seed: 7
backend: {pods: 2, baseline_log_per_min: 4}

policy_registry:
  - version: v7
    created_at: -30d
    thresholds: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
  - version: v8
    created_at: -55m
    author: mlopez
    thresholds: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
    tenants:
      tundra-3: {tol_D: "1.1", tol_coh: "0.8"}

tenants:
  zephyr-9:
    region: ap-south-1
    scenario: signatures
    verdict: rotation not synchronised
    config: {strict_mode: "true", token_rate: "300", burst_rate: "450", daily_quota: "20000000", policy_version: v7}
    policy: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
    signing_keys: {k-new: "zp-bmV3LWtleS1mb3ItemVwaHly", k-old: "zp-b2xkLWtleS1mb3ItemVwaHly"}
    events:
      - {object: secret, reason: KeyRotated, message: "signing key k-new added, k-old retired", at: -70m}
    traffic:
      ingest_rps: 120
      escalation_ratio: 0.002
      signature_error_ratio: {"-24h": 0.0005, "-70m": 0.09}
    logs:
      - message: signature verification failed
        level: warn
        per_min: 90
        since: -70m
        sources: ["10.9.0.5"]
        fields: {key_id: k-old, reason: unknown_key}
    worm:
      accepted: {D_hat: {mean: 1.2, sd: 0.07}, coh_star: {mean: 0.87, sd: 0.02}}
      escalated: {D_hat: {mean: 1.6, sd: 0.05}, coh_star: {mean: 0.69, sd: 0.02}}
    remedy: {action: key-window, recovers_to: {signature_error_ratio: 0.0005}}

  orbit:
    region: ap-south-1
    scenario: escalations
    verdict: data distribution shifted
    config: {strict_mode: "true", token_rate: "80", burst_rate: "120", daily_quota: "2000000", policy_version: v7}
    policy: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
    signing_keys: {k1: "or-b3JiaXQta2V5LW9uZQ"}
    traffic:
      ingest_rps: {"-24h": 18, "-8h": 22}
      escalation_ratio: {"-24h": 0.006, "-3h": 0.008, "-15m": 0.07}
      signature_error_ratio: 0.002
    logs:
      - {message: pcs escalated, per_min: 60, since: -15m, fields: {reason: D_hat_above_tol}}
    worm:
      accepted: {D_hat: {mean: 1.3, sd: 0.1}, coh_star: {mean: 0.84, sd: 0.04}}
      escalated: {D_hat: {mean: 1.62, sd: 0.05}, coh_star: {mean: 0.7, sd: 0.03}}
      shift_at: -15m
      shifted: {D_hat: {mean: 1.7, sd: 0.1}, coh_star: {mean: 0.78, sd: 0.05}}
    remedy: {action: degraded-mode, recovers_to: {escalation_ratio: 0.007}}

  halcyon:
    region: eu-central-1
    scenario: quota
    verdict: retry storm
    config: {strict_mode: "true", token_rate: "40", burst_rate: "60", daily_quota: "1000000", policy_version: v7}
    policy: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
    signing_keys: {k1: "hc-aGFsY3lvbi1rZXktb25l"}
    traffic:
      ingest_rps: 35
      escalation_ratio: {"-24h": 0.004, "-50m": 0.031}
      signature_error_ratio: 0.001
      quota_exceeded_rps: {"-24h": 0, "-50m": 22}
    logs:
      - {message: quota exceeded, level: warn, per_min: 300, since: -50m, timing: fixed, sources: ["203.0.113.4"]}
    worm:
      accepted: {D_hat: {mean: 1.25, sd: 0.1}, coh_star: {mean: 0.85, sd: 0.03}}
      escalated: {D_hat: {mean: 1.6, sd: 0.04}, coh_star: {mean: 0.7, sd: 0.02}}
    remedy: {action: quota, recovers_to: {quota_exceeded_rps: 0, escalation_ratio: 0.004}}

  tundra-3:
    region: eu-central-1
    scenario: policy
    verdict: bad policy version
    config: {strict_mode: "true", token_rate: "200", burst_rate: "400", daily_quota: "12000000", policy_version: v8}
    policy: {tol_D: "1.1", tol_coh: "0.8", min_samples: "16"}
    signing_keys: {k1: "tu-dHVuZHJhLWtleS1vbmU"}
    events:
      - object: policy-configmap
        reason: PolicyPromoted
        message: policy v8 promoted for tundra-3 by mlopez
        at: -55m
    traffic:
      ingest_rps: 75
      escalation_ratio: {"-24h": 0.002, "-55m": 0.048}
      signature_error_ratio: 0.0004
    logs:
      - {message: pcs escalated, per_min: 100, since: -55m, fields: {reason: coh_star_below_tol}}
    worm:
      accepted: {D_hat: {mean: 1.05, sd: 0.06}, coh_star: {mean: 0.85, sd: 0.02}}
      escalated: {D_hat: {mean: 1.2, sd: 0.05}, coh_star: {mean: 0.77, sd: 0.02}}
    git_history:
      - at: -56m
        author: "mlopez <mlopez@lba.example>"
        message: "tundra-3: promote policy v8"
        set: {policy_version: v8}
    remedy: {action: rollback-policy, recovers_to: {escalation_ratio: 0.002}}

  meridian:
    region: us-west-2
    scenario: none
    config: {strict_mode: "true", token_rate: "60", burst_rate: "90", daily_quota: "3000000", policy_version: v7}
    policy: {tol_D: "1.5", tol_coh: "0.72", min_samples: "16"}
    signing_keys: {k1: "me-bWVyaWRpYW4ta2V5LW9uZQ"}
    traffic:
      ingest_rps: {"-24h": 12, "-12h": 16}
      escalation_ratio: 0.005
      signature_error_ratio: 0.0009
    worm:
      accepted: {D_hat: {mean: 1.28, sd: 0.08}, coh_star: {mean: 0.86, sd: 0.03}}
      escalated: {D_hat: {mean: 1.61, sd: 0.04}, coh_star: {mean: 0.71, sd: 0.02}}
"""


def second_world_yaml() -> str:
    """A 5-tenant world (one per scenario + healthy) with names and numbers of its own."""
    return _SECOND_WORLD


def small_world_yaml(escalation_ratios: Mapping[str, float | Mapping[str, float]], namespace: str = "tiny") -> str:
    """A minimal world: healthy tenants whose escalation ratio follows ``escalation_ratios``
    (a number, or an ``{offset: ratio}`` step function), all on one policy version."""
    tenants = {
        name: {
            "scenario": "none",
            "config": {
                "strict_mode": "true",
                "token_rate": "50",
                "burst_rate": "80",
                "daily_quota": "100000",
                "policy_version": "v1",
            },
            "policy": {"tol_D": "1.4", "tol_coh": "0.7"},
            "signing_keys": {"k1": f"{name}-signing-key"},
            "traffic": {"ingest_rps": 25, "escalation_ratio": ratio, "signature_error_ratio": 0.001},
            "worm": {
                "accepted": {"D_hat": {"mean": 1.2, "sd": 0.1}, "coh_star": {"mean": 0.85, "sd": 0.03}},
                "escalated": {"D_hat": {"mean": 1.6, "sd": 0.05}, "coh_star": {"mean": 0.7, "sd": 0.02}},
            },
        }
        for name, ratio in escalation_ratios.items()
    }
    world = {
        "namespace": namespace,
        "policy_registry": [{"version": "v1", "created_at": "-2d", "thresholds": {"tol_D": "1.4", "tol_coh": "0.7"}}],
        "tenants": tenants,
    }
    return yaml.safe_dump(world, sort_keys=False)


@contextlib.asynccontextmanager
async def sandbox_for(world_yaml: str, **options: Any) -> AsyncIterator[Sandbox]:
    """Run a Sandbox for a world given as YAML text; the file and everything else go away after."""
    with tempfile.TemporaryDirectory(prefix="flk-world-") as folder:
        path = Path(folder) / "world.yaml"
        path.write_text(world_yaml, encoding="utf-8")
        async with Sandbox(path, **options) as sandbox:
            yield sandbox


def child_processes(pid: int | None = None) -> set[int]:
    """Live (non-zombie) child process ids of ``pid`` (default: this process), from /proc."""
    parent = os.getpid() if pid is None else pid
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                children.add(int(stat.parent.name))
    return children


RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules.yaml"


def compressed_rules(folder: Path, *, window: str = "20s", for_: str = "0s", source: Path = RULES) -> Path:
    """The deployed FLKTenantSLOBreach rules with time compressed for tests and the demo: the
    same expressions and labels, a shorter rate window and no `for:` delay."""
    text = source.read_text(encoding="utf-8").replace("[5m]", f"[{window}]")
    text = re.sub(r"^(\s*)for: .*$", rf"\1for: {for_}", text, flags=re.MULTILINE)
    target = folder / "rules.yaml"
    target.write_text(text, encoding="utf-8")
    return target
