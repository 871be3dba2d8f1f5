"""Who may change things from a terminal: the operator (``FLK_OPERATOR``) named in the runbook
config's ``mitigations.terminal_operators``. An operator that is a Slack user id must also be in
an authorised Slack group when Slack answers; when Slack does not (the day it is down), the list
alone decides."""

from __future__ import annotations

import re
from typing import Protocol

from commands.flows.actors import Actor, AuthorityUnavailable

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


class SlackGroups(Protocol):
    async def allowed(self, user: str, *, fresh: bool = False) -> bool: ...


class TerminalAuthority:
    def __init__(self, operators: tuple[str, ...], slack: SlackGroups | None = None) -> None:
        self.operators = frozenset(operators)
        self.slack = slack

    async def may_change(self, actor: Actor, *, fresh: bool = False) -> bool:
        if actor.via != "terminal" or actor.id not in self.operators:
            return False
        if self.slack is None or not _SLACK_USER.match(actor.id):
            return True
        try:
            return await self.slack.allowed(actor.id, fresh=fresh)
        except AuthorityUnavailable:
            return True
