"""Triage's verdict from evidence alone (the end-to-end tests check it against real backends)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from commands.config import RunbookConfig
from commands.models import Finding, Report, Status
from commands.triage.verdict import decide

CONFIG = RunbookConfig()
NOW = time.time()


def report(**data: dict) -> Report:
    findings = [Finding(key, key, Status.OK, "", data=value) for key, value in data.items()]
    return Report("triage", "t1", findings, datetime.now(UTC), datetime.now(UTC))


def test_signature_errors_mean_scenario_a() -> None:
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.004},
                "sli.signatures": {"ratio": 0.05},
                "changes.events": {"secret_events": ["KeyRotated: new key"]},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "signatures"
    assert any("KeyRotated" in e for e in verdict.evidence)
    assert verdict.next_steps == ["diagnose t1 signatures"]


def test_quota_rejections_mean_scenario_c_even_with_escalations() -> None:
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.03},
                "sli.signatures": {"ratio": 0.001},
                "health.quota": {"share": 0.4, "rate": 20.0, "hits_1h": 1000},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "quota"


def test_escalations_right_after_a_rollout_mean_scenario_d() -> None:
    promoted, started = NOW - 1800, NOW - 1740
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.05},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": started},
                "changes.registry": {
                    "active_created_at": promoted,
                    "active_version": "v9",
                    "diff": ["tol_D: 1.5 → 1.2"],
                },
                "identify.others": {"others": []},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "policy"
    assert any("v9" in e and "tol_D: 1.5 → 1.2" in e for e in verdict.evidence)
    assert verdict.confidence == "high" and verdict.runner_up == "escalations"


def test_a_rollout_that_changed_none_of_the_tenants_thresholds_is_no_lead() -> None:
    """A harmless promotion just before a B breach: the old cascade called it D."""
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.05},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": NOW - 1740},
                "changes.registry": {"active_created_at": NOW - 1800, "active_version": "v9", "diff": []},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "escalations" and verdict.runner_up == "policy"
    assert any("changed none of the tenant's thresholds" in e for e in verdict.evidence)


def test_quota_rejections_that_rose_with_the_breach_are_c_at_five_percent() -> None:
    started = NOW - 900
    data = {
        "sli.escalations": {"ratio": 0.04},
        "sli.signatures": {"ratio": 0.001},
        "health.trend": {"escalations breach_start": started},
        "health.quota": {"share": 0.05, "rate": 7.0, "hits_1h": 6000, "onset": started - 120},
    }
    findings = report(**data)
    verdict = decide(findings, CONFIG)
    assert verdict.scenario == "quota" and verdict.inconclusive == ()
    assert verdict.confidence in ("medium", "high") and verdict.rule
    assert verdict.next_steps == ["diagnose t1 quota"]
    # The finding the verdict cites is never shown as healthy.
    cited = findings.finding("health.quota")
    assert cited is not None and cited.status is Status.WARN


def test_a_trickle_of_rejections_rising_with_the_breach_is_inconclusive_b_or_c() -> None:
    started = NOW - 900
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.04},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": started},
                "health.quota": {"share": 0.004, "rate": 0.3, "hits_1h": 200, "onset": started + 60},
            }
        ),
        CONFIG,
    )
    assert verdict.inconclusive == ("escalations", "quota")
    assert verdict.headline == "Inconclusive: B or C" and verdict.confidence == "low"
    assert verdict.next_steps == ["diagnose t1 escalations,quota"]


def test_rejections_long_before_the_breach_do_not_make_it_c() -> None:
    started = NOW - 900
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.04},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": started},
                "health.quota": {"share": 0.02, "rate": 1.0, "hits_1h": 3600, "onset": NOW - 6 * 3600},
            }
        ),
        CONFIG,
    )
    # The old rejections weigh against C: it is not even the runner-up.
    assert verdict.scenario == "escalations" and verdict.runner_up is None


def test_a_flag_flipped_just_before_the_breach_is_d() -> None:
    started = NOW - 1200
    flip = {"at": started - 120, "text": "flag strict_schema False → True for t1 by jdoe"}
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.06},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": started},
                "changes.flags": {"changes": [flip]},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "policy"
    assert any("strict_schema" in e for e in verdict.evidence)


def test_rollout_long_before_the_breach_is_scenario_b() -> None:
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.05},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": NOW - 600},
                "changes.registry": {"active_created_at": NOW - 14 * 86400},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "escalations"


def test_other_tenants_breaching_are_reported_as_an_isolation_concern() -> None:
    verdict = decide(
        report(
            **{
                "sli.escalations": {"ratio": 0.05},
                "sli.signatures": {"ratio": 0.001},
                "health.trend": {"escalations breach_start": NOW - 1700},
                "changes.registry": {"active_created_at": NOW - 1800, "diff": ["tol_coh: 0.6 → 0.7"]},
                "identify.others": {"others": ["a", "b"]},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "policy"
    assert any("isolation" in e for e in verdict.evidence)


def test_healthy_tenant_has_no_breach() -> None:
    verdict = decide(report(**{"sli.escalations": {"ratio": 0.003}, "sli.signatures": {"ratio": 0.0008}}), CONFIG)
    assert verdict.scenario is None and verdict.inconclusive == ()
    assert verdict.headline.startswith("No breach") and verdict.confidence == "high"


def test_unreadable_slis_do_not_pretend_health() -> None:
    findings = [Finding.error("sli.escalations", "x", "prometheus: down"), Finding.error("sli.signatures", "y", "down")]
    verdict = decide(Report("triage", "t1", findings, datetime.now(UTC), datetime.now(UTC)), CONFIG)
    assert verdict.scenario is None
    assert verdict.headline.startswith("Cannot tell")
