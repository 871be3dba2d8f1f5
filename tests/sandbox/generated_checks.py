"""What each cause must leave in a generated world's spec, checked from the spec alone: the facts
a right diagnosis would stand on (a rotation before the breach, skewed signatures, a retry
rhythm, a promotion, a flag flip...)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from integrations.prometheus import Prometheus
from sandbox.up import Sandbox
from sandbox.world.spec import LogPattern, Tenant, World
from sandbox.world.truth import Cause, Truth

SLO = {"escalations": 0.02, "signatures": 0.01}
Check = Callable[[World, str, Truth], None]


def breaching_sli(truth: Truth) -> str:
    return "signatures" if truth.scenario == "signatures" else "escalations"


def ago(offset: timedelta) -> float:
    return -offset.total_seconds()


def rejections(spec: Tenant) -> list[LogPattern]:
    return [p for p in spec.logs if p.message == "quota exceeded"]


def _from_onset(spec: Tenant, truth: Truth, message: str) -> list[LogPattern]:
    found = [p for p in spec.logs if p.message == message and abs(ago(p.since) - (truth.onset_s or 0)) <= 1]
    assert found, (message, truth)
    return found


def _newest(keys: dict[str, str]) -> str:
    return max(keys, key=lambda k: (int("".join(c for c in k if c.isdigit()) or -1), k))


def wrong_key(world: World, name: str, truth: Truth) -> None:
    spec, onset = world.tenants[name], truth.onset_s or 0
    for p in _from_onset(spec, truth, "signature verification failed"):
        assert p.fields["key_id"] not in spec.signing_keys and abs(p.skew_s) < 30
    assert not any(e.object == "secret" and 0 <= ago(e.at) - onset <= 3600 for e in spec.events)


def rotation_not_synchronised(world: World, name: str, truth: Truth) -> None:
    spec, onset = world.tenants[name], truth.onset_s or 0
    rotations = [e for e in spec.events if e.object == "secret" and 0 < ago(e.at) - onset <= 900]
    assert len(rotations) == 1
    newest = _newest(spec.signing_keys)
    assert newest in rotations[0].message
    for p in _from_onset(spec, truth, "signature verification failed"):
        assert p.fields["key_id"] != newest and abs(p.skew_s) < 30


def clock_skew(world: World, name: str, truth: Truth) -> None:
    spec = world.tenants[name]
    for p in _from_onset(spec, truth, "signature verification failed"):
        assert p.fields["key_id"] in spec.signing_keys and abs(p.skew_s) > 40


def distribution_shift(world: World, name: str, truth: Truth) -> None:
    worm = world.tenants[name].worm
    assert worm.shift_at is not None and ago(worm.shift_at) == round(truth.onset_s or 0)
    assert worm.shifted is not None and worm.malformed_share == 0
    moved = max(abs(worm.shifted[k].mean - worm.accepted[k].mean) / worm.accepted[k].sd for k in ("D_hat", "coh_star"))
    assert moved >= 2.4


def _version(world: World, spec: Tenant) -> tuple[int, float]:
    ordered = sorted(world.policy_registry, key=lambda v: v.created_at)
    index = next(i for i, v in enumerate(ordered) if v.version == spec.config["policy_version"])
    return index, ago(ordered[index].created_at)


def policy_too_strict(world: World, name: str, truth: Truth) -> None:
    spec = world.tenants[name]
    index, created = _version(world, spec)
    version = sorted(world.policy_registry, key=lambda v: v.created_at)[index]
    assert name in version.tenants and created > 86400
    assert float(spec.policy["tol_D"]) < float(version.thresholds["tol_D"])
    assert spec.worm.shift_at is None and spec.worm.malformed_share == 0


def upstream_corruption(world: World, name: str, truth: Truth) -> None:
    worm = world.tenants[name].worm
    assert worm.malformed_since is not None and ago(worm.malformed_since) == round(truth.onset_s or 0)
    assert worm.malformed_share >= 0.15 and worm.shift_at is None


def _share(spec: Tenant) -> float:
    return spec.traffic.quota_exceeded_rps.at(timedelta(0)) / spec.traffic.ingest_rps.at(timedelta(0))


def legitimate_burst(world: World, name: str, truth: Truth) -> None:
    spec, onset = world.tenants[name], truth.onset_s or 0
    patterns = _from_onset(spec, truth, "quota exceeded")
    assert all(p.timing == "poisson" for p in patterns) and len({s for p in patterns for s in p.sources}) >= 10
    assert 0.035 <= _share(spec) <= 0.31
    assert spec.traffic.ingest_rps.at(timedelta(0)) > spec.traffic.ingest_rps.at(timedelta(seconds=-onset - 1))


def retry_storm(world: World, name: str, truth: Truth) -> None:
    (pattern,) = _from_onset(world.tenants[name], truth, "quota exceeded")
    assert pattern.timing == "fixed" and len(pattern.sources) <= 4
    assert len(pattern.sources) * 60 / pattern.per_min <= 4.01  # each source retries every ≤ 4 s


def attack(world: World, name: str, truth: Truth) -> None:
    patterns = _from_onset(world.tenants[name], truth, "quota exceeded")
    assert all(p.timing == "poisson" for p in patterns)
    total = sum(p.per_min for p in patterns)
    few = sum(p.per_min for p in patterns if len(p.sources) <= 5)
    assert few / total >= 0.8 or len({s for p in patterns for s in p.sources}) >= 25


def bad_thresholds(world: World, name: str, truth: Truth) -> None:
    spec, onset = world.tenants[name], truth.onset_s or 0
    index, created = _version(world, spec)
    assert index > 0 and -300 <= created - onset <= 720
    previous = sorted(world.policy_registry, key=lambda v: v.created_at)[index - 1]
    before = {**previous.thresholds, **previous.tenants.get(name, {})}
    assert float(spec.policy["tol_D"]) < float(before["tol_D"]) or float(spec.policy["tol_coh"]) > float(
        before["tol_coh"]
    )
    promoted = [e for e in spec.events if e.reason == "PolicyPromoted" and ago(e.at) == created]
    assert promoted and spec.config["policy_version"] in promoted[0].message


def feature_flag(world: World, name: str, truth: Truth) -> None:
    spec, onset = world.tenants[name], truth.onset_s or 0
    flips = [c for c in world.flag_changes if c.scope == name and 0 <= ago(c.at) - onset <= 300]
    assert len(flips) == 1
    flip = flips[0]
    assert world.feature_flags[name][flip.flag] == flip.value != world.feature_flags["global"].get(flip.flag)
    assert _version(world, spec)[1] > 86400  # no policy rollout anywhere near the breach


CAUSE_CHECKS: dict[Cause, Check] = {
    "wrong_key": wrong_key,
    "rotation_not_synchronised": rotation_not_synchronised,
    "clock_skew": clock_skew,
    "distribution_shift": distribution_shift,
    "policy_too_strict": policy_too_strict,
    "upstream_corruption": upstream_corruption,
    "legitimate_burst": legitimate_burst,
    "retry_storm": retry_storm,
    "attack": attack,
    "bad_thresholds": bad_thresholds,
    "feature_flag": feature_flag,
}


async def prometheus_sli(sb: Sandbox, tenant: str, metric: str) -> float:
    """The runbook's 5 m SLI for ``tenant`` as the sandbox's Prometheus answers it now."""
    prometheus = Prometheus(sb.prometheus_url)
    try:
        sel = f'{{tenant_id="{tenant}"}}'
        value = await prometheus.scalar(
            f"sum(rate({metric}{sel}[5m])) / sum(rate(flk_ingest_total_by_tenant{sel}[5m]))"
        )
    finally:
        prometheus.close()
    assert value is not None, tenant
    return value
