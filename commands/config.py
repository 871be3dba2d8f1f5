"""The runbook config: what differs between installations of the same runbook.

Loaded from the YAML file named by FLK_CONFIG; every field has the runbook's default.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metrics(_Strict):
    escalated: str = "flk_escalated_by_tenant"
    signature_errors: str = "flk_signature_errors_by_tenant"
    ingest: str = "flk_ingest_total_by_tenant"
    quota_exceeded: str = "flk_quota_exceeded_by_tenant"
    latency_bucket: str = "flk_request_duration_seconds_by_tenant_bucket"
    tenant_label: str = "tenant_id"


class Slo(_Strict):
    escalation_ratio: float = Field(default=0.02, gt=0, lt=1)
    signature_error_ratio: float = Field(default=0.01, gt=0, lt=1)
    # Quota rejections as a share of ingest above which triage calls it scenario C.
    quota_exceeded_share: float = Field(default=0.05, gt=0, lt=1)
    window: str = Field(default="5m", pattern=r"^\d+[smh]$")


class Resources(_Strict):
    tenant_configmap: str = "tenant-{tenant}"
    policy_configmap: str = "policy-{tenant}"
    signing_secret: str = "tenant-{tenant}-signing"
    policy_registry: str = "policy-registry"
    deployment: str = "backend"
    backend_selector: str = "app=backend"
    backend_container: str = "backend"
    admin_service: str = "backend:8080"
    tenant_file: str = "infra/tenants/{tenant}.yaml"


class Timeouts(_Strict):
    probe_s: float = Field(default=5.0, gt=0, le=120)
    log_tail_lines: int = Field(default=100, ge=1, le=10000)
    # A policy rollout this close before a breach makes scenario D the likely one.
    rollout_window_s: float = Field(default=3600, gt=0)
    tenant_cache_s: float = Field(default=60, ge=0)


class RunbookConfig(_Strict):
    metrics: Metrics = Metrics()
    slo: Slo = Slo()
    resources: Resources = Resources()
    timeouts: Timeouts = Timeouts()
    grafana_dashboard: str = "http://grafana/d/flk-tenant-health/tenant-health?var-tenant={tenant}"

    def name(self, template: str, tenant: str) -> str:
        return template.format(tenant=tenant)


class ConfigError(Exception):
    """A runbook config that cannot be used; the message names the setting."""


def load_runbook_config(path: str | Path | None) -> RunbookConfig:
    if not path:
        return RunbookConfig()
    source = Path(path)
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"FLK_CONFIG: cannot read {source}: {exc}") from None
    try:
        return RunbookConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"FLK_CONFIG {source}: {where}: {first['msg']}") from None
