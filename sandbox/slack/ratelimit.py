"""Token buckets keyed by method (and by channel for chat.postMessage)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from sandbox.slack.config import RateLimit


@dataclass
class Bucket:
    limit: RateLimit
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> float:
        """Take one token; 0.0 when granted, else seconds until one is available."""
        rate = self.limit.per_minute / 60.0
        self.tokens = min(float(self.limit.burst), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


class RateLimiter:
    """Buckets created on first use; changing a limit starts that key afresh (full bucket)."""

    def __init__(self, limits: dict[str, RateLimit], enabled: bool = True) -> None:
        self.limits = dict(limits)
        self.enabled = enabled
        self._buckets: dict[str, Bucket] = {}

    def set(self, key: str, limit: RateLimit | None) -> None:
        if limit is None:
            self.limits.pop(key, None)
        else:
            self.limits[key] = limit
        self._buckets.pop(key, None)

    def reset(self) -> None:
        self._buckets.clear()

    def check(self, key: str, limit: RateLimit | None = None) -> int:
        """0 when the call may go ahead, else the Retry-After value in whole seconds (>= 1)."""
        limit = limit or self.limits.get(key)
        if not self.enabled or limit is None:
            return 0
        bucket = self._buckets.get(key)
        if bucket is None or bucket.limit != limit:
            bucket = self._buckets[key] = Bucket(limit, float(limit.burst))
        wait = bucket.take(time.monotonic())
        return 0 if wait == 0.0 else max(1, math.ceil(wait))
