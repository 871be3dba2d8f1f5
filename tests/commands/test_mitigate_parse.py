"""`mitigate` and `verify` parsing: what diagnosis suggests is accepted as it is written, bad
input is a short usage error before anything is read or written; plans survive storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import commands.verify  # noqa: F401  (registers the verb)
from commands.mitigate import Applied, Change, ObjectChange, ObjectRef, Plan
from commands.registry import REGISTRY, UsageError, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mitigate acme key-window", {"action": "key-window"}),
        ("mitigate acme quota", {"action": "quota"}),
        ("mitigate acme degraded-mode", {"action": "degraded-mode"}),
        ("mitigate acme rollback-policy", {"action": "rollback-policy"}),
        ("mitigate acme rollback-policy v41", {"action": "rollback-policy", "version": "v41"}),
        ("mitigate acme quota 300", {"action": "quota", "token_rate": "300"}),
        ("mitigate acme quota 12.50", {"action": "quota", "token_rate": "12.5"}),
        ("mitigate acme quota 300 --burst 600", {"action": "quota", "token_rate": "300", "burst_rate": "600"}),
        ("mitigate acme quota --burst=450", {"action": "quota", "burst_rate": "450"}),
        ("mitigate acme QUOTA 2e2", {"action": "quota", "token_rate": "200"}),
        ("mitigate acme quota 10000000", {"action": "quota", "token_rate": "10000000"}),
        ("mitigate acme key-window --dry-run", {"action": "key-window", "dry_run": True}),
        ("mitigate acme --dry-run degraded-mode", {"action": "degraded-mode", "dry_run": True}),
        ("mitigate acme quota 300 for 2h", {"action": "quota", "token_rate": "300", "lasts_s": 7200}),
        ("mitigate acme degraded-mode for 1h30m", {"action": "degraded-mode", "lasts_s": 5400}),
        (
            "mitigate acme ip-block 203.0.113.7,198.51.100.0/24 2001:db8::1 for 1d",
            {"action": "ip-block", "ips": ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::1/128"], "lasts_s": 86400},
        ),
        ("mitigate acme ip-block 203.0.113.7 203.0.113.7/32", {"action": "ip-block", "ips": ["203.0.113.7/32"]}),
    ],
)
def test_accepted(text: str, expected: dict[str, object]) -> None:
    args = parse(text).args
    defaults = {
        "tenant": "acme",
        "token_rate": None,
        "burst_rate": None,
        "version": None,
        "ips": None,
        "lasts_s": None,
        "dry_run": False,
    }
    assert args == {**defaults, **expected}
    assert parse(text).verb.mutating


def test_what_diagnosis_suggests_parses() -> None:
    for step in (
        "mitigate t-1 key-window",
        "mitigate t-1 quota",
        "mitigate t-1 degraded-mode",
        "mitigate t-1 rollback-policy v8",
    ):
        assert parse(step).args["tenant"] == "t-1"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mitigate acme quota -5", "above 0"),
        ("mitigate acme quota abc", "above 0"),
        ("mitigate acme quota 0", "above 0"),
        ("mitigate acme quota nan", "above 0"),
        ("mitigate acme quota inf", "above 0"),
        ("mitigate acme quota 1e400", "not a plausible rate"),
        ("mitigate acme quota 10 --burst -1", "above 0"),
        ("mitigate acme quota --burst", "needs a value"),
        ("mitigate acme frobnicate", "unknown mitigation"),
        ("mitigate acme degraded-mode now", "too many arguments"),
        ("mitigate acme key-window 4h", "too many arguments"),
        ("mitigate acme quota 1 2", "too many arguments"),
        ("mitigate acme rollback-policy v1 v2", "too many arguments"),
        ("mitigate acme rollback-policy '../x'", "not a policy version"),
        ("mitigate acme key-window --burst 5", "goes with `quota`"),
        ("mitigate acme quota --force", "unknown option"),
        ("mitigate", "which tenant"),
        ("mitigate acme", "which mitigation"),
        ("mitigate 'acme\"}' quota", "not a valid tenant"),
        ("mitigate acme rollback-policy for 2h", "not temporary"),
        ("mitigate acme quota for", "needs a duration"),
        ("mitigate acme quota for 8d", "at most 7 days"),
        ("mitigate acme ip-block 1.2.3", "not an IP address"),
        ("extend", "expected"),
        ("extend 1a2b3c4d zz", "not a duration"),
        ("extend ../x", "not a plan id"),
        ("verify", "which tenant"),
        ("verify acme soon", "expected"),
        ("verify acme in 5x", "not a duration"),
        ("verify acme in 48h", "24 h"),
    ],
)
def test_refused(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    message = caught.value.text("/flk")
    assert says in message
    assert f"Usage: `/flk {caught.value.verb.usage}`" in message  # type: ignore[union-attr]
    assert len(message) < 400


def test_verify_delays() -> None:
    assert parse("verify acme").args == {"tenant": "acme", "delay_s": 0}
    assert parse("verify acme in 5m").args == {"tenant": "acme", "delay_s": 300}
    assert parse("verify acme in 90").args == {"tenant": "acme", "delay_s": 90}
    assert parse("verify acme IN 1h").args == {"tenant": "acme", "delay_s": 3600}


def test_usage_names_every_action() -> None:
    usage = REGISTRY["mitigate"].usage
    for action in ("degraded-mode", "quota", "rollback-policy", "key-window", "--dry-run", "--burst"):
        assert action in usage


def _plan() -> Plan:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    ref = ObjectRef("ConfigMap", "ns-1", "policy-x")
    return Plan(
        id="abc123",
        tenant="x",
        action="rollback-policy",
        objects=(ObjectChange(ref, "41", (Change("tol_D", "1.0", "1.4"), Change("extra", "1", None))),),
        restart=ObjectRef("Deployment", "ns-1", "backend"),
        needs_second_approver=True,
        approval_reasons=("configured",),
        created_at=now,
        expires_at=now + timedelta(minutes=10),
        notes=("policy v2 → v1",),
    )


def test_plans_and_applications_survive_json_storage() -> None:
    plan = _plan()
    stored = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(stored) == plan
    applied = Applied(plan, plan.objects, plan.created_at, restarted_at="2030-01-02T03:04:06.000001Z")
    assert Applied.from_dict(json.loads(json.dumps(applied.to_dict()))) == applied


def test_the_inverse_restores_every_previous_value() -> None:
    plan = _plan()
    (back,) = plan.inverse
    assert back.ref == plan.objects[0].ref
    assert back.changes == (Change("tol_D", "1.4", "1.0"), Change("extra", None, "1"))
    assert back.patch == {"tol_D": "1.0", "extra": "1"}
    assert plan.objects[0].patch == {"tol_D": "1.4", "extra": None}


def test_a_plan_expires() -> None:
    plan = _plan()
    assert not plan.expired(plan.created_at + timedelta(minutes=9, seconds=59))
    assert plan.expired(plan.expires_at)


def test_the_dry_run_lines_name_object_keys_and_restart() -> None:
    lines = _plan().lines()
    assert lines == [
        'configmap/policy-x (namespace ns-1) · tol_D: "1.0" → "1.4"',
        'configmap/policy-x (namespace ns-1) · extra: "1" → (unset)',
        "then `kubectl rollout restart` of deployment/backend (namespace ns-1)",
    ]
