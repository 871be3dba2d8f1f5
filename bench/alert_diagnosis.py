"""Why the alert benchmarks come out as they do: where one webhook's time goes in the store,
and what the storm's outbox counts and posts say about lost, repeated and late work."""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.service.alerts import AlertWebhook, parse_batch
from bot.service.jobs import LEASE
from bot.slack.incidents import IncidentThreads
from integrations.store import Store

# The job claim's lease (renewed while the job runs, see bot/service/jobs.py).
OUTBOX_LEASE_S = round(LEASE.total_seconds())
_STORE_CALLS = (
    "find_open",
    "open_incidents",
    "recent_breach_starts",
    "open_or_get_incident",
    "record_alert",
    "append_event",
)


def _timed(calls: dict[str, list[float]], name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            calls[name].append(time.perf_counter() - began)

    return timed


async def profile_webhook(
    make_body: Callable[[str], dict[str, Any]], alerts: int = 300, window: int = 50
) -> dict[str, Any]:
    """``AlertWebhook.process`` for single-alert batches on a fresh SQLite file (as ``flk serve``
    has by default), correlation off, every store call timed: the webhook's answer without HTTP.
    Medians over the first and the last ``window`` alerts: each alert leaves one more open incident."""
    calls: dict[str, list[float]] = defaultdict(list)
    totals = []
    with tempfile.TemporaryDirectory(prefix="flk-bench-profile-") as tmp:
        store = await Store.connect(f"sqlite:///{Path(tmp) / 'flk.sqlite'}")
        try:
            for name in _STORE_CALLS:
                setattr(store, name, _timed(calls, name, getattr(store, name)))
            store.jobs.enqueue = _timed(calls, "outbox.enqueue", store.jobs.enqueue)  # type: ignore[method-assign]
            # Only what process() reads of the runtime: the channel, the alert name, the outbox kick.
            rt = SimpleNamespace(
                settings=SimpleNamespace(incident_channel="C_BENCH"),
                config=SimpleNamespace(alert_name="FLKTenantSLOBreach"),
                kick_jobs=lambda: None,
            )
            webhook = AlertWebhook(IncidentThreads(rt, store), "unused", threshold=100_000, window_s=300)  # type: ignore[arg-type]
            for i in range(alerts):
                batch = parse_batch(make_body(f"profile-{i}"), "FLKTenantSLOBreach")
                began = time.perf_counter()
                await webhook.process(batch)
                totals.append(time.perf_counter() - began)
        finally:
            await store.close()

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 2)

    return {
        "alerts": alerts,
        "window": window,
        "process_median_ms": {"first": ms(totals[:window]), "last": ms(totals[-window:])},
        "process_max_ms": round(max(totals) * 1000, 2),
        "store_calls": {
            name: {"per_alert": round(len(v) / alerts, 1), "first_ms": ms(v[:window]), "last_ms": ms(v[-window:])}
            for name, v in calls.items()
        },
    }


def latency_notes(latency: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    answer, after = latency["webhook_response"], latency["response_to_parent"]
    calls = profile["store_calls"]
    per_alert = sum(c["per_alert"] for c in calls.values())
    process, n, w = profile["process_median_ms"], profile["alerts"], profile["window"]
    notes = [
        f"webhook answer p50 {answer['p50_ms']} / p99 {answer['p99_ms']} ms, then parent posted after p50 "
        f"{after['p50_ms']} / p99 {after['p99_ms']} ms: the webhook's own handling is most of the time",
        f"AlertWebhook.process alone (no HTTP, fresh SQLite): median {process['first']} ms over the first {w} "
        f"alerts, {process['last']} ms over the last {w} of {n}, for {per_alert:g} store calls per single alert, "
        "each its own transaction (every write commits on its own); the isolation check (find_open, "
        "open_incidents, recent_breach_starts) runs even when no threshold can be reached",
    ]
    grows = {name: c for name, c in calls.items() if c["last_ms"] > 2 * c["first_ms"]}
    for name, c in grows.items():
        notes.append(
            f"store.{name} grows with the open incidents: {c['first_ms']} ms with under {w}, {c['last_ms']} ms "
            f"with {n - w} to {n} open"
        )
    return notes


def storm_notes(storm: dict[str, Any]) -> list[str]:
    notes = []
    failed = {
        op: sum(n for k, n in storm["bot_log"].items() if k.startswith(f"outbox {op} failed")) for op in storm["outbox"]
    }
    for op, s in storm["outbox"].items():
        again = s["claims"] - s["items"] - failed[op]
        if again > 0:
            notes.append(
                f"outbox {op}: {s['claims']} claims for {s['items']} items, {failed[op]} after a logged failure: "
                f"{again} hand-outs of an item still running (its {OUTBOX_LEASE_S} s lease, renewed while it runs, "
                f"lapsed); up to {s['max_claims']} claims of one item"
            )
        if s["undone"] or s["given_up"]:
            notes.append(f"outbox {op}: {s['undone']} item(s) not done when the run ended, {s['given_up']} given up")
    dup = storm["duplicates"]
    if dup["parent"]:
        notes.append(
            f"{dup['parent']} duplicate parents: bot/slack/incidents.py op_post_parent reads thread_ts before "
            "SlackIO.post waits in ChannelLimiter, so a second hand-out of the item posts again"
        )
    if dup["progress"]:
        notes.append(
            f"{dup['progress']} duplicate progress messages: every run of a triage item (a retry or a second "
            "hand-out) starts a new checklist (bot/slack/progress.py Progress.start), and each takes a slot of the "
            "channel's one post per second"
        )
    p = storm["parents"]
    notes.append(
        f"parents: the {p['tenants']}th distinct parent at {p['last_parent_s']} s after {p['posts_up_to_last_parent']} "
        f"posts in the channel (least {p['least_for_those_posts_s']} s for those posts): the channel was kept busy"
    )
    return notes
