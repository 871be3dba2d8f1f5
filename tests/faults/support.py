"""What a fault-table row reads afterwards: the plan's thread, the cluster, the audit log."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.kube import KubeFake
from sandbox.slack.models import Message

PLAN_ID = re.compile(r"Plan `([^`]+)`")


def audit_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every record of these audit logs (each file in its own order, files one after another)."""
    records: list[dict[str, Any]] = []
    for path in paths:
        if Path(path).exists():
            records += [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return records


def of_plan(records: list[dict[str, Any]], plan_id: str, action: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["action"] == action
        and plan_id in (r["details"].get("plan_id"), (r["details"].get("plan") or {}).get("id"))
    ]


def patched(kube: KubeFake, name: str) -> int:
    """PATCHes of this configmap the API server carried out (answered 200)."""
    return sum(
        1 for r in kube.requests if r.method == "PATCH" and r.path.endswith(f"/configmaps/{name}") and r.status == 200
    )


@dataclass(frozen=True)
class Outcome:
    """What a row found: the plan's messages, the applied records, the successful patches."""

    applied_messages: int
    plan_message: Message
    applied_records: list[dict[str, Any]]
    confirmed_records: list[dict[str, Any]]
    patches: int
    value: str | None


def applied_count(thread: list[Message], plan_id: str, action: str) -> int:
    # The outcome names the plan's action, and its Undo button the plan; the plan's own message
    # says "Plan `id`".
    return sum(
        1
        for m in thread
        if f"Applied `{action}`" in m.all_text()
        and f"'value': '{plan_id}'" in str(m.blocks)
        and f"Plan `{plan_id}`" not in m.all_text()
    )


async def until(check: Callable[[], object], wait_s: float = 10, what: str = "") -> None:
    """Poll ``check()`` (for state outside Slack, whose ``wait_for`` only wakes on Slack's changes)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {wait_s:g} s: {what or check}")
        await asyncio.sleep(0.02)


async def settle(wait_s: float = 0.6) -> None:
    """Long enough for a second (wrong) apply or post to show up if one were coming."""
    await asyncio.sleep(wait_s)
