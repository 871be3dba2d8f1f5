"""The backends every runbook step needs, built once from the settings (no Slack here: the
terminal builds the same context on the day Slack is down)."""

from __future__ import annotations

import logging

from bot.service.settings import Settings
from commands.config import RunbookConfig
from commands.context import Context
from commands.tenants import TenantDirectory
from integrations.admin import AdminApi
from integrations.alertmanager import Alertmanager
from integrations.audit import AuditLog, AuditUnavailable
from integrations.audit_records import audit_key
from integrations.grafana import Grafana
from integrations.kube import Kube
from integrations.prometheus import Prometheus
from integrations.tenant_repo import TenantRepo
from integrations.worm import WormScanner

log = logging.getLogger(__name__)


async def build_context(settings: Settings, config: RunbookConfig) -> Context:
    timeout = config.timeouts.probe_s
    prometheus = Prometheus(settings.prometheus_url, timeout)
    token = settings.kube_token.get_secret_value() if settings.kube_token else None
    kube = await Kube.connect(settings.kube_api_url, token, settings.namespace, timeout)
    if settings.admin_url:
        admin = AdminApi(settings.admin_url, timeout)
    else:
        # As the runbook does with `kubectl exec ... curl localhost:8080/admin`: through the API server.
        base = settings.kube_api_url or "https://kubernetes.default.svc"
        proxy = f"{base}/api/v1/namespaces/{settings.namespace}/services/{config.resources.admin_service}/proxy"
        admin = AdminApi(proxy, timeout, headers={"Authorization": f"Bearer {token}"} if token else None)
    repo = TenantRepo(settings.tenant_repo, timeout) if settings.tenant_repo else None
    directory = TenantDirectory(
        prometheus, config.metrics.ingest, config.metrics.tenant_label, config.timeouts.tenant_cache_s
    )
    worm = WormScanner(settings.worm_root, index_cache=settings.worm_index_cache) if settings.worm_root else None
    alertmanager = Alertmanager(settings.alertmanager_url, timeout) if settings.alertmanager_url else None
    grafana_token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    grafana = Grafana(settings.grafana_url, grafana_token, timeout) if settings.grafana_url else None
    return Context(
        config=config,
        prometheus=prometheus,
        kube=kube,
        admin=admin,
        repo=repo,
        tenants=directory,
        worm=worm,
        alertmanager=alertmanager,
        grafana=grafana,
    )


def open_audit_log(settings: Settings) -> AuditLog:
    """The audit log, its torn tail (a crash mid-write) cut off and recorded before anything is
    appended. A log that cannot be written is said at start; every change then refuses itself."""
    audit = AuditLog(
        settings.audit_log, key=audit_key(settings.audit_key.get_secret_value() if settings.audit_key else None)
    )
    try:
        recovered = audit.recover()
    except AuditUnavailable as exc:
        log.error("audit log unavailable at start: %s; nothing that must be audited will be done", exc.why)
        return audit
    if recovered is not None:
        log.warning(
            "audit log %s ended in a torn record: %s bytes dropped and recorded",
            settings.audit_log,
            recovered["details"].get("bytes_dropped"),
        )
    return audit
