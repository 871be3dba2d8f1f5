"""A Kubernetes API fake for the real ``kubernetes_asyncio`` client (see ``server.KubeFake``)."""

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
