"""`/flk status [tenant]` and `/flk incidents`: what is open, how old, where it stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from commands.registry import UsageError, Verb, no_args, optional_tenant, register
from commands.timeline import Entry, last_entries, read_timeline
from integrations.store import Alert, Incident, Store

register(
    Verb(
        "status",
        "status [tenant]",
        "an incident's state, alerts and latest events; no tenant: all open",
        optional_tenant,
    )
)
register(Verb("incidents", "incidents", "open incidents with age, state, tenant and last event", no_args))


@dataclass(frozen=True)
class IncidentLine:
    incident: Incident
    age_s: float
    last: Entry | None

    @property
    def who(self) -> str:
        i = self.incident
        return i.tenant or f"isolation breach ({len(i.tenants)} tenants)"


@dataclass(frozen=True)
class IncidentStatus:
    incident: Incident
    alerts: list[Alert]
    recent: list[Entry]


async def open_incidents(store: Store) -> list[IncidentLine]:
    incidents = await store.open_incidents()
    last = await last_entries(store, [i.id for i in incidents])
    now = datetime.now(UTC)
    return [IncidentLine(i, (now - i.opened_at).total_seconds(), last.get(i.id)) for i in incidents]


async def status_of(store: Store, tenant: str, recent: int = 8) -> IncidentStatus:
    incident = await store.find_open(tenant)
    if incident is None:
        raise UsageError(f"no open incident for `{tenant}`")
    events = await read_timeline(store, incident.id)
    return IncidentStatus(incident, await store.alerts(incident.id), events[-recent:])


def age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d"
