"""The bot's logs: one JSON object per line (FLK_LOG_FORMAT=json, the default, for log collectors)
or plain text (FLK_LOG_FORMAT=text, for a person at a terminal), on stderr.

Every line carries the incident, tenant and Slack user it is about, from context variables
that the bot binds where it handles a command, a button, an outbox item, an alert or a check
(each runs in its own asyncio task, so the values never leak from one piece of work to another).

No secret reaches a line: every configured secret value (each SecretStr setting, the database
URL's password) and anything shaped like a Slack token is replaced in the message, its
arguments, the exception and the stack before any formatter sees the record."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

FIELDS = ("incident_id", "tenant_id", "user")
_context: dict[str, ContextVar[Any]] = {name: ContextVar(f"flk_log_{name}", default=None) for name in FIELDS}

REDACTED = "[redacted]"
# Slack tokens (bot xoxb-, user xoxp-, app-level xapp-, refresh/config xoxe-...) and bearer credentials,
# whatever configured them: a token pasted into a command or echoed in an error must not be logged.
_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+|(?<=[Bb]earer )[^\s\"',;]+")


class _Keep:
    """The default of bind(): leave the field as it is (None clears it)."""


KEEP = _Keep()


def bind(
    *, incident_id: int | _Keep | None = KEEP, tenant_id: str | _Keep | None = KEEP, user: str | _Keep | None = KEEP
) -> None:
    """Name what the current task works on. A loop that handles one thing after another in one
    task (the check sweep) passes every field, so nothing of the previous one stays."""
    for name, value in (("incident_id", incident_id), ("tenant_id", tenant_id), ("user", user)):
        if not isinstance(value, _Keep):
            _context[name].set(value if value != "" else None)


def current() -> dict[str, Any]:
    return {name: var.get() for name, var in _context.items()}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN.sub(REDACTED, text)


class ContextFilter(logging.Filter):
    """Adds the bound fields and redacts the record; on the handler, so it sees every logger's records."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        # Merge the arguments first: a secret may be split between the format and an argument.
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take the caller down (logging would not)
            message = f"{record.msg!s} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        # The formatted text above replaces the exception object, whose repr could hold a secret.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            line[name] = getattr(record, name, None)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        # Context values come from Slack payloads; redact them too rather than trust them.
        return json.dumps(
            {k: self.redact(v) if isinstance(v, str) else v for k, v in line.items()}, ensure_ascii=False, default=str
        )


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        named = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None) not in (None, ""))
        return f"{text} [{named}]" if named else text


def configure(fmt: str = "json", secrets: Iterable[str] = (), *, stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one that redacts and formats; our loggers at INFO."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(redact))
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for ours in ("bot", "commands", "integrations"):
        logging.getLogger(ours).setLevel(logging.INFO)
    # Bolt warns that the token in the environment is unused because the bot passes its own client.
    logging.getLogger("slack_bolt.AsyncApp").setLevel(logging.ERROR)
    return handler
