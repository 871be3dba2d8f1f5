"""The bot's own metrics, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("flk_bot_commands", "Slash commands and buttons by verb and outcome", ["verb", "outcome"])
REQUEST_SECONDS = Histogram(
    "flk_bot_slack_request_seconds",
    "Time from a Slack request's arrival to the bot's HTTP answer (the ack)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
)
ALERTS = Counter("flk_bot_alerts", "Alertmanager notifications by outcome", ["outcome"])
SCHEDULER_LEADER = Gauge("flk_bot_scheduler_leader", "1 while this replica sweeps the scheduled checks (leader)")
