"""Which incident a communication verb is about, resolving it, and the RCA reminder.

Slack gives a slash command no thread, so `/flk notify|resolve|rca` find their incident by the
tenant they name, and the buttons on an incident's parent message by the incident itself;
anything else is told where to run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.comms.facts import load_facts
from commands.comms.rca import rca_posted
from commands.comms.templates import utc
from commands.registry import UsageError
from integrations.store import Incident, NotFound, Store


def where_to_run(verb: str) -> str:
    return (
        f"`/flk {verb}` works on an incident: use the {verb.capitalize()} button on the incident's "
        f"message in the incident channel, or name the tenant: `/flk {verb} <tenant>`"
    )


async def incident_for(
    store: Store, verb: str, *, incident_id: int | None = None, tenant: str | None = None, resolved_too: bool = False
) -> Incident:
    """The incident a verb acts on; UsageError (saying where to run it) when there is none."""
    if incident_id is not None:
        try:
            return await store.get(incident_id)
        except NotFound:
            raise UsageError(f"incident #{incident_id} does not exist (any more)") from None
    if tenant is None:
        raise UsageError(where_to_run(verb))
    incident = await (store.latest_for_tenant(tenant) if resolved_too else store.find_open(tenant))
    if incident is None:
        state = "" if resolved_too else "open "
        raise UsageError(f"`{tenant}` has no {state}incident. {where_to_run(verb)}")
    return incident


def already_resolved(incident: Incident) -> str | None:
    """Why a resolve must change nothing, or None."""
    if incident.state != "resolved":
        return None
    return f"Incident #{incident.id} was already resolved at {utc(incident.resolved_at)} UTC; nothing changed."


@dataclass(frozen=True)
class OverdueRca:
    """An RCA that is due and was not posted: the reminder's facts (the Slack layer words it)."""

    incident_id: int
    tenant: str | None  # None: an isolation incident
    resolved_for: timedelta | None  # since the resolve (None: not resolved)


async def overdue_rca(store: Store, incident_id: int, *, now: datetime) -> OverdueRca | None:
    """What the reminder says once the RCA is due, or None when an RCA has been posted."""
    facts = await load_facts(store, incident_id, now=now)
    if rca_posted(facts):
        return None
    resolved = facts.resolved_at
    return OverdueRca(facts.incident.id, facts.incident.tenant, now - resolved if resolved else None)
