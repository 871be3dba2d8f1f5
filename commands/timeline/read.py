"""An incident's timeline read as typed entries, and typed events written to it.

A stored row whose fields do not fit its kind (written by hand, or by a version that had other
fields) is read as ``LegacyEvent``: it still shows who did what when, never fails the read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from commands.timeline.events import Event, LegacyEvent, event_data, event_from
from integrations.store import Store, TimelineEvent


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    event: Event

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def label(self) -> str:
        """The kind to show: a legacy row's own."""
        return self.event.legacy_kind if isinstance(self.event, LegacyEvent) else self.event.kind


def entry(row: TimelineEvent) -> Entry:
    try:
        event: Event = event_from(row.kind, row.data)
    except ValidationError:
        event = LegacyEvent(legacy_kind=row.kind, text=row.text or "")
    return Entry(row.at, row.actor, event)


async def read_timeline(store: Store, incident_id: int, *, limit: int | None = None) -> list[Entry]:
    """The incident's events in the order they happened."""
    return [entry(row) for row in await store.timeline(incident_id, limit=limit)]


async def last_entries(store: Store, incident_ids: Sequence[int]) -> dict[int, Entry]:
    """The latest event of each incident."""
    return {i: entry(row) for i, row in (await store.last_events(incident_ids)).items()}


async def append(store: Store, incident_id: int, actor: str, event: Event, *, at: datetime | None = None) -> Entry:
    """Record ``event`` on the incident's timeline (``NotFound`` when there is no such incident)."""
    return entry(await store.append_event(incident_id, actor, event.kind, event_data(event), at=at))
