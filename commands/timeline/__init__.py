"""The incident timeline: typed events (``events``), read and written as entries (``read``), told
in words (``describe``) that the edges render in their own markup."""

from commands.timeline.describe import Code, Person, Span, describe, plain, tone
from commands.timeline.read import Entry, append, entry, last_entries, read_timeline

__all__ = [
    "Code",
    "Entry",
    "Person",
    "Span",
    "append",
    "describe",
    "entry",
    "last_entries",
    "plain",
    "read_timeline",
    "tone",
]
