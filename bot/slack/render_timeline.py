"""Timeline entries as Slack shows them: a line each, from the event's words
(``commands.timeline.describe``), people as mentions, commands and ids as code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bot.slack.limits import clip
from bot.slack.mrkdwn import code, escape, mention
from commands.timeline import Code, Entry, Person, Span, describe, tone
from commands.timeline.events import Event

ICONS = {
    "incident.opened": ":rotating_light:",
    "alert.firing": ":red_circle:",
    "alert.resolved": ":large_green_circle:",
    "verdict.triage": ":mag:",
    "verdict.diagnose": ":microscope:",
    "verdict.isolation": ":mag:",
    "command": ":keyboard:",
    "refused": ":no_entry:",
    "mitigation.planned": ":memo:",
    "mitigation.applied": ":hammer_and_wrench:",
    "mitigation.undone": ":leftwards_arrow_with_hook:",
    "mitigation.stopped": ":warning:",
    "check.passed": ":white_check_mark:",
    "check.failed": ":x:",
    "notice.sent": ":incoming_envelope:",
    "notice.failed": ":x:",
    "silence.created": ":mute:",
    "silence.expired": ":bell:",
    "note": ":pushpin:",
    "incident.state": ":arrow_right:",
}


def clock(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%H:%M UTC") if moment else "?"


def icon(event: Event) -> str:
    return ICONS.get(tone(event), ":small_blue_diamond:")


def _clipped(spans: Iterable[Span], limit: int) -> list[Span]:
    """The spans up to ``limit`` visible characters, the last one cut with an ellipsis."""
    kept: list[Span] = []
    left = limit
    for s in spans:
        shown = s if isinstance(s, str) else s.id if isinstance(s, Person) else s.text
        if len(shown) > left:
            cut = clip(shown, max(left, 1))
            kept.append(Code(cut) if isinstance(s, Code) else cut)
            break
        kept.append(s)
        left -= len(shown)
    return kept


def mrkdwn(spans: Iterable[Span], limit: int | None = None) -> str:
    """Spans as mrkdwn: text escaped, a person mentioned, code as code."""
    parts = []
    for s in _clipped(spans, limit) if limit is not None else spans:
        if isinstance(s, Person):
            parts.append(mention(s.id))
        elif isinstance(s, Code):
            parts.append(code(s.text))
        else:
            parts.append(escape(s))
    return "".join(parts).replace("\n", " ")


def line(item: Entry, limit: int = 120) -> str:
    """``10:04 UTC :mag: <@U1>: diagnose: …`` (the words cut at ``limit`` characters)."""
    return f"{clock(item.at)} {icon(item.event)} {mention(item.actor)}: {mrkdwn(describe(item.event), limit)}"
