"""Who may change a cluster: members of the configured Slack user groups, looked up with
`usergroups.users.list` and cached briefly."""

from __future__ import annotations

import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient


class Authoriser:
    def __init__(self, client: AsyncWebClient, groups: tuple[str, ...], ttl_s: float = 60) -> None:
        self.client = client
        self.groups = groups
        self.ttl_s = ttl_s
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def _group(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            members = frozenset(response.get("users", []))
        except SlackApiError:
            # Unknown group or Slack trouble: nobody is authorised through it (fail closed).
            members = cached[1] if cached else frozenset()
        self._members[group] = (time.monotonic(), members)
        return members

    async def allowed(self, user: str) -> bool:
        for group in self.groups:
            if user in await self._group(group):
                return True
        return False
