"""How a report's memory of past incidents looks in Slack: one line per earlier incident (when,
the cause found, each mitigation and whether its checks passed) and what fixed the same cause."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, MarkdownTextObject, SectionBlock

from bot.slack.limits import MAX_SECTION_TEXT, clip
from bot.slack.mrkdwn import escape
from commands.history_text import cause_text, changes_text, incident_line
from commands.models import History, PastMitigation

_CHECKS = {True: ":white_check_mark: checks passed", False: ":x: checks failed", None: "no checks ran"}


def _mitigation(m: PastMitigation) -> str:
    undone = ", undone" if m.undone else ""
    return f"`{escape(m.action)}` {escape(changes_text(m))} ({_CHECKS[m.checks_passed]}{undone})"


def history_blocks(history: History) -> list[Block]:
    title = f"*Past incidents ({history.days} days)*"
    if history.error:
        return [
            DividerBlock(),
            ContextBlock(elements=[MarkdownTextObject(text=f"{title} · :x: {escape(history.error)}")]),
        ]
    if not history.incidents:
        return [DividerBlock(), ContextBlock(elements=[MarkdownTextObject(text=f"{title} · none")])]
    lines = []
    if history.recurrence is not None:
        lines.append(f":repeat: {escape(cause_text(history.recurrence))}")
    for past in history.incidents:
        done = "; ".join(_mitigation(m) for m in past.mitigations) or "no mitigation applied"
        lines.append(f"• {escape(incident_line(past))} · {done}")
    text = clip("\n".join(lines), MAX_SECTION_TEXT)
    return [
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text=title)]),
        SectionBlock(text=MarkdownTextObject(text=text)),
    ]
