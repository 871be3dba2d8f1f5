"""The plain values the store hands out (never ORM objects, never Slack types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

IncidentKind = Literal["tenant", "isolation"]
IncidentState = Literal["open", "mitigating", "verifying", "resolved"]
AlertStatus = Literal["firing", "resolved"]
JobState = Literal["pending", "done", "failed"]

INCIDENT_STATES: tuple[IncidentState, ...] = ("open", "mitigating", "verifying", "resolved")
ALERT_STATUSES: tuple[AlertStatus, ...] = ("firing", "resolved")


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    kind: IncidentKind
    tenant: str | None
    tenants: tuple[str, ...]
    severity: str
    title: str
    state: IncidentState
    channel: str | None
    thread_ts: str | None
    scenario: str | None
    sli_summary: dict[str, Any] | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    first_alert_at: datetime | None
    last_alert_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.state != "resolved"


@dataclass(frozen=True, slots=True)
class AlertIn:
    """One alert as Alertmanager reported it (only what the store keeps)."""

    fingerprint: str
    tenant: str
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    incident_id: int
    fingerprint: str
    tenant: str
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    generator_url: str | None
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """What ``record_alert`` did: ``new`` fingerprint for the incident, or the status it had."""

    alert: Alert
    new: bool
    previous_status: AlertStatus | None

    @property
    def status_changed(self) -> bool:
        return not self.new and self.previous_status != self.alert.status


@dataclass(frozen=True, slots=True)
class BreachStart:
    """A tenant whose alert started at ``started_at`` (earliest start in the window)."""

    tenant: str
    started_at: datetime
    incident_id: int


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """A stored timeline row: ``kind`` and ``data`` are the typed event (``commands.timeline``
    reads them); ``text`` and ``details`` are what a legacy row said, None / {} for typed rows."""

    id: int
    incident_id: int
    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]
    text: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobItem:
    id: int
    incident_id: int | None
    op: str
    payload: dict[str, Any]
    dedupe_key: str | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None
    ordered: bool = True
    due_at: datetime | None = None
    done_at: datetime | None = None
    failed_at: datetime | None = None

    @property
    def state(self) -> JobState:
        return "done" if self.done_at else "failed" if self.failed_at else "pending"
