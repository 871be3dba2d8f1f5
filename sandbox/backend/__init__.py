"""The FLK backend stand-in: log lines per pod, the metrics exporter and the admin API."""

from sandbox.backend.logs import BackendLogs
from sandbox.backend.metrics_model import samples
from sandbox.backend.pods import backend_pod_names
from sandbox.backend.server import BackendServer

__all__ = ["BackendLogs", "BackendServer", "backend_pod_names", "samples"]
