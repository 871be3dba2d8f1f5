"""The runbook config: what differs between installations of the same runbook.

Loaded from the YAML file named by FLK_CONFIG; every field has the runbook's default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

# Slack channel ids (C…, G… for private, D… for DMs) and tenant ids (commands/tenants.py).
_CHANNEL = r"^[CGD][A-Z0-9_]{1,30}$"
_TENANT = r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?"


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
    # The tenant's Ingress (ingress-nginx): the attack mitigation denies source ranges on it.
    tenant_ingress: str = "tenant-{tenant}"
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


class Diagnosis(_Strict):
    """Runbook §4: what the root-cause scenarios look at and where they draw their lines."""

    # Backend log lines read per pod (`kubectl logs --since=1h`).
    log_window_s: int = Field(default=3600, ge=60, le=86400)
    # At most this much of each pod's log window is kept (its newest part): a chatty backend
    # cannot make a diagnosis hold its whole log in memory.
    log_max_bytes_per_pod: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)
    signature_failure_message: str = "signature verification failed"
    quota_exceeded_message: str = "quota exceeded"
    # A signature timestamp this far from the receive time is clock skew.
    clock_skew_s: float = Field(default=30, gt=0)
    # Share of timestamped rejections that must be skewed to call it clock skew.
    clock_skew_share: float = Field(default=0.5, gt=0, le=1)
    # Retry storm: per-source intervals this regular (coefficient of variation) and short,
    # from at most this many sources; this many sources or more look like an attack.
    retry_max_cv: float = Field(default=0.25, gt=0)
    retry_max_interval_s: float = Field(default=10, gt=0)
    retry_max_sources: int = Field(default=5, ge=1)
    attack_min_sources: int = Field(default=20, ge=2)
    top_sources: int = Field(default=10, ge=1, le=100)
    # Scenario B: the escalations shown, the WORM history compared with the incident window.
    sample_size: int = Field(default=20, ge=1, le=200)
    sample_lookback_h: float = Field(default=24, gt=0, le=24 * 31)
    baseline_h: float = Field(default=6, gt=0, le=24 * 7)
    window_records_cap: int = Field(default=200_000, ge=100)
    # A median moved by more than this many baseline standard deviations is a shifted distribution.
    shift_sigmas: float = Field(default=2.0, gt=0)
    # Out-of-range or missing values in this share of escalations is upstream corruption.
    corruption_share: float = Field(default=0.05, gt=0, le=1)
    d_hat_range: tuple[float, float] = (0.0, 3.0)
    coh_star_range: tuple[float, float] = (0.0, 1.0)
    # A triage older than this no longer steers a diagnosis: it runs all four scenarios.
    triage_max_age_s: float = Field(default=300, gt=0)


class Export(_Strict):
    default_rows: int = Field(default=1000, ge=1)
    max_rows: int = Field(default=100_000, ge=1)
    # How far back the newest escalations are looked for.
    lookback_days: int = Field(default=7, ge=1, le=366)
    # Exports one replica runs at once (each reads up to max_rows WORM records); more are told
    # "busy, try again" rather than queued behind them.
    max_concurrent: int = Field(default=2, ge=1, le=16)


class Incidents(_Strict):
    # More tenants than this starting to breach within the window: one isolation-breach incident.
    isolation_threshold: int = Field(default=3, ge=1)
    isolation_window_s: float = Field(default=300, gt=0)


class Mitigations(_Strict):
    """Runbook §5 and §6: how far a mitigation may go, who must agree, when its effect is checked."""

    # token_rate / burst_rate above these need a second, different approver.
    quota_ceiling: float = Field(default=1000, gt=0)
    burst_ceiling: float = Field(default=2000, gt=0)
    # How long the multi-key verification window stays open (scenario A).
    key_window_s: float = Field(default=4 * 3600, gt=0, le=7 * 86400)
    # A plan not confirmed within this is refused: the object may have moved on.
    plan_expiry_s: float = Field(default=600, gt=0)
    # Actions that always need a second, different approver.
    second_approver_actions: tuple[
        Literal["degraded-mode", "quota", "rollback-policy", "key-window", "ip-block"], ...
    ] = ()
    # Temporary mitigations (all but rollback-policy) last this long unless a plan says `for <duration>`:
    # then the thread is reminded, with Revert and Extend.
    default_expiry_s: float = Field(default=4 * 3600, gt=0, le=7 * 86400)
    # Source ranges wider than these prefixes are refused (a typo must not deny a whole provider).
    ip_block_min_prefix_v4: int = Field(default=16, ge=0, le=32)
    ip_block_min_prefix_v6: int = Field(default=48, ge=0, le=128)
    ip_block_max_entries: int = Field(default=64, ge=1, le=1000)
    # SLO checks after each mitigation (seconds after it was applied); the last one escalates.
    verify_delays_s: tuple[PositiveFloat, ...] = Field(default=(300, 600), min_length=1)
    # The Slack user group mentioned when the last check still fails.
    oncall_group: str | None = None
    # Slack user groups whose members may confirm mitigations (none configured: nobody may).
    authorised_groups: tuple[str, ...] = ()
    # Terminal operators (FLK_OPERATOR) who may change the cluster from `flk`, for the day Slack
    # is down; when Slack answers, a Slack user id among them must also be in an authorised group.
    terminal_operators: tuple[str, ...] = ()


class Comms(_Strict):
    """Runbook §5.1, §6, §7: where notices go, what they say by default, when the RCA is due."""

    # A folder of templates that replaces the packaged ones by file name; a template in its
    # ``<tenant>/`` subfolder wins for that tenant.
    templates_dir: str | None = None
    # Tenant -> the Slack (Connect) channel its notices are posted to.
    tenant_channels: dict[str, str] = Field(default_factory=dict)
    # Where the RESOLVED update goes besides the incident thread.
    stakeholder_channel: str | None = Field(default=None, pattern=_CHANNEL)
    # Severity named in tenant notices; None: the incident's own.
    severity: str | None = Field(default=None, min_length=1, max_length=20)
    eta: str = Field(default="30 minutes", min_length=1, max_length=100)
    # A reminder this long after the resolve unless an RCA has been posted (runbook §7: 48 h).
    rca_reminder_s: float = Field(default=48 * 3600, gt=0)
    # A message in the thread marked with this reaction joins the timeline.
    timeline_reaction: str = Field(default="pushpin", pattern=r"^[a-z0-9_+'-]{1,100}$")
    silence_max_s: float = Field(default=24 * 3600, gt=0)
    grafana_dashboard_uid: str = Field(default="flk-tenant-health", min_length=1, max_length=40)
    grafana_tags: tuple[str, ...] = ("flk", "slo-breach")

    @field_validator("tenant_channels")
    @classmethod
    def _tenant_channels(cls, value: dict[str, str]) -> dict[str, str]:
        for tenant, channel in value.items():
            if not re.fullmatch(_TENANT, tenant):
                raise ValueError(f"{tenant[:60]!r} is not a valid tenant id")
            if not re.fullmatch(_CHANNEL, channel):
                raise ValueError(f"{channel[:60]!r} (for {tenant}) is not a Slack channel id")
        return value


class Limits(_Strict):
    """Sizes of what arrives from outside, refused with a short answer beyond them."""

    # An Alertmanager notification body (a batch of alerts); Alertmanager is told 413.
    alert_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # The text of a `/flk` command.
    command_text_chars: int = Field(default=1000, ge=100, le=40_000)


class RunbookConfig(_Strict):
    alert_name: str = "FLKTenantSLOBreach"
    incidents: Incidents = Incidents()
    metrics: Metrics = Metrics()
    slo: Slo = Slo()
    resources: Resources = Resources()
    timeouts: Timeouts = Timeouts()
    diagnosis: Diagnosis = Diagnosis()
    export: Export = Export()
    comms: Comms = Comms()
    mitigations: Mitigations = Mitigations()
    limits: Limits = Limits()
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
