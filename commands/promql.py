"""PromQL for the runbook's SLIs. Tenant ids are validated before they get here."""

from __future__ import annotations

from commands.config import RunbookConfig


def selector(config: RunbookConfig, tenant: str) -> str:
    return f'{{{config.metrics.tenant_label}="{tenant}"}}'


def ratio(config: RunbookConfig, numerator: str, tenant: str, window: str | None = None) -> str:
    """A counter's rate over the ingest rate: the runbook's SLI for one tenant."""
    w = window or config.slo.window
    sel = selector(config, tenant)
    return f"sum(rate({numerator}{sel}[{w}])) / sum(rate({config.metrics.ingest}{sel}[{w}]))"


def ratio_by_tenant(config: RunbookConfig, numerator: str) -> str:
    """The SLI for every tenant at once."""
    label, w = config.metrics.tenant_label, config.slo.window
    return f"sum by ({label}) (rate({numerator}[{w}])) / sum by ({label}) (rate({config.metrics.ingest}[{w}]))"


def escalation_ratio(config: RunbookConfig, tenant: str, window: str | None = None) -> str:
    return ratio(config, config.metrics.escalated, tenant, window)


def signature_error_ratio(config: RunbookConfig, tenant: str, window: str | None = None) -> str:
    return ratio(config, config.metrics.signature_errors, tenant, window)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.3g}%"
