"""Real Prometheus and Alertmanager for the sandbox, with promtool-backfilled history."""

from sandbox.prom.backfill import backfill
from sandbox.prom.launcher import Alertmanager, LaunchError, Prometheus, ScrapeTarget

__all__ = ["Alertmanager", "LaunchError", "Prometheus", "ScrapeTarget", "backfill"]
