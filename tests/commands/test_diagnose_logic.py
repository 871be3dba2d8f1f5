"""The scenarios' verdicts from evidence alone, the parser, and the log reading, with cases the
sandbox worlds do not stage (clock skew, a wrong key, an attack, a burst, corruption)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.config import RunbookConfig
from commands.context import Context
from commands.diagnose import PRIORITY, combine, escalations, parse_args, policy, quota, signatures
from commands.diagnose.common import Inputs, LogLine, Outcome, fired, quiet, unknown
from commands.registry import UsageError, parse

CONFIG = RunbookConfig()
NOW = datetime(2031, 5, 4, 12, 0, tzinfo=UTC).timestamp()


# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["t-1"], {"tenant": "t-1", "scenario": None}),
        (["t-1", "quota"], {"tenant": "t-1", "scenario": "quota"}),
        (["t-1", "B"], {"tenant": "t-1", "scenario": "escalations"}),
        (["t-1", "ALL"], {"tenant": "t-1", "scenario": "all"}),
        (["t-1", "quota,B"], {"tenant": "t-1", "scenario": ("quota", "escalations")}),
        (["t-1", "quota,all"], {"tenant": "t-1", "scenario": "all"}),
    ],
)
def test_diagnose_arguments(args: list[str], expected: dict[str, Any]) -> None:
    assert parse_args(args) == expected


@pytest.mark.parametrize("text", ["diagnose", "diagnose t-1 weather", "diagnose t-1 quota extra", "diagnose T_1"])
def test_bad_diagnose_arguments_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert "Usage: `/flk diagnose <tenant> [signatures|escalations|quota|policy|all]`" in caught.value.text()


# -- backend log lines ---------------------------------------------------------------------


def test_log_line_fields_and_source() -> None:
    line = LogLine.parse(
        'ts=2031-05-04T11:59:58.250Z level=warn msg="quota \\"hard\\" exceeded" tenant_id=t1 limit=token_rate '
        "src=198.51.100.9"
    )
    assert line is not None
    assert (line.tenant, line.msg, line.source) == ("t1", 'quota "hard" exceeded', "198.51.100.9")
    assert line.ts == datetime(2031, 5, 4, 11, 59, 58, 250000, tzinfo=UTC)
    assert LogLine.parse('level=info msg="no time" tenant_id=t1') is None
    assert LogLine.parse("ts=2031-05-04T11:59:58Z msg=x") is None


class PodLogs:
    """What Inputs asks Kubernetes for: pods and their lines."""

    def __init__(self, pods: dict[str, list[str]]) -> None:
        self.pods = pods

    async def backend_pods(self, selector: str) -> list[str]:
        return list(self.pods)

    async def pod_log(
        self, pod: str, container: str | None, since_seconds: int | None = None, max_bytes: int | None = None
    ) -> list[str]:
        return self.pods[pod]


def line(second: int, tenant: str, version: str = "v1", quoted: bool = False) -> str:
    value = f'"{tenant}"' if quoted else tenant
    return f"ts=2031-05-04T11:00:{second:02d}.000Z level=info msg=x tenant_id={value} policy_version={version} src=a"


def inputs(pods: dict[str, list[str]], tenant: str) -> Inputs:
    ctx = Context(CONFIG, None, PodLogs(pods), None, None, None)  # type: ignore[arg-type]
    return Inputs(ctx, tenant)


async def test_tenant_lines_are_exact_and_in_time_order() -> None:
    pods = {
        "p1": [line(1, "t1"), line(4, "t10"), line(5, "t1", quoted=True)],
        "p2": [line(2, "t1"), line(3, "xt1"), line(6, "t10")],
    }
    found = await inputs(pods, "t1").tenant_lines()
    assert [x.ts.second for x in found] == [1, 2, 5]
    assert {x.tenant for x in found} == {"t1"}


async def test_latest_line_of_another_tenant_across_pods() -> None:
    pods = {"p1": [line(1, "t2", "v1"), line(7, "t2", "v3"), line(8, "t20", "v9")], "p2": [line(9, "t2", "v4")]}
    latest = await inputs(pods, "t1").latest_line("t2")
    assert latest is not None and latest.fields["policy_version"] == "v4"
    assert await inputs(pods, "t1").latest_line("t3") is None


# -- A · signatures ------------------------------------------------------------------------


def sig_data(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = {
        "signatures.ratio": {"ratio": 0.05, "breach_start": NOW - 1800},
        "signatures.keys": {"keys": ["k-new", "k-old"]},
        "signatures.rotations": {
            "rotations": [{"ts": NOW - 1900, "reason": "KeyRotated", "message": "k-new added, k-old retired"}]
        },
        "signatures.rejections": {"count": 90, "key_ids": {"k-old": 90}, "timestamped": 0, "skewed": 0},
    }
    return data | overrides


def test_rejections_with_the_retired_key_after_a_rotation() -> None:
    outcome = signatures.decide(sig_data(), CONFIG, "t1", NOW)
    assert outcome.fired and outcome.verdict.headline == "rotation not synchronised"
    assert outcome.verdict.next_steps[0] == "mitigate t1 key-window"


def test_a_current_key_that_only_shares_a_prefix_with_the_retired_one_is_a_mismatch() -> None:
    data = sig_data(**{"signatures.rejections": {"count": 9, "key_ids": {"k-ol": 9}, "timestamped": 0, "skewed": 0}})
    data["signatures.keys"]["keys"] = ["k-new", "k-ol", "k-old"]
    assert signatures.decide(data, CONFIG, "t1", NOW).verdict.headline == "key mismatch"


def test_a_key_removed_from_the_secret_by_the_rotation_is_not_synchronised() -> None:
    data = sig_data()
    data["signatures.keys"]["keys"] = ["k-new"]
    data["signatures.rotations"]["rotations"][0]["message"] = "signing key rotated"
    assert signatures.decide(data, CONFIG, "t1", NOW).verdict.headline == "rotation not synchronised"


def test_a_rotation_that_names_only_the_new_key_while_agents_keep_the_old_one_is_not_synchronised() -> None:
    """The old key is still in the secret and the event names the new key only: the old verdict
    said key mismatch."""
    data = sig_data()
    data["signatures.rotations"]["rotations"][0]["message"] = "signing key rotated to k-new"
    verdict = signatures.decide(data, CONFIG, "t1", NOW).verdict
    assert (verdict.headline, verdict.cause) == ("rotation not synchronised", "rotation_not_synchronised")
    assert any("moved to `k-new`" in e for e in verdict.evidence)


def test_unknown_key_without_a_rotation_is_a_key_mismatch() -> None:
    data = sig_data(**{"signatures.rotations": {"rotations": []}})
    data["signatures.rejections"]["key_ids"] = {"k-stolen": 90}
    outcome = signatures.decide(data, CONFIG, "t1", NOW)
    assert outcome.verdict.headline == "key mismatch"
    assert any("`k-stolen` is not one of the tenant's keys" in e for e in outcome.verdict.evidence)


def test_a_rotation_long_before_the_breach_does_not_explain_it() -> None:
    data = sig_data()
    data["signatures.rotations"]["rotations"][0]["ts"] = NOW - 1800 - CONFIG.timeouts.rollout_window_s - 600
    assert signatures.decide(data, CONFIG, "t1", NOW).verdict.headline == "key mismatch"


def test_skewed_signature_timestamps_are_clock_skew() -> None:
    data = sig_data(
        **{
            "signatures.rejections": {
                "count": 50,
                "key_ids": {"k-new": 50},
                "timestamped": 50,
                "skewed": 48,
                "median_skew_s": 95.0,
            }
        }
    )
    outcome = signatures.decide(data, CONFIG, "t1", NOW)
    assert outcome.verdict.headline == "clock skew"
    assert any("+95.0 s" in e for e in outcome.verdict.evidence)


def test_no_signature_breach_does_not_fire() -> None:
    outcome = signatures.decide(sig_data(**{"signatures.ratio": {"ratio": 0.001}}), CONFIG, "t1", NOW)
    assert not outcome.fired and outcome.known


# -- C · quota -----------------------------------------------------------------------------


def poisson(rate: float, seconds: float, rng: random.Random) -> list[float]:
    times, t = [], 0.0
    while (t := t + rng.expovariate(rate)) < seconds:
        times.append(t)
    return times


def test_request_patterns() -> None:
    cfg, rng = CONFIG.diagnosis, random.Random(3)
    storm = quota.pattern({"a": [i * 0.5 for i in range(600)], "b": [0.25 + i * 0.5 for i in range(600)]}, cfg)
    burst = quota.pattern({"a": poisson(5, 600, rng), "b": poisson(5, 600, rng)}, cfg)
    botnet = quota.pattern({f"203.0.113.{i}": poisson(0.2, 600, rng) for i in range(60)}, cfg)
    few = quota.pattern(
        {"192.0.2.7": poisson(3, 600, rng), "192.0.2.9": poisson(3, 600, rng)}
        | {f"172.20.0.{i}": poisson(0.1, 600, rng) for i in range(6)},
        cfg,
    )
    slow = quota.pattern({"a": [i * 60.0 for i in range(60)]}, cfg)
    # The tenant's own traffic rising with the rejections is a burst; without that rise, an attack.
    assert [p.kind(cfg, 1.6) for p in (storm, burst, botnet, few, slow)] == [
        "retry storm",
        "legitimate burst",
        "legitimate burst",
        "attack",
        "legitimate burst",
    ]
    assert [p.kind(cfg, 1.0) for p in (burst, botnet)] == ["attack", "attack"]
    # Ingest unknown: many sources look like an attack, few like a burst.
    assert [p.kind(cfg, None) for p in (burst, botnet)] == ["legitimate burst", "attack"]
    assert few.concentration > quota.CONCENTRATED > burst.concentration
    assert storm.regular_share == 1.0 and storm.per_source[0].median_interval_s == pytest.approx(0.5)


def quota_data(**pattern: Any) -> dict[str, dict[str, Any]]:
    started = NOW - 1200
    slis = {"escalations": {"ratio": 0.04, "slo": 0.02, "breach_start": started}}
    return {
        "quota.hits": {
            "hits_1h": 3000.0,
            "rate": 2.0,
            "share": 0.05,
            "onset": started - 60,
            "ingest_rise": 1.0,
            "slis": slis,
            "breach_start": started,
            "with_breach": True,
            "over": False,
        },
        "quota.logs": {"count": 3000, "sources": 2, "top": [["198.51.100.1", 2000], ["198.51.100.2", 1000]]},
        "quota.pattern": {"sources": 2, "lines": 3000, "regular_share": 0.0, "concentration": 0.2} | pattern,
        "quota.config": {"token_rate": 10, "burst_rate": 20, "daily_quota": 1000},
    }


@pytest.mark.parametrize(
    ("pattern", "rise", "headline", "cause", "steps"),
    [
        ({"regular_share": 0.9}, 1.0, "retry storm", "retry_storm", ["mitigate t1 quota", "notify t1"]),
        ({}, 1.0, "possible attack", "attack", ["notify t1"]),
        ({"concentration": 0.6}, 1.8, "possible attack", "attack", ["notify t1"]),
        ({"sources": 14}, 1.8, "legitimate burst", "legitimate_burst", ["mitigate t1 quota"]),
    ],
)
def test_quota_verdicts(pattern: dict[str, Any], rise: float, headline: str, cause: str, steps: list[str]) -> None:
    data = quota_data(**pattern)
    data["quota.hits"]["ingest_rise"] = rise
    outcome = quota.decide(data, CONFIG, "t1", NOW)
    verdict = outcome.verdict
    assert (verdict.headline, verdict.cause, verdict.next_steps) == (headline, cause, steps)
    assert any("198.51.100.1" in e for e in verdict.evidence)
    assert any("with the breach" in e for e in verdict.evidence) and verdict.confidence and verdict.rule


def test_rejections_within_the_slo_explain_nothing() -> None:
    """The old verdict fired on any rejection; now the SLIs must breach and the rejections lead."""
    healthy = quota_data()
    healthy["quota.hits"]["slis"] = {"escalations": {"ratio": 0.01, "slo": 0.02, "breach_start": None}}
    old = quota_data()
    old["quota.hits"] |= {"onset": NOW - 6 * 3600, "with_breach": False}
    for data in (healthy, old):
        outcome = quota.decide(data, CONFIG, "t1", NOW)
        assert not outcome.fired and outcome.verdict.headline == "no quota problem"
        assert outcome.verdict.cause is None


def test_no_rejections_is_no_quota_problem() -> None:
    data = {"quota.hits": {"hits_1h": 0.0, "rate": 0.0, "share": 0.0}, "quota.logs": {"count": 0}}
    assert quota.decide(data, CONFIG, "t1", NOW).verdict.headline == "no quota problem"


# -- B · escalations -----------------------------------------------------------------------


def esc_data(**distribution: Any) -> dict[str, dict[str, Any]]:
    dist = {
        "records": 500,
        "escalations": 30,
        "out_of_range": 0,
        "shift": {"D_hat": 0.3, "coh_star": 0.1},
        "window": "since 11:20 UTC",
        "median_D_hat": 1.3,
        "median_coh_star": 0.75,
        "tol_D": 1.2,
        "tol_coh": 0.78,
        "malformed_lines": 0,
    } | distribution
    return {
        "escalations.ratio": {"ratio": 0.06, "breach_start": NOW - 2400},
        "escalations.distribution": dist,
        "escalations.proposal": {"text": "tol_D 1.2 → 1.4, tol_coh 0.78 → 0.7: …"},
    }


@pytest.mark.parametrize(
    ("distribution", "headline"),
    [
        ({}, "policy too strict"),
        ({"shift": {"D_hat": 4.2, "coh_star": 0.3}}, "data distribution shifted"),
        ({"out_of_range": 6, "shift": {"D_hat": 9.0, "coh_star": 0.3}}, "upstream corruption"),
        ({"records": 0, "escalations": 0}, "cause not determined"),
    ],
)
def test_escalation_verdicts(distribution: dict[str, Any], headline: str) -> None:
    outcome = escalations.decide(esc_data(**distribution), CONFIG, "t1", NOW)
    assert outcome.fired and outcome.verdict.headline == headline
    assert outcome.verdict.confidence is not None and outcome.verdict.rule
    assert "export t1 escalations" in outcome.verdict.next_steps


# -- D · policy ----------------------------------------------------------------------------


def registry() -> dict[str, dict[str, Any]]:
    return {
        "v1": {"created_at": "2031-04-01T00:00:00Z", "author": "bot", "thresholds": {"tol_D": "1.5", "tol_coh": "0.7"}},
        "v2": {"created_at": "2031-05-04T11:20:00Z", "author": "ana", "thresholds": {"tol_D": "1.5", "tol_coh": "0.7"}},
        "t1.v2": {"created_at": "2031-05-04T11:25:00Z", "thresholds": {"tol_D": "1.1"}},
        "t2.v2": {"created_at": "2031-05-04T11:20:00Z", "thresholds": {"tol_coh": "0.9"}},
    }


def test_policy_history_diff_uses_the_tenants_overrides() -> None:
    h = policy.history(registry(), "t1", policy.Active("v2", "backend logs"))
    assert (h.active, h.previous, h.author) == ("v2", "v1", "ana")
    assert h.diff == ["tol_D: 1.5 → 1.1"]
    assert h.promoted_at == datetime(2031, 5, 4, 11, 25, tzinfo=UTC).timestamp()
    rolled_back = policy.history(registry(), "t1", policy.Active("v1", "logs", {"v2": (1.0, 2.0), "v1": (3.0, 4.0)}))
    assert (rolled_back.previous, rolled_back.diff) == ("v2", ["tol_D: 1.1 → 1.5"])


@pytest.mark.parametrize(
    ("lag_min", "within", "headline"), [(3, True, "bad policy version"), (200, False, "not policy")]
)
def test_policy_verdicts(lag_min: int, within: bool, headline: str) -> None:
    promoted = NOW - 3 * 3600
    data = {
        "policy.timing": {
            "breach_start": promoted + lag_min * 60,
            "lag_s": lag_min * 60.0,
            "within": within,
            "others_same_version": [],
        },
        "policy.registry": {"active": "v2", "promoted_at": promoted, "previous": "v1", "diff": ["tol_D: 1.5 → 1.1"]},
        "policy.flags": {"overrides": []},
    }
    outcome = policy.decide(data, CONFIG, "t1", NOW)
    assert (outcome.fired, outcome.verdict.headline) == (within, headline)
    if within:
        assert outcome.verdict.next_steps == ["mitigate t1 rollback-policy v1"]


def policy_data(**registry: Any) -> dict[str, dict[str, Any]]:
    started = NOW - 1800
    return {
        "policy.timing": {"breach_start": started, "lag_s": 600.0, "within": True, "others_same_version": []},
        "policy.registry": {"active": "v2", "promoted_at": started - 600, "previous": "v1", "diff": []} | registry,
        "policy.flags": {"overrides": [], "changes": []},
    }


def test_a_promotion_that_changed_nothing_for_the_tenant_is_not_policy() -> None:
    outcome = policy.decide(policy_data(), CONFIG, "t1", NOW)
    assert not outcome.fired and "changed none of t1's thresholds" in outcome.verdict.evidence[0]


def test_a_flag_flipped_just_before_the_breach_is_a_feature_flag() -> None:
    data = policy_data()
    flip = {"scope": "t1", "flag": "strict_schema", "value": True, "previous": False, "at": NOW - 1900, "author": "ana"}
    data["policy.flags"]["changes"] = [flip]
    verdict = policy.decide(data, CONFIG, "t1", NOW).verdict
    assert (verdict.headline, verdict.cause, verdict.confidence) == (
        "feature flag misconfigured",
        "feature_flag",
        "high",
    )
    assert "flag strict_schema False → True for t1 by ana" in verdict.evidence[0]
    # A flip days before the breach explains nothing.
    data["policy.flags"]["changes"] = [flip | {"at": NOW - 5 * 86400}]
    assert policy.decide(data, CONFIG, "t1", NOW).verdict.cause is None


# -- several scenarios ---------------------------------------------------------------------


def test_the_headline_follows_triage_order_and_lists_the_rest() -> None:
    outcomes = {
        "signatures": quiet("signatures", "no signature problem", []),
        "escalations": fired(
            "escalations",
            "policy too strict",
            ["e"],
            ["export t1 escalations"],
            cause="policy_too_strict",
            confidence="medium",
            rule="r",
        ),
        "quota": fired(
            "quota", "retry storm", ["q"], ["mitigate t1 quota"], cause="retry_storm", confidence="high", rule="r"
        ),
        "policy": quiet("policy", "not policy", []),
    }
    verdict, verdicts = combine(outcomes)
    assert PRIORITY.index("quota") < PRIORITY.index("escalations")
    assert (verdict.scenario, verdict.headline, verdict.next_steps) == ("quota", "retry storm", ["mitigate t1 quota"])
    assert [v.headline for v in verdicts] == ["retry storm", "policy too strict"]
    assert verdict.evidence[-1].endswith("policy too strict")
    assert (verdict.cause, verdict.runner_up) == ("retry_storm", "escalations")


def test_nothing_fired_but_something_unreadable_is_cannot_tell() -> None:
    outcomes: dict[str, Outcome] = {
        name: quiet(name, "fine", [])
        for name in ("signatures", "escalations", "quota")  # type: ignore[misc]
    }
    assert combine({**outcomes, "policy": quiet("policy", "not policy", [])})[0].headline == "nothing wrong found"
    assert combine({**outcomes, "policy": unknown("policy", "no registry")})[0].headline == "cannot tell"
