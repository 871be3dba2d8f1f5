"""Tenant ids: checked against a strict pattern before they reach PromQL, a label selector or
a Kubernetes name, then against the tenants Prometheus knows."""

from __future__ import annotations

import re
import time

from integrations.errors import BackendError
from integrations.prometheus import Prometheus

TENANT_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


def well_formed(tenant: str) -> bool:
    return bool(TENANT_PATTERN.fullmatch(tenant))


class TenantDirectory:
    """The set of known tenants, from the label values of the ingest metric, cached briefly."""

    def __init__(self, prometheus: Prometheus, metric: str, label: str, ttl_s: float) -> None:
        self._prometheus = prometheus
        self._metric = metric
        self._label = label
        self._ttl_s = ttl_s
        self._known: frozenset[str] = frozenset()
        self._loaded_at = 0.0

    async def known(self) -> frozenset[str]:
        """Known tenants; raises BackendError only when nothing was ever loaded."""
        if self._known and time.monotonic() - self._loaded_at < self._ttl_s:
            return self._known
        try:
            values = await self._prometheus.label_values(self._label, self._metric)
        except BackendError:
            if self._known:
                return self._known
            raise
        self._known = frozenset(v for v in values if well_formed(v))
        self._loaded_at = time.monotonic()
        return self._known

    async def refuse(self, tenant: str) -> str | None:
        """Why this tenant id cannot be used, or None when it can."""
        if not well_formed(tenant):
            return f"`{tenant[:60]}` is not a valid tenant id (lower-case letters, digits and '-', at most 40)"
        try:
            known = await self.known()
        except BackendError:
            # Prometheus is down: the triage will say so; refusing every tenant would hide it.
            return None
        if tenant not in known:
            return f"unknown tenant `{tenant}`"
        return None
