"""What the emulator and the bot left behind in an alert benchmark: the posts in the incident
channel (read incrementally from the emulator's call log), a replay of the bot's own channel
bucket, the bot's outbox (from its SQLite file) and its warnings."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.slack.models import Call

_PARENT = re.compile(r"^\S+ (.+?): ")  # fallback text "P2 <tenant>: <state>" (bot/slack/render_incident.py)
_PROGRESS = re.compile(r"^\w+ of (\S+): ")  # "triage of <tenant>: 3/13 probes done" (bot/slack/progress.py)
_SUMMARY = re.compile(r"^(?:isolation )?triage (.+?): ")  # report_fallback: "<step> <tenant>: <headline>"


@dataclass(frozen=True)
class Post:
    at: float
    status: int
    thread_ts: str | None
    text: str

    @property
    def kind(self) -> str:
        if self.thread_ts is None:
            return "parent"
        if _PROGRESS.match(self.text):
            return "progress"
        return "summary" if _SUMMARY.match(self.text) else "other"

    @property
    def tenant(self) -> str | None:
        pattern = {"parent": _PARENT, "progress": _PROGRESS, "summary": _SUMMARY}.get(self.kind)
        found = pattern.match(self.text) if pattern else None
        return found.group(1) if found else None


@dataclass
class Transcript:
    """``chat.postMessage`` calls into one channel (and file uploads), read incrementally from the
    emulator's call log so that waiting costs nothing per call already seen."""

    log: list[Call]
    channel: str
    posts: list[Post] = field(default_factory=list)
    uploads: list[float] = field(default_factory=list)
    _seen: int = 0

    def poll(self) -> None:
        new = self.log[self._seen :]
        self._seen += len(new)
        for call in new:
            if call.method == "chat.postMessage" and call.args.get("channel") == self.channel:
                self.posts.append(Post(call.at, call.status, call.args.get("thread_ts"), str(call.args.get("text"))))
            elif call.method == "files.getUploadURLExternal" and call.ok:
                self.uploads.append(call.at)

    def ok(self, kind: str | None = None) -> list[Post]:
        return [p for p in self.posts if p.status == 200 and kind in (None, p.kind)]

    def first(self, kind: str) -> dict[str, Post]:
        """The first post of ``kind`` per tenant."""
        found: dict[str, Post] = {}
        for post in self.ok(kind):
            if post.tenant is not None:
                found.setdefault(post.tenant, post)
        return found

    async def wait(self, done: Callable[[], bool], timeout_s: float, quiet_s: float = 0.0) -> bool:
        """Poll until ``done()``, then until no post came for ``quiet_s``; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            if done():
                break
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        while time.monotonic() < deadline:
            self.poll()
            if not self.posts or time.time() - self.posts[-1].at >= quiet_s:
                break
            await asyncio.sleep(0.5)
        return True


def bucket_levels(takes: Iterable[float], rate: float, burst: int) -> list[float]:
    """Tokens left in a full-at-start bucket just before each take (times sorted)."""
    tokens, last, levels = float(burst), None, []
    for at in sorted(takes):
        tokens = tokens if last is None else min(float(burst), tokens + (at - last) * rate)
        levels.append(tokens)
        tokens, last = tokens - 1, at
    return levels


def outbox_stats(db: Path) -> dict[str, Any]:
    """Per op: items, attempts (claims) and what was left undone, from the bot's SQLite file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT op, attempts, done_at, failed_at, last_error FROM jobs").fetchall()
    stats: dict[str, Any] = {}
    for op, attempts, done_at, failed_at, last_error in rows:
        s = stats.setdefault(
            op,
            {"items": 0, "claims": 0, "max_claims": 0, "retried": 0, "given_up": 0, "undone": 0, "errors": Counter()},
        )
        s["items"] += 1
        s["claims"] += attempts
        s["max_claims"] = max(s["max_claims"], attempts)
        s["retried"] += attempts > 1
        s["given_up"] += failed_at is not None
        s["undone"] += done_at is None and failed_at is None
        if last_error:
            s["errors"][last_error[:80]] += 1
    for s in stats.values():
        s["errors"] = dict(s["errors"].most_common(5))
    return stats


def log_counts(text: str) -> dict[str, int]:
    """Warnings the bot logged: outbox failures by reason, and anything else by logger."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if found := re.search(r"job (\w+) \d+ failed: (.{0,60})", line):
            counts[f"outbox {found.group(1)} failed: {found.group(2)}"] += 1
        elif found := re.search(r" (WARNING|ERROR) (\S+ .{0,60})", line):
            counts[f"{found.group(1)} {found.group(2)}"] += 1
    return dict(counts.most_common(20))


def bot_log(bot: Any) -> str:
    bot.log.flush()
    bot.log.seek(0)
    return bot.log.read().decode(errors="replace")
