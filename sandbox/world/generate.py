"""Random valid world specs from a seed, each with its ground truth.

    world = generate(17)        # the same world for the same seed, in every process
    world.yaml_text             # a world spec (sandbox/README.md), truth in its header comment
    world.truth["acme2"]        # Truth(scenario="quota", cause="retry_storm", magnitude=3.1, ...)
    world.isolation             # Isolation(label="region eu-west-1", ...) or None

3–8 tenants with random names (prefix-sharing siblings, digits, dashes), each healthy (0.1–0.9x
the SLO, some close to it) or in one runbook cause (1.2–20x the SLO) that began minutes to
hours ago, over noise (``sandbox.world.noise``). About one world in five is an isolation breach:
3–5 tenants breaching together from one cause (a policy version, or a region's clocks or
upstream).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Literal

import yaml

from sandbox.world.cause_draft import FLAGS, PEOPLE, Breach, Shared
from sandbox.world.causes import BUILDERS, LONGEST_ONSET_S, tighter
from sandbox.world.draft import DAY_S, Version, WorldDraft, breach_magnitude, new_tenant, onset
from sandbox.world.names import tenant_names
from sandbox.world.noise import add_noise, benign_rollout
from sandbox.world.spec import World
from sandbox.world.truth import ALL_CAUSES, Cause, Truth

REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1", "ap-northeast-1", "sa-east-1")
NAMESPACES = ("fractal-lba", "lba-prod", "lba-staging", "flk-eu", "verify", "fractal-lba-2")
HEALTHY_SHARE = 0.35
ISOLATION_SHARE = 0.2
GroupKind = Literal["policy", "region clocks", "region upstream"]
_GROUP_CAUSE: dict[GroupKind, Cause] = {
    "policy": "bad_thresholds",
    "region clocks": "clock_skew",
    "region upstream": "upstream_corruption",
}


@dataclass(frozen=True)
class Isolation:
    """Several tenants breaching at once from one shared cause."""

    label: str  # "policy v43", "region eu-west-1"
    cause: Cause
    tenants: tuple[str, ...]


@dataclass(frozen=True)
class GeneratedWorld:
    seed: int
    yaml_text: str
    truth: dict[str, Truth]
    isolation: Isolation | None = None

    def world(self) -> World:
        return World.model_validate(yaml.safe_load(self.yaml_text))

    @property
    def breaching(self) -> list[str]:
        return [name for name, truth in self.truth.items() if not truth.healthy]


def _thresholds(rng: random.Random) -> dict[str, str]:
    return {
        "tol_D": f"{rng.uniform(1.3, 1.8):.2f}",
        "tol_coh": f"{rng.uniform(0.62, 0.8):.2f}",
        "min_samples": str(rng.choice((16, 32, 64))),
    }


def _old_versions(rng: random.Random) -> list[Version]:
    """One to three versions promoted days to weeks ago; the newest is the one most tenants run."""
    created = rng.uniform(2, 14) * DAY_S
    thresholds = _thresholds(rng)
    versions = [Version(created, thresholds)]
    for _ in range(rng.randint(0, 2)):
        created += rng.uniform(5, 30) * DAY_S
        older = dict(thresholds, tol_D=f"{float(thresholds['tol_D']) + rng.uniform(-0.1, 0.1):.2f}")
        versions.append(Version(created, older, rng.choice(("policy-bot", *PEOPLE))))
    return versions


@dataclass
class _Group:
    """An isolation breach in the making: its kind, its tenants, what they share, when it began."""

    kind: GroupKind
    members: list[str]
    region: str
    shared: Shared | None = None
    began_s: float = 0.0

    def start(self, world: WorldDraft) -> None:
        rng = world.rng
        self.began_s = onset(rng, 4 * 3600) + 5 * 60
        if self.kind == "policy":
            person = rng.choice(PEOPLE)
            thresholds = {**world.base.thresholds, **tighter(rng, world.base.thresholds)}
            version = world.version(self.began_s, thresholds, f"{person} <{person}@fractal-lba.example>")
            self.shared = Shared("policy", version=version)
        elif self.kind == "region clocks":
            self.shared = Shared(f"region {self.region}", skew_s=rng.choice((-1, 1)) * rng.uniform(60, 600))
        else:
            self.shared = Shared(f"region {self.region}", malformed_share=rng.uniform(0.2, 0.6))

    def isolation(self) -> Isolation:
        assert self.shared is not None
        version = self.shared.version
        label = f"policy {version.name}" if version else self.shared.label
        return Isolation(label, _GROUP_CAUSE[self.kind], tuple(self.members))


def _add_tenants(
    world: WorldDraft, names: list[str], regions: list[str], old: list[Version], group: _Group | None
) -> None:
    """Healthy tenants; a region's isolation breach gets that region to itself."""
    rng = world.rng
    apart = group is not None and group.kind != "policy"
    for name in names:
        if apart and group and name in group.members:
            region = group.region
        else:
            region = rng.choice(regions[1:] if apart else regions)
        version = old[0] if len(old) == 1 or rng.random() < 0.8 else rng.choice(old[1:])
        world.tenants.append(new_tenant(rng, name, region, version))


def _add_breaches(world: WorldDraft, group: _Group | None) -> None:
    rng = world.rng
    # A policy isolation breach owns the only new version: no lone rollouts beside it.
    allowed = [c for c in ALL_CAUSES if not (group and group.kind == "policy" and c == "bad_thresholds")]
    if group:
        group.start(world)
    chosen: dict[str, Cause | None] = {
        t.name: None if rng.random() < HEALTHY_SHARE else rng.choice(allowed) for t in world.tenants
    }
    if not any(chosen.values()):
        chosen[rng.choice(world.tenants).name] = rng.choice(allowed)
    for t in world.tenants:
        if group and t.name in group.members:
            start = max(group.began_s - rng.uniform(0, 240), 8 * 60)
            BUILDERS[_GROUP_CAUSE[group.kind]](Breach(world, t, breach_magnitude(rng), start, group.shared))
        elif (cause := chosen[t.name]) is not None:
            start = onset(rng, LONGEST_ONSET_S.get(cause, 6 * 3600))
            BUILDERS[cause](Breach(world, t, breach_magnitude(rng), start))


def generate(seed: int) -> GeneratedWorld:
    """A random valid world and its truth; the same seed gives the same world."""
    rng = random.Random(seed)
    names = tenant_names(rng, rng.randint(3, 8))
    regions = rng.sample(REGIONS, rng.randint(2, 4))
    old = _old_versions(rng)
    flags: dict[str, dict[str, Any]] = {"global": {f: rng.random() < 0.5 for f in rng.sample(FLAGS, rng.randint(2, 4))}}
    world = WorldDraft(rng, base=old[0], versions=list(old), flags=flags)
    group = None
    if rng.random() < ISOLATION_SHARE:
        kind: GroupKind = rng.choice(("policy", "region clocks", "region upstream"))
        group = _Group(kind, rng.sample(names, rng.randint(3, min(5, len(names)))), regions[0])
    _add_tenants(world, names, regions, old, group)
    _add_breaches(world, group)
    if not (group and group.kind == "policy") and rng.random() < 0.25:
        benign_rollout(world)
    for t in world.tenants:
        add_noise(world, t)
    world.name_versions(rng.randint(2, 80))
    isolation = group.isolation() if group else None
    if isolation:
        for t in world.tenants:
            if t.name in isolation.tenants:
                t.truth = replace(t.truth, group=isolation.label)
    spec = _spec(world, seed, rng)
    truth = {t.name: t.truth for t in world.tenants}
    return GeneratedWorld(seed, _header(seed, truth, isolation) + _dump(spec), truth, isolation)


def _spec(world: WorldDraft, seed: int, rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespace": rng.choice(NAMESPACES),
        "seed": seed,
        "backend": {"pods": rng.randint(1, 4), "baseline_log_per_min": rng.randint(2, 6)},
        "policy_registry": world.registry_spec(),
        "feature_flags": {scope: dict(f) for scope, f in world.flags.items() if f},
    }
    if world.flag_changes:
        ordered = sorted(world.flag_changes, key=lambda c: -c["_ago"])
        spec["flag_changes"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in ordered]
    spec["tenants"] = {t.name: t.spec() for t in world.tenants}
    return spec


def _dump(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


def describe(truth: Truth) -> str:
    """One line of truth, as the header comment and the CLI print it."""
    if truth.healthy:
        return f"healthy ({truth.magnitude:.2f}x SLO)"
    assert truth.cause is not None and truth.onset_s is not None
    minutes = truth.onset_s / 60
    text = (
        f"{truth.scenario} / {truth.cause.replace('_', ' ')} ({truth.magnitude:.2f}x SLO, since {minutes:.0f} min ago"
    )
    text += f"; {truth.variant})" if truth.variant else ")"
    return text + (f" [isolation: {truth.group}]" if truth.group else "")


def _header(seed: int, truth: dict[str, Truth], isolation: Isolation | None) -> str:
    lines = [f"# Generated by sandbox.world.generate, seed {seed}.", "# Truth (what a right diagnosis names):"]
    lines += [f"#   {name}: {describe(t)}" for name, t in truth.items()]
    if isolation:
        lines.append(f"# Isolation breach: {isolation.label}: {', '.join(isolation.tenants)}")
    return "\n".join(lines) + "\n"
