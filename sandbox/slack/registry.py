"""Web API method name -> handler. Handlers raise SlackError or return the ok body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.slack.args import Args
from sandbox.slack.workspace import Workspace

Handler = Callable[[Workspace, Args], dict[str, Any]]
METHODS: dict[str, Handler] = {}
# Methods that take the app-level (xapp-) token instead of the bot token.
APP_TOKEN_METHODS = {"apps.connections.open"}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = handler
        return handler

    return register
