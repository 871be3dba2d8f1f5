"""Deterministic draws: every random-looking value in the sandbox comes from a hash of the
world's seed and the thing it belongs to, so any slice of history can be regenerated on its
own (a later "now", a single pod) and always comes out the same.
"""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import time

_SCALE = float(1 << 53)


def digest(*parts: object, size: int = 32) -> bytes:
    """``size`` stable bytes for ``parts`` (unlike ``hash()``, the same in every process)."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=size).digest()


def uniforms(data: bytes) -> list[float]:
    """One uniform in [0, 1) per 8 bytes of ``data``."""
    return [(v >> 11) / _SCALE for v in struct.unpack(f"<{len(data) // 8}Q", data)]


def seeded(*parts: object) -> random.Random:
    """A private generator for one stream of draws (a pod's minute of log lines)."""
    return random.Random(int.from_bytes(digest(*parts)[:16], "little"))


def stable_id(*parts: object, length: int) -> str:
    return digest(*parts).hex()[:length]


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def rfc3339_ms(t: float) -> str:
    """``2026-11-26T16:05:03.123Z``: UTC with milliseconds, as the backend writes times."""
    seconds, ms = divmod(round(t * 1000), 1000)
    return f"{_second(seconds)}.{ms:03d}Z"
