"""Slack mrkdwn, in one place: escaping (Slack's list: & < >), mentions, links, code, the
message templates' format (``SLACK``), and Slack text read back as plain text.

User, alert and backend text must never become a mention or a link: it is escaped, and only
the functions here write markup, each for a value it checks.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from commands.comms.markdown import safe_url
from commands.comms.templates import MessageFormat

USER_ID = re.compile(r"^[UW][A-Z0-9_]{2,20}$")
_USER = re.compile(r"<@([UW][A-Z0-9_]{2,20})(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|@?([^>]*))?>")
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)\|([^>]*)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)>")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_user(actor: str) -> bool:
    """A Slack user id (not ``bot``, ``alertmanager`` or another system)."""
    return USER_ID.match(actor) is not None


def mention(user: str) -> str:
    """``<@U123>`` for a Slack user id; any other actor (``bot``, ``alertmanager``) as text."""
    return f"<@{user}>" if is_user(user) else escape(user)


def link(url: str | None, label: str) -> str:
    """A link for a plain http(s) URL (its ``&`` escaped, as Slack writes it); else the label."""
    if url is None or not safe_url(url):
        return escape(label)
    return f"<{url.replace('&', '&amp;')}|{escape(label)}>"


def code(text: str) -> str:
    """Inline code that a backtick in the value cannot close early."""
    shown = escape(text).replace("\n", " ")
    return f"`{shown}`" if "`" not in shown else f"`` {shown} ``"


def plain_text(slack_text: str) -> str:
    """A Slack message's text as a person reads it: ``@U1``, ``@channel``, ``#name``, a link as
    ``label (url)``, the escapes undone. For text that leaves Slack (a pinned note)."""
    text = _USER.sub(r"@\1", slack_text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _SUBTEAM.sub(lambda m: "@" + (m.group(1) or "group"), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(1) or "channel"), text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _BARE_LINK.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _once(value: Any) -> Markup:
    return value if isinstance(value, Markup) else Markup(escape(str(value)))


# The message templates (notices, the RESOLVED update) as Slack shows them.
SLACK = MessageFormat(
    escape,
    {
        "link": lambda url, label: Markup(link(url if isinstance(url, str) else None, str(label))),
        "mention": lambda user: Markup(mention(str(user))),
        "code": lambda value: Markup(code(str(value))),
        "e": _once,
        "escape": _once,
    },
)
