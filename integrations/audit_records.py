"""One audit record: its fields, its canonical bytes, and its hash.

A record is ``{seq, at, actor, action, incident_id, tenant, details, prev_hash, hash}``. Without
a key ``hash`` is the SHA-256 of the record's canonical JSON without ``hash``; with a key it is
the HMAC-SHA256 of the same bytes (which hold ``prev_hash``, so the MAC covers the link to the
record before), and the record carries ``"mac": "hmac-sha256"``. The marker lets a verifier
without the key tell a keyed record from an altered one, and lets one with the key notice a
record rewritten unkeyed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

GENESIS = "0" * 64
FIELDS = frozenset({"seq", "at", "actor", "action", "incident_id", "tenant", "details", "prev_hash", "hash"})
MAC_FIELD, HMAC_SHA256 = "mac", "hmac-sha256"
# The bot's own record of a torn tail it dropped; callers may not write this action.
RECOVERED, SYSTEM_ACTOR = "audit.recovered", "flk"
MIN_KEY_BYTES = 16


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: Mapping[str, Any], key: bytes | None = None) -> str:
    body = canonical({k: v for k, v in record.items() if k != "hash"})
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.digest(key, body, "sha256").hex()


def is_keyed(record: Mapping[str, Any]) -> bool:
    return record.get(MAC_FIELD) == HMAC_SHA256


def shape_problem(record: Any) -> str | None:
    """Why ``record`` (parsed JSON) is not an audit record, or None when it is one."""
    if not isinstance(record, dict):
        return "does not have the audit record fields"
    keys = set(record)
    if keys != FIELDS and not (keys == FIELDS | {MAC_FIELD} and is_keyed(record)):
        return "does not have the audit record fields"
    seq, digest, prev = record["seq"], record["hash"], record["prev_hash"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(digest, str) or not isinstance(prev, str):
        return "does not have the audit record fields"
    return None


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The record on one line (with or without its line end), or None when it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if shape_problem(record) is None else None


def audit_key(text: str | None) -> bytes | None:
    """The key for a setting's value (``FLK_AUDIT_KEY``): its UTF-8 bytes, surrounding blanks
    dropped (a Secret file's trailing newline); None when unset or blank."""
    if text is None or not text.strip():
        return None
    return check_key(text.strip().encode("utf-8"))


def check_key(key: bytes | None) -> bytes | None:
    """``key`` itself, refused (never echoed) when too short to be a secret."""
    if key is not None and len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the audit key is shorter than {MIN_KEY_BYTES} bytes")
    return key
