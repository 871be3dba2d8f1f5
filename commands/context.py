"""What every runbook step needs: the runbook config, the backends, the tenant directory."""

from __future__ import annotations

from dataclasses import dataclass

from commands.config import RunbookConfig
from commands.tenants import TenantDirectory
from integrations.admin import AdminApi
from integrations.alertmanager import Alertmanager
from integrations.grafana import Grafana
from integrations.kube import Kube
from integrations.prometheus import Prometheus
from integrations.tenant_repo import TenantRepo
from integrations.worm import WormScanner


@dataclass
class Context:
    config: RunbookConfig
    prometheus: Prometheus
    kube: Kube
    admin: AdminApi
    repo: TenantRepo | None
    tenants: TenantDirectory
    # The WORM audit log; None when FLK_WORM_ROOT is not set.
    worm: WormScanner | None = None
    # Silences (`/flk silence`, expired on resolve); None when FLK_ALERTMANAGER_URL is not set.
    alertmanager: Alertmanager | None = None
    # The dashboard annotation on resolve; None when FLK_GRAFANA_URL is not set.
    grafana: Grafana | None = None

    async def close(self) -> None:
        await self.kube.close()
        await self.admin.close()
        for client in (self.alertmanager, self.grafana):
            if client is not None:
                await client.close()
        self.prometheus.close()
