"""Keep secret values out of the database: redact credential-like keys and token shapes."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

# Keys whose values are credentials. Names of secrets ("secret": "tenant-x-signing") are kept.
_SECRET_KEY = re.compile(
    r"(^|[_\-.])(token|password|passwd|authorization|api[_\-]?key|private[_\-]?key|client[_\-]?secret"
    r"|signing[_\-]?secret|credentials?)$",
    re.IGNORECASE,
)
# Slack tokens, bearer headers and PEM private keys, wherever they appear in text.
_SECRET_TEXT = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
)


def scrub_text(value: str) -> str:
    return _SECRET_TEXT.sub(REDACTED, value)


def scrub(value: Any) -> Any:
    """A copy of a JSON-like value with secret-looking entries replaced by ``[redacted]``."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "") else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
