"""deploy/prometheus: the FLKTenantSLOBreach rule checked and unit-tested by the real promtool,
the PrometheusRule manifest identical to the plain file, the Alertmanager example valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from commands.config import Metrics, Slo

DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ANNOTATIONS = {"summary", "description", "value", "slo", "runbook_url", "dashboard"}


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name) or f"/usr/bin/{name}"
    return subprocess.run([binary, *args], cwd=DIR, capture_output=True, text=True, timeout=60, check=False)


def _load(name: str) -> Any:
    return yaml.safe_load((DIR / name).read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load("rules.yaml")["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    result = _tool("promtool", "check", "rules", "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_promtool_unit_tests() -> None:
    result = _tool("promtool", "test", "rules", "rules_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_one_rule_per_sli_with_the_runbook_thresholds_and_the_bots_metric_names() -> None:
    metrics, slo = Metrics(), Slo()
    expected = {
        "escalations": (metrics.escalated, slo.escalation_ratio),
        "signature_errors": (metrics.signature_errors, slo.signature_error_ratio),
    }
    rules = _rules()
    assert {r["labels"]["sli"] for r in rules} == set(expected) and len(rules) == len(expected)
    for rule in rules:
        metric, threshold = expected[rule["labels"]["sli"]]
        expr = " ".join(rule["expr"].split())
        assert rule["alert"] == "FLKTenantSLOBreach" and rule["labels"]["severity"] == "P2"
        assert f"rate({metric}[{slo.window}])" in expr and f"rate({metrics.ingest}[{slo.window}])" in expr
        assert f"by ({metrics.tenant_label})" in expr and expr.endswith(f"> {threshold}")
        assert set(rule["annotations"]) == ANNOTATIONS
        assert float(rule["annotations"]["slo"]) == threshold


def test_prometheusrule_manifest_has_the_same_groups() -> None:
    manifest = _load("prometheusrule.yaml")
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"]
    assert manifest["spec"]["groups"] == _load("rules.yaml")["groups"]


def test_alertmanager_example_is_valid_and_points_at_the_bot() -> None:
    result = _tool("amtool", "check-config", "alertmanager-example.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    config = _load("alertmanager-example.yml")
    [route] = [r for r in config["route"]["routes"] if r["receiver"] == "flk-chatops"]
    assert route["group_by"] == ["alertname", "tenant_id"]
    assert route["matchers"] == ['alertname = "FLKTenantSLOBreach"']
    [receiver] = [r for r in config["receivers"] if r["name"] == "flk-chatops"]
    [hook] = receiver["webhook_configs"]
    assert hook["url"].endswith("/alerts/alertmanager") and hook["send_resolved"] is True
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and "credentials_file" in auth and "credentials" not in auth
