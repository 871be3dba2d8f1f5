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
                "changes.registry": {"active_created_at": promoted, "active_version": "v9"},
                "identify.others": {"others": []},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "policy"
    assert any("v9" in e for e in verdict.evidence)


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
                "changes.registry": {"active_created_at": NOW - 1800},
                "identify.others": {"others": ["a", "b"]},
            }
        ),
        CONFIG,
    )
    assert verdict.scenario == "policy"
    assert any("isolation" in e for e in verdict.evidence)


def test_healthy_tenant_has_no_breach() -> None:
    verdict = decide(report(**{"sli.escalations": {"ratio": 0.003}, "sli.signatures": {"ratio": 0.0008}}), CONFIG)
    assert verdict.scenario is None
    assert verdict.headline.startswith("No breach")


def test_unreadable_slis_do_not_pretend_health() -> None:
    findings = [Finding.error("sli.escalations", "x", "prometheus: down"), Finding.error("sli.signatures", "y", "down")]
    verdict = decide(Report("triage", "t1", findings, datetime.now(UTC), datetime.now(UTC)), CONFIG)
    assert verdict.scenario is None
    assert verdict.headline.startswith("Cannot tell")
