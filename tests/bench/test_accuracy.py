"""The accuracy benchmark's parts: verdicts read as calls from their typed fields, the tables
count what they should, and one generated world is scored end to end on its sandbox (the
benchmark itself, 200 worlds, runs with `python -m bench.bench_accuracy`, not here)."""

from __future__ import annotations

import pytest

from bench.accuracy_labels import SCENARIOS, CauseCall, ScenarioCall, alarm, diagnose_call, triage_call
from bench.accuracy_run import Said, TenantResult, bench_config, score_world
from bench.accuracy_table import section, summary, tabulate
from commands.models import Verdict
from sandbox.world.generate import generate
from sandbox.world.truth import ALL_CAUSES, Truth, breach, healthy
from tests.conftest import StartSandbox


@pytest.mark.parametrize(
    ("verdict", "call"),
    [
        (Verdict("quota", "retry storm", cause="retry_storm", confidence="high"), "retry_storm"),
        (Verdict("policy", "feature flag misconfigured", cause="feature_flag", confidence="high"), "feature_flag"),
        (Verdict("policy", "not policy"), "healthy"),
        (Verdict(None, "nothing wrong found"), "healthy"),
        (Verdict("escalations", "cannot tell"), "inconclusive"),
        (Verdict(None, "cannot tell"), "inconclusive"),
        (Verdict("quota", "cause not determined", confidence="low"), "inconclusive"),
        (None, "inconclusive"),
    ],
)
def test_diagnose_calls_read_the_typed_cause(verdict: Verdict | None, call: CauseCall) -> None:
    assert diagnose_call(verdict) == call


def test_every_cause_is_a_call() -> None:
    assert all(diagnose_call(Verdict("quota", "x", cause=c, confidence="low")) == c for c in ALL_CAUSES)


@pytest.mark.parametrize(
    ("verdict", "raised"),
    [
        (Verdict("quota", "cause not determined", confidence="low"), True),
        (Verdict("quota", "Likely scenario C · quota exceeded (rate limit)", confidence="medium"), True),
        (Verdict("quota", "no quota problem"), False),
        (Verdict("escalations", "cannot tell"), False),
        (Verdict(None, "nothing wrong found"), False),
        (Verdict(None, "No breach: …", confidence="high"), False),
        (None, False),
    ],
)
def test_an_alarm_is_any_verdict_that_says_something_is_wrong(verdict: Verdict | None, raised: bool) -> None:
    assert alarm(verdict) is raised


def test_triage_calls() -> None:
    calls: list[ScenarioCall] = [
        triage_call(Verdict("quota", "Likely scenario C · quota exceeded (rate limit)", confidence="medium")),
        triage_call(Verdict(None, "No breach: escalations 0.4% (SLO 2%)", confidence="high")),
        triage_call(Verdict(None, "Cannot tell: the SLIs could not be read (see the errors above)")),
        triage_call(Verdict("quota", "Inconclusive: B or C", confidence="low", inconclusive=("escalations", "quota"))),
    ]
    assert calls == ["quota", "healthy", "inconclusive", "inconclusive"]


def _result(
    tenant: str, truth: Truth, triage: ScenarioCall, diagnosed: CauseCall, among: tuple[str, ...] = ()
) -> TenantResult:
    said = Said(None, "", diagnosed, diagnosed not in ("healthy", "inconclusive"))
    called = Said(None, "", triage, triage in SCENARIOS or bool(among), among=among)
    return TenantResult(1, tenant, truth, called, said, said, ())


def test_tables_count_rights_misses_and_false_alarms() -> None:
    results = [
        _result("a", breach("retry_storm", 3.0, 600), "quota", "retry_storm"),
        _result("b", breach("attack", 2.0, 900), "quota", "legitimate_burst"),
        _result("c", breach("feature_flag", 5.0, 1200), "escalations", "policy_too_strict"),
        _result("d", breach("clock_skew", 1.3, 700), "healthy", "healthy"),
        _result("e", healthy(0.5), "healthy", "healthy"),
        _result("f", healthy(0.8), "healthy", "legitimate_burst"),
        _result("g", healthy(0.3), "healthy", "inconclusive"),
        # An inconclusive pair holding the truth counts as right; one without it does not.
        _result(
            "h", breach("legitimate_burst", 2.0, 600), "inconclusive", "legitimate_burst", ("escalations", "quota")
        ),
        _result("i", breach("wrong_key", 2.0, 600), "inconclusive", "wrong_key", ("escalations", "quota")),
    ]
    triage, diagnosed = section(results, "triage"), section(results, "diagnose")
    assert (triage["right"], triage["breaching"], triage["accuracy"]) == (3, 6, 0.5)
    assert triage["inconclusive"] == 2
    assert triage["confusion"]["policy"] == {"escalations": 1}
    assert (triage["healthy_called_breaching"], triage["breaching_called_healthy"]) == (0, 1)
    assert (diagnosed["right"], diagnosed["healthy_called_breaching"], diagnosed["inconclusive"]) == (3, 1, 1)
    assert diagnosed["misses"]["attack"]["said"] == {"legitimate_burst": 1}
    assert diagnosed["misses"]["healthy"]["examples"][0]["tenant"] == "f"
    rows = summary(tabulate(results), run_s=60.0, cpu_s=100.0, worlds=1, goal_s=1800)
    assert [row["met"] for row in rows] == [False, False, False, False, False, True, True]


async def test_one_generated_world_scores_end_to_end(start_sandbox: StartSandbox) -> None:
    world = generate(6)
    results = await score_world(await start_sandbox(world.yaml_text), world, bench_config())
    assert [r.tenant for r in results] == list(world.truth)
    for r in results:
        assert r.truth == world.truth[r.tenant] and not r.errors, r
        assert r.triage.call in {*SCENARIOS, "healthy", "inconclusive"}
        assert r.diagnose.asked and r.diagnose_all.asked == "all"
        assert r.diagnose_all.call in {*ALL_CAUSES, "healthy", "inconclusive"}
    tables = tabulate(results)
    assert tables["tenants"] == len(world.truth) and tables["breaching"] == len(world.breaching)
    assert sum(sum(row.values()) for row in tables["diagnose_all"]["confusion"].values()) == len(results)
