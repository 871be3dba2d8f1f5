"""Real Prometheus and Alertmanager for the sandbox, with promtool-backfilled history
(``sandbox.prom.backfill``)."""

from sandbox.prom.launcher import Alertmanager, Prometheus, ScrapeTarget
from sandbox.prom.process import LaunchError

__all__ = ["Alertmanager", "LaunchError", "Prometheus", "ScrapeTarget"]
