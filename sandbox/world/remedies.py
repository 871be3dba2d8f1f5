"""The world reacting to mitigations: when the change a tenant's ``remedy`` names lands in the
Kubernetes fake, the tenant's metrics recover to ``recovers_to``; a wrong mitigation changes
nothing; undoing the right one brings the breach back.

The backend reads ``token_rate`` and the multi-key window live, but ``strict_mode`` and
``policy_version`` only when it starts: those take effect at the next rollout restart of the
backend deployment (a new ``kubectl.kubernetes.io/restartedAt`` on its pod template). An IP block
takes effect as soon as the tenant Ingress's denylist covers every attacking source (ingress-nginx
reloads its configuration by itself).

    install_remedies(live, kube_store, namespace)   # once, after the store is loaded
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sandbox.kube.store import KubeStore, Obj
from sandbox.kube.timefmt import parse_rfc3339
from sandbox.kube.world_objects import tenant_configmap, tenant_ingress
from sandbox.world.live import LiveWorld
from sandbox.world.spec import Remedy

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# Keys the backend reads only when its pods start.
AT_RESTART = ("strict_mode", "policy_version")
KEY_WINDOW = "multi_key_window_until"
DENYLIST = "nginx.ingress.kubernetes.io/denylist-source-range"


class Remedies:
    """Watches tenant configmaps and the backend deployment; sets the world's values."""

    def __init__(self, live: LiveWorld, store: KubeStore, namespace: str, clock: Callable[[], float] = time.time):
        self.live = live
        self.namespace = namespace
        self._clock = clock
        self._lock = threading.Lock()
        world = live.world
        self._tenant_by_map = {tenant_configmap(t): t for t in world.tenants}
        self._tenant_by_ingress = {tenant_ingress(t): t for t in world.tenants}
        # Per tenant: the source ranges its Ingress denies.
        self._denied: dict[str, str] = {}
        self._created = {v.version: live.at(v.created_at) for v in world.policy_registry}
        # Per tenant: the configmap as written, and its restart-bound keys as the pods last read them.
        self._latest: dict[str, dict[str, str]] = {}
        self._running: dict[str, dict[str, str]] = {}
        # Per tenant with a remedy: until when it is in effect (inf: until undone), or None.
        self._effect: dict[str, float | None] = {}
        self._versions: dict[str, int] = {}
        for tenant in world.tenants:
            obj = store.get("configmaps", namespace, tenant_configmap(tenant))
            data = dict((obj or {}).get("data") or {})
            self._latest[tenant] = data
            self._running[tenant] = {k: data[k] for k in AT_RESTART if k in data}
            self._effect[tenant] = None
        self._unsubscribe: Callable[[], None] | None = store.on_change(self._on_change)

    def unsubscribe(self) -> None:
        """Stop reacting (idempotent)."""
        stop, self._unsubscribe = self._unsubscribe, None
        if stop is not None:
            stop()

    def _on_change(self, resource: str, before: Obj | None, after: Obj | None) -> None:
        obj = after or before or {}
        meta = obj.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return
        with self._lock:
            if resource == "configmaps" and meta.get("name") in self._tenant_by_map:
                tenant = self._tenant_by_map[meta["name"]]
                # Writes from other threads may be announced out of order: keep the newest.
                version = int(meta.get("resourceVersion") or 0)
                if version < self._versions.get(tenant, 0):
                    return
                self._versions[tenant] = version
                self._latest[tenant] = dict((after or {}).get("data") or {})
                self._evaluate(tenant)
            elif resource == "ingresses" and meta.get("name") in self._tenant_by_ingress:
                tenant = self._tenant_by_ingress[meta["name"]]
                self._denied[tenant] = ((after or {}).get("metadata") or {}).get("annotations", {}).get(DENYLIST, "")
                self._evaluate(tenant)
            elif (
                resource == "deployments"
                and meta.get("name") == self.live.world.backend.deployment
                and _restarted_at(before) != _restarted_at(after)
                and after is not None
            ):
                for tenant, data in self._latest.items():
                    self._running[tenant] = {k: data[k] for k in AT_RESTART if k in data}
                    self._evaluate(tenant)

    def _evaluate(self, tenant: str) -> None:
        remedy = self.live.world.tenants[tenant].remedy
        if remedy is None:
            return
        now = self._clock()
        until = self._in_effect_until(tenant, remedy, now)
        if until == self._effect[tenant]:
            return
        was, self._effect[tenant] = self._effect[tenant], until
        if until is not None:
            log.info("sandbox: %s mitigated (%s) until %s", tenant, remedy.action, until)
            for name, value in remedy.recovers_to.items():
                self.live.set(tenant, name, value, now)
            if math.isfinite(until):
                self._breach_again(tenant, remedy, until)
        elif was is not None and was > now:
            log.info("sandbox: %s mitigation (%s) undone", tenant, remedy.action)
            self._breach_again(tenant, remedy, now)

    def _breach_again(self, tenant: str, remedy: Remedy, when: float) -> None:
        """The fields the remedy changed go back to what the world spec says for that time."""
        traffic = self.live.world.tenants[tenant].traffic
        offset = timedelta(seconds=when - self.live.t0)
        for name in remedy.recovers_to:
            self.live.set(tenant, name, getattr(traffic, name).at(offset), when)

    def _in_effect_until(self, tenant: str, remedy: Remedy, now: float) -> float | None:
        spec = self.live.world.tenants[tenant].config
        latest, running = self._latest[tenant], self._running[tenant]
        if remedy.action == "degraded-mode":
            on = running.get("strict_mode") == "false" != spec["strict_mode"]
        elif remedy.action == "quota":
            on = _number(latest.get("token_rate")) > _number(spec["token_rate"])
        elif remedy.action == "ip-block":
            on = bool(remedy.sources) and all(_denied(ip, self._denied.get(tenant, "")) for ip in remedy.sources)
        elif remedy.action == "rollback-policy":
            version = running.get("policy_version", "")
            on = version in self._created and self._created[version] < self._created[spec["policy_version"]]
        else:
            until = _time(latest.get(KEY_WINDOW))
            return until if until is not None and until > now else None
        return math.inf if on else None


def _denied(ip: str, denylist: str) -> bool:
    """Whether ingress-nginx denies ``ip`` by a comma-separated list of CIDRs (bad entries ignored)."""
    address = ipaddress.ip_address(ip)
    for entry in (e.strip() for e in denylist.split(",") if e.strip()):
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _restarted_at(obj: Obj | None) -> Any:
    template = ((obj or {}).get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)


def _number(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return math.nan


def _time(text: str | None) -> float | None:
    try:
        return parse_rfc3339(text) if text else None
    except ValueError:
        return None


def install_remedies(live: LiveWorld, kube_store: KubeStore, namespace: str) -> Remedies:
    """Make the world react to mitigations written to ``kube_store``; ``.unsubscribe()`` stops it."""
    return Remedies(live, kube_store, namespace)
