"""Which policy version a tenant runs at a given time, the same for logs and WORM records.

A tenant runs its ``config.policy_version``; before that version's ``created_at`` it ran
the version registered just before it. Versions seen live (a rollback applied to the
tenant's configmap while the sandbox runs) take over from the moment they are observed.
"""

from __future__ import annotations

import bisect
import threading

from sandbox.world.live import LiveWorld


class PolicyTimeline:
    def __init__(self, live: LiveWorld) -> None:
        registry = sorted(live.world.policy_registry, key=lambda p: p.created_at)
        # tenant -> ([start times], [versions]), starts ascending; the first starts at -inf.
        self._steps: dict[str, tuple[list[float], list[str]]] = {}
        for tid, tenant in live.world.tenants.items():
            version = tenant.config["policy_version"]
            position = next(i for i, p in enumerate(registry) if p.version == version)
            if position == 0:
                self._steps[tid] = ([float("-inf")], [version])
            else:
                since = live.at(registry[position].created_at)
                self._steps[tid] = ([float("-inf"), since], [registry[position - 1].version, version])
        self._lock = threading.Lock()

    def version(self, tenant: str, t: float) -> str:
        starts, versions = self._steps[tenant]
        return versions[bisect.bisect_right(starts, t) - 1]

    def observe(self, tenant: str, version: str, when: float) -> None:
        """From ``when`` on, ``tenant`` runs ``version`` (no-op if it already does)."""
        with self._lock:
            starts, versions = self._steps[tenant]
            if self.version(tenant, when) == version:
                return
            cut = bisect.bisect_right(starts, when)
            del starts[cut:], versions[cut:]
            starts.append(when)
            versions.append(version)
