"""Who may change a cluster: members of the configured Slack user groups, looked up with
`usergroups.users.list`. Read-only answers may come from a short cache; a change asks Slack
(``fresh``). Errors fail closed: a cached answer is never re-stamped on an error, expires after
``max_age_s`` whatever happens, and an answer that cannot be had at all is
``AuthorityUnavailable`` (the person is told, nothing changes)."""

from __future__ import annotations

import logging
import time

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.flows.actors import Actor, AuthorityUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE = "Could not check your group membership with Slack, so nothing was changed; try again in a minute."


class Authoriser:
    """``commands.flows.actors.Authority`` for Slack users; terminal operators are refused here
    (the terminal has its own authority)."""

    def __init__(
        self, client: AsyncWebClient, groups: tuple[str, ...], ttl_s: float = 60, max_age_s: float = 300
    ) -> None:
        self.client = client
        self.groups = groups
        self.ttl_s = ttl_s
        self.max_age_s = max_age_s
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def _group(self, group: str, fresh: bool) -> frozenset[str]:
        cached = self._members.get(group)
        age = time.monotonic() - cached[0] if cached else None
        if cached and age is not None and not fresh and age < self.ttl_s:
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            if exc.response.get("error") in ("no_such_subteam", "invalid_usergroup", "subteam_not_found"):
                # A group that does not exist authorises nobody.
                self._members[group] = (time.monotonic(), frozenset())
                return frozenset()
            return self._stale(group, cached, age, fresh, exc)
        except (TimeoutError, ClientError) as exc:
            return self._stale(group, cached, age, fresh, exc)
        members = frozenset(response.get("users", []))
        self._members[group] = (time.monotonic(), members)
        return members

    def _stale(
        self, group: str, cached: tuple[float, frozenset[str]] | None, age: float | None, fresh: bool, exc: Exception
    ) -> frozenset[str]:
        """Slack did not answer: a read may use a cached answer younger than ``max_age_s``; a
        change (``fresh``) may not, nor may anything once the cache is that old."""
        log.warning("usergroups.users.list failed for %s: %s", group, type(exc).__name__)
        if cached and age is not None and not fresh and age < self.max_age_s:
            return cached[1]
        raise AuthorityUnavailable(UNAVAILABLE)

    async def allowed(self, user: str, *, fresh: bool = False) -> bool:
        for group in self.groups:
            if user in await self._group(group, fresh):
                return True
        return False

    async def may_change(self, actor: Actor, *, fresh: bool = False) -> bool:
        if actor.via != "slack":
            return False
        return await self.allowed(actor.id, fresh=fresh)
