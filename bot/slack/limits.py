"""Slack's Block Kit limits, enforced before anything is sent."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 2000
MAX_FALLBACK_TEXT = 3000


def clip(text: str, limit: int, note: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(note)] + note


def fit(blocks: list[Block], overflow_note: str = "more in the attached file") -> tuple[list[Block], bool]:
    """At most MAX_BLOCKS blocks; when some are cut, the last one says so. Returns (blocks, cut)."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks, False
    kept = blocks[: MAX_BLOCKS - 1]
    dropped = len(blocks) - len(kept)
    note = ContextBlock(elements=[MarkdownTextObject(text=f"_{dropped} more block(s) not shown: {overflow_note}_")])
    return [*kept, note], True
