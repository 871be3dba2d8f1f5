"""The bot's own metrics, served on /metrics.

Labels stay bounded: verbs, steps, outbox ops, Slack methods and backend systems are names from
the code, Slack error codes are checked for shape; never a tenant, a user or an incident (those
are in the logs, see bot/service/logs.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

from commands.models import Finding, Report, Status

log = logging.getLogger(__name__)

COMMANDS = Counter(
    "flk_bot_commands",
    "Slash commands and buttons by verb and outcome (ok, usage, refused, error; submitted for modals)",
    ["verb", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "flk_bot_slack_request_seconds",
    "Time from a Slack request's arrival to the bot's HTTP answer (the ack)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
)
ALERTS = Counter("flk_bot_alerts", "Alertmanager notifications by outcome", ["outcome"])
SCHEDULER_LEADER = Gauge("flk_bot_scheduler_leader", "1 while this replica sweeps the scheduled checks (leader)")

STEP_SECONDS = Histogram(
    "flk_bot_step_seconds",
    "Wall time of a runbook step run by the bot (triage, diagnose, isolation triage)",
    ["step"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
BACKEND_ERRORS = Counter(
    "flk_bot_backend_errors",
    "Findings in the bot's reports that failed (status error), by the system that failed; "
    "timeout: a probe without an answer, internal: a bug, unknown: not recorded",
    ["system"],
)
SLACK_API_ERRORS = Counter(
    "flk_bot_slack_api_errors", "Slack Web API calls that failed, by method and Slack's error code", ["method", "error"]
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "flk_bot_rate_limit_wait_seconds",
    "Waits for a rate limit: the bot's own per-channel limiter (limiter) or Slack's 429 Retry-After (slack_429)",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
CHECKS = Counter(
    "flk_bot_scheduled_checks",
    "Scheduled checks run, by kind and outcome (passed, failed: the check ran and said so; error: it could not run)",
    ["kind", "outcome"],
)
OUTBOX = Counter(
    "flk_bot_outbox_items",
    "Jobs items run, by op and outcome (done; slack_error, backend_error, error: retried later; interrupted)",
    ["op", "outcome"],
)

Outcome = Literal["ok", "usage", "refused", "error"]
_outcome: ContextVar[list[str] | None] = ContextVar("flk_command_outcome", default=None)
_SLACK_ERROR = re.compile(r"^[a-z0-9_]{1,48}$")


@contextmanager
def count_command(verb: str) -> Iterator[None]:
    """Count one command (or button) once it is done, with the outcome noted while it ran."""
    box = ["ok"]
    token = _outcome.set(box)
    try:
        yield
    except Exception:
        box[0] = "error"
        raise
    finally:
        _outcome.reset(token)
        COMMANDS.labels(verb=verb, outcome=box[0]).inc()
        log.info("command %s: %s", verb, box[0])


def note_outcome(outcome: Outcome) -> None:
    """Called where a command is refused or fails without raising (the person got a message)."""
    box = _outcome.get()
    if box is not None:
        box[0] = outcome


def observe_report(report: Report) -> None:
    STEP_SECONDS.labels(step=report.step).observe(report.wall_ms / 1000)
    count_backend_errors(report.findings)


def count_backend_errors(findings: Iterable[Finding]) -> None:
    for finding in findings:
        if finding.status is Status.ERROR:
            BACKEND_ERRORS.labels(system=str(finding.data.get("system", "unknown"))).inc()


def slack_error_code(error: object) -> str:
    """Slack's error codes are snake_case words; anything else (a proxy's HTML page) is 'other'."""
    return error if isinstance(error, str) and _SLACK_ERROR.match(error) else "other"
