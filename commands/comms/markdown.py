"""Markdown for the documents (the RCA and its tenant summary): values escaped so that a
Markdown viewer shows them as typed, and the timeline's words (``commands.timeline.describe``)
written in Markdown.

Only what a viewer would act on is disarmed (an HTML tag or autolink, an entity, ``](``), so a
``>`` in "7.3% > SLO 2%" stays as typed. Values are data from the typed timeline: nothing is
un-escaped from Slack's markup (a pinned note was turned into plain text when it was recorded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup

from commands.timeline import Code, Entry, Person, Span, describe
from commands.timeline.events import Event

# A URL any edge may link to: http(s), no space, nothing Slack's ``<url|label>`` ends early with.
# An ``&`` is part of many (a Grafana dashboard's variables); each edge escapes it its own way.
SAFE_URL = re.compile(r"^https?://[^\s|<>]+$")
_TAG_OR_AUTOLINK = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def safe_url(url: Any) -> bool:
    return isinstance(url, str) and SAFE_URL.match(url) is not None


def markdown_escape(text: str) -> str:
    """Text for a Markdown document: HTML, entities and inline links disarmed, all else as typed."""
    if "<" not in text and "&" not in text and "](" not in text:
        return text  # most values: names, times, numbers
    text = _ENTITY.sub("&amp;", text)
    return _TAG_OR_AUTOLINK.sub("&lt;", text).replace("](", "]\\(")


def markdown_code(value: Any) -> Markup:
    """A code span: literal in Markdown (no HTML, entity or link inside one is acted on), fenced by
    more backticks than the longest run in the value, so the value cannot end it early."""
    text = str(value).replace("\n", " ")
    if "`" not in text:
        return Markup(f"`{text}`")
    fence = "`" * (max(len(run) for run in re.findall(r"`+", text)) + 1)
    return Markup(f"{fence} {text} {fence}")


def markdown_link(url: Any, label: Any) -> Markup:
    """``[label](url)`` for a safe URL (its parentheses percent-encoded: they would end it), else the label."""
    text = markdown_escape(str(label))
    if not safe_url(url):
        return Markup(text)
    return Markup(f"[{text}]({url.replace('(', '%28').replace(')', '%29')})")


def cell(value: Any) -> str:
    """A Markdown table cell: one line, no column separator."""
    return " ".join(str(value).split()).replace("|", "\\|")


def spans_markdown(spans: Iterable[Span], people: Mapping[str, str] | None = None) -> Markup:
    """The timeline's words in Markdown: a person by name (else their id), code as code."""
    names = people or {}
    out = []
    for s in spans:
        if isinstance(s, Person):
            out.append(markdown_escape(names.get(s.id, s.id)))
        elif isinstance(s, Code):
            out.append(markdown_code(s.text))
        else:
            out.append(markdown_escape(s))
    return Markup("".join(out))


def event_markdown(item: Entry | Event, people: Mapping[str, str] | None = None) -> Markup:
    """What an event (or a timeline entry's) says, one line of Markdown."""
    event = item.event if isinstance(item, Entry) else item
    return Markup(" ".join(spans_markdown(describe(event), people).split("\n")))
