"""A Kubernetes API fake for the real ``kubernetes_asyncio`` client.

store = KubeStore(objects_from_world(live))
fake = KubeFake(store, token=token, rbac=Rbac(live.world.rbac_deny),
                pod_logs=logs_by_pod, proxy_upstreams={"backend": backend_url})
await fake.start()          # fake.url -> client.Configuration(host=fake.url)
store.on_change(react)      # react(resource, before, after) after every write
fake.rbac.deny("patch", "configmaps", "tenant-acme")   # 403 from now on
"""

from sandbox.kube.errors import KubeError
from sandbox.kube.logs import PodLogs
from sandbox.kube.rbac import Rbac
from sandbox.kube.server import DEFAULT_USER, KubeFake
from sandbox.kube.store import ChangeCallback, KubeStore
from sandbox.kube.world_objects import objects_from_world

__all__ = [
    "DEFAULT_USER",
    "ChangeCallback",
    "KubeError",
    "KubeFake",
    "KubeStore",
    "PodLogs",
    "Rbac",
    "objects_from_world",
]
