"""Slack's way of failing: ``{"ok": false, "error": code}``, nearly always with HTTP 200."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """Raised by a method handler; the dispatcher turns it into Slack's error response.

    ``messages`` become ``response_metadata.messages`` (Slack's "[ERROR] ..." details).
    """

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        messages: list[str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.messages = messages or []
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.code, **self.extra}
        if self.messages:
            body["errors"] = list(self.messages)
            body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in self.messages]}
        return body


def invalid_arguments(*messages: str) -> SlackError:
    return SlackError("invalid_arguments", messages=list(messages))


def missing(name: str) -> SlackError:
    return invalid_arguments(f"missing required field: {name}")
