"""Who acts, who may, and the typed ways a flow says no."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Actor:
    """A person: a Slack user id, or a terminal operator's name (``FLK_OPERATOR``)."""

    id: str
    via: Literal["slack", "terminal"] = "slack"


class Authority(Protocol):
    """May ``actor`` change the cluster or speak outside the incident thread, now?

    ``fresh``: ask the source of truth, not a cache (every cluster change does). Raises
    ``AuthorityUnavailable`` when the answer cannot be had: a flow then changes nothing."""

    async def may_change(self, actor: Actor, *, fresh: bool = False) -> bool: ...


class FlowError(Exception):
    """A flow that did nothing; the message is short, safe to show, and says why."""


class Refused(FlowError):
    """Not allowed: the person is not authorised, or a rule forbids it now. Audited."""


class AuthorityUnavailable(FlowError):
    """Group membership could not be checked: fail closed."""


class AuditUnavailable(FlowError):
    """The audit log cannot be written: nothing that must be audited happens."""


class Unknown(FlowError):
    """The plan, incident or tenant named does not exist (here)."""
