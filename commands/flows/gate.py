"""The one place a flow asks whether a person may do what they ask, at that moment: a no (or a
membership that cannot be checked) is audited, on the incident's timeline, and raised."""

from __future__ import annotations

from typing import Any

from commands.flows.actors import Actor, Authority, AuthorityUnavailable, Refused
from commands.flows.record import Recorder


class Gate:
    def __init__(self, authority: Authority, recorder: Recorder) -> None:
        self.authority = authority
        self.record = recorder

    async def check(
        self,
        actor: Actor,
        action: str,
        what: str,
        tenant: str | None,
        incident_id: int | None,
        *,
        fresh: bool = True,
        **details: Any,
    ) -> None:
        """Return when ``actor`` may ``what``; else raise ``Refused`` or ``AuthorityUnavailable``.

        ``fresh``: ask the source of truth, not a cache: every change of the cluster and every
        word outside the incident thread does."""
        try:
            allowed = await self.authority.may_change(actor, fresh=fresh)
        except AuthorityUnavailable as exc:
            await self.record.refused(actor, action, "membership could not be checked", tenant, incident_id, **details)
            raise AuthorityUnavailable(str(exc)) from None
        if allowed:
            return
        await self.record.refused(actor, action, "not in an authorised group", tenant, incident_id, **details)
        raise Refused(f"Only members of the authorised groups may {what}.")
