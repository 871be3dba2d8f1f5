"""Writing down what happened: the audit log (every step that changes or may change something,
refusals included) and the incident's typed timeline."""

from __future__ import annotations

from typing import Any

from commands.flows.actors import Actor, AuditUnavailable
from commands.timeline import append
from commands.timeline.events import Event, Refused, event_data
from integrations.audit import AuditLog
from integrations.audit import AuditUnavailable as LogUnavailable
from integrations.store import Incident, Store


class Recorder:
    def __init__(self, store: Store, audit: AuditLog) -> None:
        self.store = store
        self.log = audit

    async def audit(
        self,
        actor: Actor,
        kind: str,
        tenant: str | None,
        incident_id: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """One audit record; ``AuditUnavailable`` when it cannot be written (nothing may follow)."""
        try:
            await self.log.append_async(
                actor.id,
                kind,
                incident_id=str(incident_id) if incident_id is not None else None,
                tenant=tenant,
                details={"via": actor.via, **(details or {})},
            )
        except (LogUnavailable, OSError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise AuditUnavailable(f"The audit log cannot be written ({reason}): nothing was changed.") from None

    async def timeline(self, incident_id: int, actor: Actor, event: Event) -> None:
        await append(self.store, incident_id, actor.id, event)

    async def both(self, actor: Actor, incident: Incident, event: Event) -> None:
        """Audited first, then on the timeline."""
        await self.audit(actor, event.kind, incident.tenant, incident.id, event_data(event))
        await self.timeline(incident.id, actor, event)

    async def refused(
        self, actor: Actor, action: str, reason: str, tenant: str | None, incident_id: int | None, **details: Any
    ) -> None:
        event = Refused(action=action, reason=reason, plan_id=details.get("plan_id"))
        await self.audit(actor, "refused", tenant, incident_id, {"action": action, "reason": reason, **details})
        if incident_id is not None:
            await self.timeline(incident_id, actor, event)
