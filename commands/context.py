"""What every runbook step needs: the runbook config, the backends, the tenant directory."""

from __future__ import annotations

from dataclasses import dataclass

from commands.config import RunbookConfig
from commands.tenants import TenantDirectory
from integrations.admin import AdminApi
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

    async def close(self) -> None:
        await self.kube.close()
        await self.admin.close()
        self.prometheus.close()
