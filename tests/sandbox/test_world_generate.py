"""Generated worlds: valid specs, the same for a seed in any process, names that are valid and
unique, every cause of the runbook over a few hundred seeds, a spec that holds what the truth
says (read from the spec itself, not from the bot's verdicts), and, for a few seeds, a running
sandbox whose Prometheus and backend show the intended breaches."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.cli import main as sandbox_cli
from sandbox.world.generate import GeneratedWorld, generate
from sandbox.world.live import LiveWorld
from sandbox.world.spec import TENANT_ID_PATTERN, Tenant, World
from sandbox.world.truth import ALL_CAUSES, CAUSES, Truth
from tests.conftest import StartSandbox
from tests.sandbox.generated_checks import CAUSE_CHECKS, SLO, breaching_sli, prometheus_sli, rejections

SEEDS = range(300)
VALIDATED = range(0, 300, 2)
T0 = 1_780_000_000.0
# Seeds whose sandboxes are started: an isolation breach by region, and a world of eight tenants
# with an attack, a retry storm, a shift, a rotation and a flag flip.
RUNNING_SEEDS = (6, 20)


@pytest.fixture(scope="module")
def generated() -> dict[int, GeneratedWorld]:
    return {seed: generate(seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def validated(generated: dict[int, GeneratedWorld]) -> dict[int, World]:
    return {seed: generated[seed].world() for seed in VALIDATED}


def _tenants(generated: dict[int, GeneratedWorld]) -> list[tuple[int, str, Truth]]:
    return [(seed, name, truth) for seed, g in generated.items() for name, truth in g.truth.items()]


def test_generated_worlds_validate_against_the_spec(validated: dict[int, World]) -> None:
    assert len(validated) == len(VALIDATED)
    for world in validated.values():
        assert 3 <= len(world.tenants) <= 8


def test_a_seed_gives_the_same_world_every_time_and_in_another_process() -> None:
    assert generate(41).yaml_text == generate(41).yaml_text
    assert generate(41).truth == generate(41).truth
    assert generate(41).yaml_text != generate(42).yaml_text
    code = (
        "import hashlib; from sandbox.world.generate import generate; "
        "print(hashlib.sha256(generate(41).yaml_text.encode()).hexdigest())"
    )
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == hashlib.sha256(generate(41).yaml_text.encode()).hexdigest()


def test_names_are_valid_unique_tenant_ids_of_every_shape(generated: dict[int, GeneratedWorld]) -> None:
    shapes: Counter[str] = Counter()
    for g in generated.values():
        names = list(g.truth)
        assert len(set(names)) == len(names)
        for name in names:
            assert re.match(TENANT_ID_PATTERN, name), name
            shapes["digit"] += any(c.isdigit() for c in name)
            shapes["dash"] += "-" in name
            shapes["starts with a digit"] += name[0].isdigit()
        shapes["prefix pair"] += any(a != b and b.startswith(a) for a in names for b in names)
    assert all(shapes[k] >= 10 for k in ("digit", "dash", "starts with a digit", "prefix pair")), shapes


def test_every_cause_appears_and_healthy_tenants_too(generated: dict[int, GeneratedWorld]) -> None:
    counts = Counter(truth.cause for _, _, truth in _tenants(generated))
    assert all(counts[cause] >= 15 for cause in ALL_CAUSES), counts
    assert counts[None] >= 200
    assert set(ALL_CAUSES) == {c for causes in CAUSES.values() for c in causes}
    assert all(g.breaching for g in generated.values())


def test_magnitudes_and_onsets_span_near_and_far(generated: dict[int, GeneratedWorld]) -> None:
    tenants = _tenants(generated)
    breaching = [t for _, _, t in tenants if not t.healthy]
    healthy = [t for _, _, t in tenants if t.healthy]
    assert all(1.2 <= t.magnitude <= 20 for t in breaching)
    assert sum(t.magnitude < 1.5 for t in breaching) >= 30 and sum(t.magnitude > 10 for t in breaching) >= 30
    assert all(0.1 <= t.magnitude <= 0.9 for t in healthy)
    assert sum(t.magnitude >= 0.8 for t in healthy) >= 20
    onsets = [t.onset_s or 0 for t in breaching]
    assert min(onsets) >= 8 * 60 and sum(o < 20 * 60 for o in onsets) >= 30 and sum(o > 2 * 3600 for o in onsets) >= 30


def test_each_tenants_spec_holds_its_truth(generated: dict[int, GeneratedWorld], validated: dict[int, World]) -> None:
    checked: Counter[str] = Counter()
    for seed, world in validated.items():
        live = LiveWorld(world, t0=T0)
        for name, truth in generated[seed].truth.items():
            spec = world.tenants[name]
            assert spec.scenario == (truth.scenario or "none"), (seed, name)
            esc = live.ratio(name, "flk_escalated_by_tenant", T0) / SLO["escalations"]
            sig = live.ratio(name, "flk_signature_errors_by_tenant", T0) / SLO["signatures"]
            if truth.healthy:
                assert max(esc, sig) == pytest.approx(truth.magnitude, rel=1e-3) and max(esc, sig) < 1, (seed, name)
                continue
            assert truth.cause is not None and truth.onset_s is not None
            which = breaching_sli(truth)
            now, other = (sig, esc) if which == "signatures" else (esc, sig)
            assert now == pytest.approx(truth.magnitude, rel=1e-3) and other < 1, (seed, name)
            series = getattr(spec.traffic, "signature_error_ratio" if which == "signatures" else "escalation_ratio")
            assert series.at(timedelta(seconds=-truth.onset_s - 1)) <= SLO[which], (seed, name)
            CAUSE_CHECKS[truth.cause](world, name, truth)
            checked[truth.cause] += 1
    assert set(checked) == set(ALL_CAUSES), checked


def test_isolation_breaches_share_a_cause_and_a_start(
    generated: dict[int, GeneratedWorld], validated: dict[int, World]
) -> None:
    kinds: Counter[str] = Counter()
    for seed, world in validated.items():
        isolation = generated[seed].isolation
        if isolation is None:
            assert not any(t.group for t in generated[seed].truth.values())
            continue
        members = [world.tenants[n] for n in isolation.tenants]
        truths = [generated[seed].truth[n] for n in isolation.tenants]
        assert len(members) >= 3 and {t.cause for t in truths} == {isolation.cause}
        assert {t.group for t in truths} == {isolation.label}
        onsets = [t.onset_s or 0 for t in truths]
        assert max(onsets) - min(onsets) <= 300, seed
        kind, _, shared = isolation.label.partition(" ")
        if kind == "region":
            assert {m.region for m in members} == {shared}
        else:
            assert {m.config["policy_version"] for m in members} == {shared}
        kinds[kind] += 1
    assert kinds["region"] >= 3 and kinds["policy"] >= 3, kinds


def test_noise_reaches_healthy_tenants(validated: dict[int, World], generated: dict[int, GeneratedWorld]) -> None:
    found: Counter[str] = Counter()
    for seed, world in validated.items():
        for name, truth in generated[seed].truth.items():
            if not truth.healthy:
                continue
            spec: Tenant = world.tenants[name]
            found["quota rejections"] += bool(rejections(spec))
            found["signature failures"] += any(p.message == "signature verification failed" for p in spec.logs)
            found["unrelated lines"] += any(
                p.message not in ("quota exceeded", "signature verification failed") for p in spec.logs
            )
            found["past breach"] += any(v > SLO["escalations"] for _, v in spec.traffic.escalation_ratio.points)
    assert all(found[k] >= 5 for k in ("quota rejections", "signature failures", "unrelated lines", "past breach"))


def test_the_cli_writes_the_world_and_prints_its_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "world.yaml"
    assert sandbox_cli(["generate", "--seed", "20", "--out", str(out)]) == 0
    assert out.read_text() == generate(20).yaml_text
    printed = capsys.readouterr().out
    for name in generate(20).truth:
        assert f"  {name}: " in printed
    assert sandbox_cli(["generate", "--seed", "20"]) == 0
    assert capsys.readouterr().out == generate(20).yaml_text
    assert sandbox_cli(["generate", "--seed", "20", "--out", str(tmp_path / "missing" / "w.yaml")]) == 2
    assert "cannot write the world" in capsys.readouterr().err
    assert sandbox_cli(["generate", "--seed", "many"]) == 2


# -- running sandboxes ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RUNNING_SEEDS)
async def test_a_generated_world_runs_and_shows_its_breaches(start_sandbox: StartSandbox, seed: int) -> None:
    g = generate(seed)
    sb = await start_sandbox(g.yaml_text)
    for name, truth in g.truth.items():
        esc = await prometheus_sli(sb, name, "flk_escalated_by_tenant") / SLO["escalations"]
        sig = await prometheus_sli(sb, name, "flk_signature_errors_by_tenant") / SLO["signatures"]
        if truth.healthy:
            assert max(esc, sig) < 1 and max(esc, sig) == pytest.approx(truth.magnitude, rel=0.05), name
            continue
        now = sig if breaching_sli(truth) == "signatures" else esc
        assert now > 1 and now == pytest.approx(truth.magnitude, rel=0.05), name
        # The cause's own log lines are in the backend's logs, under this tenant's exact id.
        spec = sb.live.world.tenants[name]
        wanted = {p.message for p in spec.logs if p.since >= timedelta(seconds=-(truth.onset_s or 0) - 1)}
        seen = {
            line.split('msg="', 1)[1].split('"', 1)[0]
            for pod in sb.backend_logs.pod_names()
            for _, line in sb.backend_logs.for_pod(pod)
            if f" tenant_id={name} " in line
        }
        assert wanted <= seen, (name, wanted - seen)
