"""`/flk silence`: an Alertmanager silence of the tenant's SLO alert, tied to its incident.

The silence is recorded on the incident's timeline (``silence.created``), and every silence
the incident created is expired on resolve (``silence.expired``); a failure to expire leaves
no event, so a retry picks the silence up again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from commands.comms.templates import duration
from commands.comms.verbs import check_silence_duration
from commands.config import RunbookConfig
from commands.registry import UsageError
from commands.timeline import Entry, append, read_timeline
from commands.timeline.events import SilenceChanged
from integrations.alertmanager import Alertmanager
from integrations.errors import BackendError
from integrations.store import Incident, Store

SILENCE_CREATED, SILENCE_EXPIRED = "silence.created", "silence.expired"


@dataclass(frozen=True)
class CreatedSilence:
    id: str
    tenant: str
    ends_at: datetime
    text: str  # what the timeline says


@dataclass
class ExpiredSilences:
    expired: list[str] = field(default_factory=list)
    # Alertmanager no longer knew them (restarted without its data): nothing left to expire.
    unknown: list[str] = field(default_factory=list)
    # Silence id -> why it could not be expired now; retry later.
    failed: dict[str, str] = field(default_factory=dict)


def silence_matchers(config: RunbookConfig, tenant: str) -> dict[str, str]:
    return {"alertname": config.alert_name, config.metrics.tenant_label: tenant}


async def silence_tenant(
    store: Store,
    alertmanager: Alertmanager,
    config: RunbookConfig,
    incident: Incident,
    tenant: str,
    duration_s: int,
    reason: str,
    actor: str,
    *,
    now: datetime | None = None,
) -> CreatedSilence:
    """Silence ``tenant``'s alert for ``duration_s`` and record it on ``incident``'s timeline.
    UsageError for a tenant outside the incident or a duration above the maximum;
    BackendError when Alertmanager refuses or cannot be reached."""
    if tenant not in incident.tenants:
        raise UsageError(f"`{tenant}` is not part of incident #{incident.id}")
    check_silence_duration(duration_s, config)
    start = now or datetime.now(UTC)
    ends_at = start + timedelta(seconds=duration_s)
    silence_id = await alertmanager.create_silence(
        silence_matchers(config, tenant),
        starts_at=start,
        ends_at=ends_at,
        created_by=actor,
        comment=f"{reason} (flk incident #{incident.id})",
    )
    text = f"{config.alert_name} silenced for {tenant} for {duration(duration_s)} (until {ends_at:%H:%M} UTC): {reason}"
    event = SilenceChanged(
        kind=SILENCE_CREATED, silence_id=silence_id, tenant=tenant, reason=reason, ends_at=ends_at.isoformat()
    )
    await append(store, incident.id, actor, event)
    return CreatedSilence(silence_id, tenant, ends_at, text)


def open_silences(entries: Sequence[Entry]) -> list[str]:
    """Ids of the silences created on this timeline and not expired since, oldest first."""
    silences = [e.event for e in entries if isinstance(e.event, SilenceChanged)]
    done = {s.silence_id for s in silences if s.kind == SILENCE_EXPIRED}
    created = [s.silence_id for s in silences if s.kind == SILENCE_CREATED]
    return [s for s in dict.fromkeys(created) if s not in done]


async def expire_silences(store: Store, alertmanager: Alertmanager, incident_id: int, actor: str) -> ExpiredSilences:
    """Expire every silence the incident created; never raises for Alertmanager trouble."""
    outcome = ExpiredSilences()
    for silence_id in open_silences(await read_timeline(store, incident_id)):
        try:
            known = await alertmanager.expire_silence(silence_id)
        except BackendError as exc:
            outcome.failed[silence_id] = exc.reason
            continue
        (outcome.expired if known else outcome.unknown).append(silence_id)
        await append(
            store, incident_id, actor, SilenceChanged(kind=SILENCE_EXPIRED, silence_id=silence_id, gone=not known)
        )
    return outcome
