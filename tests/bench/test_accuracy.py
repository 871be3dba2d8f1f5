"""The accuracy benchmark's parts: every verdict diagnose can give maps to a cause, the tables
count what they should, and one generated world is scored end to end on its sandbox (the
benchmark itself, 200 worlds, runs with `python -m bench.bench_accuracy`, not here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench.accuracy_labels import (
    CAUSE_OF_HEADLINE,
    QUIET_HEADLINES,
    SCENARIOS,
    CauseCall,
    ScenarioCall,
    alarm,
    diagnose_call,
    triage_call,
)
from bench.accuracy_run import Said, TenantResult, bench_config, score_world
from bench.accuracy_table import section, summary, tabulate
from commands.models import Verdict
from sandbox.world.generate import generate
from sandbox.world.truth import ALL_CAUSES, Truth, breach, healthy
from tests.conftest import StartSandbox

DIAGNOSE = Path(__file__).resolve().parents[2] / "commands" / "diagnose"


def _literal_headlines() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(scenario, headline) of every literal ``fired(...)`` and ``quiet(...)`` in the diagnose
    modules, plus the request-pattern kinds that quota's verdict uses as headlines."""
    fired, quiet = set(), set()
    for path in DIAGNOSE.glob("*.py"):
        tree = ast.parse(path.read_text())
        scenario = next(
            (
                n.value.value
                for n in tree.body
                if isinstance(n, ast.AnnAssign)
                and isinstance(n.target, ast.Name)
                and n.target.id == "SCENARIO"
                and isinstance(n.value, ast.Constant)
            ),
            None,
        )
        if scenario is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) > 1:
                headline = node.args[1]
                if isinstance(headline, ast.Constant) and node.func.id in ("fired", "quiet"):
                    (fired if node.func.id == "fired" else quiet).add((scenario, headline.value))
            if isinstance(node, ast.FunctionDef) and node.name == "kind":
                fired |= {
                    (scenario, r.value.value)
                    for r in ast.walk(node)
                    if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant)
                }
    return fired, quiet


def test_every_headline_diagnose_can_give_is_mapped() -> None:
    fired, quiet = _literal_headlines()
    assert len(fired) >= 11 and quiet
    assert fired <= set(CAUSE_OF_HEADLINE), fired - set(CAUSE_OF_HEADLINE)
    assert {(s, h) for s, h in quiet} <= {(s, h) for s, h in QUIET_HEADLINES.items() if s}
    assert set(CAUSE_OF_HEADLINE.values()) - {"inconclusive"} == set(ALL_CAUSES) - {"feature_flag"}


@pytest.mark.parametrize(
    ("verdict", "call"),
    [
        (Verdict("quota", "retry storm"), "retry_storm"),
        (Verdict("signatures", "key mismatch"), "wrong_key"),
        (Verdict("policy", "bad policy version"), "bad_thresholds"),
        (Verdict("policy", "not policy"), "healthy"),
        (Verdict(None, "nothing wrong found"), "healthy"),
        (Verdict("escalations", "cannot tell"), "inconclusive"),
        (Verdict(None, "cannot tell"), "inconclusive"),
        (Verdict("quota", "cause not determined"), "inconclusive"),
        (Verdict("quota", "a headline nobody mapped"), "unmapped"),
        (None, "inconclusive"),
    ],
)
def test_diagnose_calls(verdict: Verdict | None, call: CauseCall) -> None:
    assert diagnose_call(verdict) == call


@pytest.mark.parametrize(
    ("verdict", "raised"),
    [
        (Verdict("quota", "cause not determined"), True),
        (Verdict("quota", "Likely scenario C · quota exceeded (rate limit)"), True),
        (Verdict("quota", "no quota problem"), False),
        (Verdict("escalations", "cannot tell"), False),
        (Verdict(None, "nothing wrong found"), False),
        (Verdict(None, "Cannot tell: the SLIs could not be read (see the errors above)"), False),
        (None, False),
    ],
)
def test_an_alarm_is_any_verdict_that_says_something_is_wrong(verdict: Verdict | None, raised: bool) -> None:
    assert alarm(verdict) is raised


def test_triage_calls() -> None:
    calls: list[ScenarioCall] = [
        triage_call(Verdict("quota", "Likely scenario C · quota exceeded (rate limit)")),
        triage_call(Verdict(None, "No breach: escalations 0.4% (SLO 2%), signature errors 0.1% (SLO 1%)")),
        triage_call(Verdict(None, "Cannot tell: the SLIs could not be read (see the errors above)")),
    ]
    assert calls == ["quota", "healthy", "inconclusive"]


def _result(tenant: str, truth: Truth, triage: ScenarioCall, diagnosed: CauseCall) -> TenantResult:
    said = Said(None, "", diagnosed, diagnosed not in ("healthy", "inconclusive"))
    return TenantResult(1, tenant, truth, Said(None, "", triage, triage in SCENARIOS), said, said, ())


def test_tables_count_rights_misses_and_false_alarms() -> None:
    results = [
        _result("a", breach("retry_storm", 3.0, 600), "quota", "retry_storm"),
        _result("b", breach("attack", 2.0, 900), "quota", "legitimate_burst"),
        _result("c", breach("feature_flag", 5.0, 1200), "escalations", "policy_too_strict"),
        _result("d", breach("clock_skew", 1.3, 700), "healthy", "healthy"),
        _result("e", healthy(0.5), "healthy", "healthy"),
        _result("f", healthy(0.8), "healthy", "legitimate_burst"),
        _result("g", healthy(0.3), "healthy", "inconclusive"),
    ]
    triage, diagnosed = section(results, "triage"), section(results, "diagnose")
    assert (triage["right"], triage["breaching"], triage["accuracy"]) == (2, 4, 0.5)
    assert triage["confusion"]["policy"] == {"escalations": 1}
    assert (triage["healthy_called_breaching"], triage["breaching_called_healthy"]) == (0, 1)
    assert (diagnosed["right"], diagnosed["healthy_called_breaching"], diagnosed["inconclusive"]) == (1, 1, 1)
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
        assert r.diagnose.asked == (r.triage.scenario or "all") and r.diagnose_all.asked == "all"
        assert r.diagnose_all.call != "unmapped" and r.diagnose.call != "unmapped"
    tables = tabulate(results)
    assert tables["tenants"] == len(world.truth) and tables["breaching"] == len(world.breaching)
    assert sum(sum(row.values()) for row in tables["diagnose_all"]["confusion"].values()) == len(results)
