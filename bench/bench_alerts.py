"""Issue-4 alert benchmarks: webhook → parent latency, and a 300-alert storm with isolation
correlation on and off.

Run: ``python -m bench.bench_alerts [--n 200] [--interval 3.2] [--storm 300] [--only latency isolation storm]``.
One sandbox (default world); for each part a fresh ``flk serve`` child process with its own
SQLite file. The load generator runs in the emulator's process, so that the send time
(``time.time()`` before the request) and the emulator's ``Call.at`` (``time.time()`` when it
handled the call) share a clock. Tenants: the world's tenants (real triage findings, a chart
upload) spread among generated names (``bench-NNN``, well formed, unknown to the world: their
triage runs every probe and finds no data). Writes ``bench/results/alerts.json``.

1. latency: ``--n`` single-alert webhooks, one every ``--interval`` s, isolation correlation off
   (threshold above n), the emulator's limits off. Each alert makes about three posts in the
   incident channel (parent, triage progress, triage summary; a chart for world tenants) and
   the bot's own limiter allows one per second (burst 10): the interval keeps that bucket from
   running dry, which the report checks by replaying the recorded posts through the same bucket.
   Measured: request sent → the emulator records the parent ``chat.postMessage``.
2a. isolation storm: one batch of ``--storm`` firing alerts (started a minute ago), the default
   correlation (threshold 3, window 5 min): one parent, the isolation triage in its thread.
   Measured: batch sent → parent posted → triage summary posted.
2b. storm without correlation (threshold above the storm): the emulator enforces Slack's real
   ``chat.postMessage`` limits (per channel ``slack_channel_post_limit()``, per workspace);
   other methods keep the emulator's default (Slack's limits at 10× the rate). Counted: parents
   per tenant (lost, duplicate), every post in the channel and every 429. The minimum is
   (needed posts − burst) / rate, where needed posts are one parent, one progress message and
   one summary per tenant (every ``chat.postMessage`` the bot makes there, duplicates excluded);
   the bot's outbox is read from its SQLite file afterwards (attempts, given-up items).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.alert_diagnosis import latency_notes, profile_webhook, storm_notes
from bench.alert_transcript import Transcript, bot_log, bucket_levels, log_counts, outbox_stats
from bench.common import code_version, figure, latency_ms, machine, print_summary, serve_bot, write_results
from sandbox.slack.config import RateLimit, slack_channel_post_limit, slack_rate_limits
from sandbox.up import Sandbox

LATENCY_GOAL_MS = 50.0
STORM_GOAL_RATIO = 1.2
# What `flk serve` runs with: Bot(settings, config) keeps channel_rate=1.0 (bot/service/app.py) and
# Runtime.create builds ChannelLimiter(channel_rate, burst=10) (bot/service/runtime.py).
BOT_CHANNEL_RATE = 1.0
BOT_CHANNEL_BURST = 10
# "Correlation off": more tenants than any batch here must start breaching before it triggers.
OFF_THRESHOLD = 100_000
# Every chat.postMessage one alert's thread needs in the channel: parent, triage progress, triage summary.
POSTS_PER_TENANT = 3


# -- what is sent ------------------------------------------------------------------------------


def alert(tenant: str, started: datetime) -> dict[str, Any]:
    """One FLKTenantSLOBreach alert as Alertmanager sends it (payload version 4)."""
    return {
        "status": "firing",
        "labels": {"alertname": "FLKTenantSLOBreach", "tenant_id": tenant, "severity": "P2", "sli": "escalations"},
        "annotations": {"value": "0.0410", "slo": "0.02"},
        "startsAt": started.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=flk",
        "fingerprint": f"bench-{tenant}",
    }


def webhook_body(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "flk",
        "groupKey": '{}:{alertname="FLKTenantSLOBreach"}',
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": "FLKTenantSLOBreach"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


def tenant_mix(world: list[str], n: int) -> list[str]:
    """``n`` tenants: the world's spread evenly among generated ones."""
    names = [f"bench-{i:03d}" for i in range(n)]
    step = max(1, n // max(1, len(world)))
    for i, tenant in enumerate(world[:n]):
        names[i * step] = tenant
    return names


def config_file(directory: str, threshold: int | None) -> dict[str, str]:
    """FLK_CONFIG with the isolation threshold (None: the bot's default config)."""
    if threshold is None:
        return {}
    path = Path(directory) / "runbook.yaml"
    path.write_text(f"incidents:\n  isolation_threshold: {threshold}\n")
    return {"FLK_CONFIG": str(path)}


async def send(session: aiohttp.ClientSession, url: str, token: str, alerts: list[dict[str, Any]]) -> tuple[int, float]:
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{url}/alerts/alertmanager", json=webhook_body(alerts), headers=headers) as response:
        await response.read()
        return response.status, time.perf_counter() - began


# -- the three parts ---------------------------------------------------------------------------


async def bench_latency(sb: Sandbox, n: int, interval_s: float) -> dict[str, Any]:
    sb.slack.reset()
    sb.slack.set_rate_limits_enabled(False)
    tenants = tenant_mix(sorted(sb.live.world.tenants), n)
    sent: dict[str, float] = {}
    http: dict[str, float] = {}
    statuses: Counter[int] = Counter()
    with tempfile.TemporaryDirectory(prefix="flk-bench-alerts-") as tmp:
        async with serve_bot({**sb.env, **config_file(tmp, OFF_THRESHOLD)}) as bot, aiohttp.ClientSession() as session:
            tr = Transcript(sb.slack.workspace.call_log, sb.incident_channel)
            began = time.monotonic()
            for i, tenant in enumerate(tenants):
                await asyncio.sleep(max(0.0, began + i * interval_s - time.monotonic()))
                sent[tenant] = time.time()
                status, seconds = await send(session, bot.url, sb.alert_webhook_token, [alert(tenant, _ago(5))])
                statuses[status] += 1
                http[tenant] = seconds
            complete = await tr.wait(lambda: len(tr.first("parent")) >= n, timeout_s=60, quiet_s=3)
            log = bot_log(bot)
    parents = tr.first("parent")
    latencies = [parents[t].at - sent[t] for t in tenants if t in parents]
    takes = [p.at for p in tr.ok()] + tr.uploads
    levels = dict(zip(sorted(takes), bucket_levels(takes, BOT_CHANNEL_RATE, BOT_CHANNEL_BURST), strict=True))
    return {
        "alerts": n,
        "interval_s": interval_s,
        "world_tenants": [t for t in tenants if not t.startswith("bench-")],
        "webhook_statuses": dict(statuses),
        "complete": complete,
        "parents_seen": len(parents),
        "webhook_to_parent": latency_ms(latencies) if latencies else None,
        # The same interval in two parts: the webhook's answer, then the outbox until the post lands.
        "webhook_response": latency_ms(http.values()),
        "response_to_parent": latency_ms(parents[t].at - sent[t] - http[t] for t in parents) if parents else None,
        "posts_per_alert": round(len(tr.ok()) / n, 2),
        "uploads": len(tr.uploads),
        # Replaying the recorded posts and uploads through the bot's own bucket: >= 1 means no parent waited.
        "bot_limiter_min_tokens_at_parent": round(min(levels[p.at] for p in parents.values()), 2) if parents else None,
        "slowest": sorted(((round((parents[t].at - sent[t]) * 1000, 1), t) for t in parents), reverse=True)[:5],
        "bot_log": log_counts(log),
    }


async def bench_isolation(sb: Sandbox, n: int) -> dict[str, Any]:
    sb.slack.reset()
    _real_post_limits(sb)
    tenants = tenant_mix(sorted(sb.live.world.tenants), n)
    with tempfile.TemporaryDirectory(prefix="flk-bench-alerts-") as tmp:
        async with serve_bot({**sb.env, **config_file(tmp, None)}) as bot, aiohttp.ClientSession() as session:
            tr = Transcript(sb.slack.workspace.call_log, sb.incident_channel)
            t0 = time.time()
            status, seconds = await send(session, bot.url, sb.alert_webhook_token, [alert(t, _ago(1)) for t in tenants])
            complete = await tr.wait(lambda: bool(tr.ok("summary")), timeout_s=300, quiet_s=10)
            log = bot_log(bot)
    parents, summaries = tr.ok("parent"), tr.ok("summary")
    return {
        "alerts": n,
        "config": "default: isolation_threshold 3, isolation_window_s 300",
        "webhook_status": status,
        "webhook_response_s": round(seconds, 3),
        "complete": complete,
        "top_level_posts": len(parents),
        "parent_texts": [p.text for p in parents[:3]],
        "replies": len(tr.ok()) - len(parents),
        "parent_posted_s": round(parents[0].at - t0, 3) if parents else None,
        "triage_posted_s": round(summaries[0].at - t0, 3) if summaries else None,
        "triage_summary": summaries[0].text if summaries else None,
        "bot_log": log_counts(log),
    }


async def bench_storm(sb: Sandbox, n: int) -> dict[str, Any]:
    sb.slack.reset()
    limit = _real_post_limits(sb)
    rate = limit.per_minute / 60
    tenants = tenant_mix(sorted(sb.live.world.tenants), n)
    least_s = (POSTS_PER_TENANT * n - limit.burst) / rate
    with tempfile.TemporaryDirectory(prefix="flk-bench-alerts-") as tmp:
        db = Path(tmp) / "flk.sqlite"
        env = {**sb.env, **config_file(tmp, OFF_THRESHOLD), "FLK_DATABASE_URL": f"sqlite:///{db}"}
        async with serve_bot(env) as bot, aiohttp.ClientSession() as session:
            tr = Transcript(sb.slack.workspace.call_log, sb.incident_channel)
            t0 = time.time()
            status, seconds = await send(session, bot.url, sb.alert_webhook_token, [alert(t, _ago(1)) for t in tenants])

            def done() -> bool:
                return len(tr.first("parent")) >= n and len(tr.first("summary")) >= n

            complete = await tr.wait(done, timeout_s=2 * least_s + 120, quiet_s=20)
            ended = None if complete else time.time()
            log = bot_log(bot)
        outbox = outbox_stats(db)
    return {
        "alerts": n,
        "webhook_status": status,
        "webhook_response_s": round(seconds, 3),
        "complete": complete,
        "channel_post_limit": {"per_minute": limit.per_minute, "burst": limit.burst},
        **_storm_figures(tr, tenants, t0, rate, limit.burst, ended),
        "outbox": outbox,
        "bot_log": log_counts(log),
    }


def _storm_figures(
    tr: Transcript, tenants: list[str], t0: float, rate: float, burst: int, ended: float | None
) -> dict[str, Any]:
    """``ended``: when the wait gave up (None: everything needed was posted)."""
    per_tenant = {kind: Counter(p.tenant for p in tr.ok(kind)) for kind in ("parent", "progress", "summary")}
    firsts = {kind: tr.first(kind) for kind in per_tenant}
    posted = [p for kind in firsts.values() for p in kind.values()] + tr.ok("other")
    needed = POSTS_PER_TENANT * len(tenants) + len(tr.ok("other"))
    ok = tr.ok()
    # Unfinished: the time so far, so the ratio is a lower bound.
    done_at = ended if ended is not None else max((p.at for p in posted), default=t0)
    last_parent = max((p.at for p in firsts["parent"].values()), default=t0)
    before_last_parent = sum(p.at <= last_parent for p in ok)
    least = (needed - burst) / rate
    timeline = []
    for mark in range(30, int(done_at - t0) + 31, 30):
        upto = [p for p in ok if p.at - t0 <= mark]
        timeline.append([mark, sum(p.kind == "parent" for p in upto), len(upto)])
    return {
        "parents": {
            "posted": sum(per_tenant["parent"].values()),
            "tenants": len(per_tenant["parent"]),
            "lost": sorted(set(tenants) - set(per_tenant["parent"]))[:20],
            "lost_count": len(set(tenants) - set(per_tenant["parent"])),
            "duplicated_tenants": sum(c > 1 for c in per_tenant["parent"].values()),
            "last_parent_s": round(last_parent - t0, 1),
            "posts_up_to_last_parent": before_last_parent,
            "least_for_those_posts_s": round((before_last_parent - burst) / rate, 1),
            "least_if_only_parents_s": round((len(tenants) - burst) / rate, 1),
        },
        "duplicates": {kind: sum(c - 1 for c in counts.values()) for kind, counts in per_tenant.items()},
        "posts_ok_by_kind": dict(Counter(p.kind for p in ok)),
        "ratelimited_by_kind": dict(Counter(p.kind for p in tr.posts if p.status == 429)),
        "other_statuses": dict(Counter(p.status for p in tr.posts if p.status not in (200, 429))),
        "needed_posts": needed,
        "needed_posts_made": len(posted),
        "summaries_posted": len(firsts["summary"]),
        "done_s": round(done_at - t0, 1),
        "least_s": round(least, 1),
        "ratio": round((done_at - t0) / least, 3) if least > 0 else None,
        "first_post_s": round(ok[0].at - t0, 3) if ok else None,
        "uploads": len(tr.uploads),
        "timeline_s_parents_posts": timeline,
    }


def _real_post_limits(sb: Sandbox) -> RateLimit:
    """Slack's own chat.postMessage limits: per channel and per workspace; the rest stay as configured."""
    limit = slack_channel_post_limit()
    sb.slack.set_rate_limits_enabled(True)
    sb.slack.set_channel_post_limit(limit)
    sb.slack.set_rate_limit("chat.postMessage", slack_rate_limits()["chat.postMessage"])
    return limit


def _ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


# -- report --------------------------------------------------------------------------------------


def summarise(latency: dict | None, isolation: dict | None, storm: dict | None) -> list[dict[str, Any]]:
    rows = []
    if latency and latency["webhook_to_parent"]:
        lat = latency["webhook_to_parent"]
        rows.append(
            figure(
                f"webhook → parent posted, p99 ({latency['alerts']} alerts, 1 per {latency['interval_s']:g} s)",
                f"{lat['p99_ms']} ms (p50 {lat['p50_ms']}, max {lat['max_ms']}; {latency['parents_seen']} parents)",
                f"≤ {LATENCY_GOAL_MS:g} ms",
                lat["p99_ms"] <= LATENCY_GOAL_MS and latency["parents_seen"] == latency["alerts"],
            )
        )
    if isolation:
        one = isolation["top_level_posts"] == 1 and isolation["triage_posted_s"] is not None
        rows.append(
            figure(
                f"isolation storm, {isolation['alerts']} alerts in one batch: wall to the isolation triage posted",
                f"{isolation['triage_posted_s']} s (webhook answered {isolation['webhook_response_s']} s, parent "
                f"{isolation['parent_posted_s']} s; {isolation['top_level_posts']} incident thread(s))",
                "one incident; report the wall time",
                one,
            )
        )
    if storm:
        p = storm["parents"]
        dup = sum(storm["duplicates"].values())
        rows.append(
            figure(
                f"storm without correlation, {storm['alerts']} alerts, Slack's real post limits: parents",
                f"{p['posted']} parents for {p['tenants']} tenants: {p['lost_count']} lost, "
                f"{p['duplicated_tenants']} tenant(s) with more than one",
                "exactly one parent per tenant",
                p["lost_count"] == 0 and p["posted"] == p["tenants"] == storm["alerts"],
            )
        )
        rows.append(
            figure(
                "storm without correlation: duplicate posts in the threads",
                ", ".join(f"{n} {kind}" for kind, n in storm["duplicates"].items() if kind != "parent") + " duplicated",
                "no duplicate post",
                dup == 0,
            )
        )
        done = (
            f"{storm['done_s']} s for {storm['needed_posts']} posts = {storm['ratio']}×"
            if storm["complete"]
            else f"not done after {storm['done_s']} s ({storm['needed_posts_made']} of {storm['needed_posts']} "
            f"posts, {storm['summaries_posted']} of {storm['alerts']} triage summaries) = more than {storm['ratio']}×"
        )
        rows.append(
            figure(
                "storm without correlation: time to the last needed post vs the rate-limit minimum",
                f"{done} the least {storm['least_s']} s; last parent {p['last_parent_s']} s (least "
                f"{p['least_if_only_parents_s']} s if only parents)",
                f"≤ {STORM_GOAL_RATIO:g}×",
                storm["complete"] and storm["ratio"] is not None and storm["ratio"] <= STORM_GOAL_RATIO,
            )
        )
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host = machine()
    code = code_version()
    parts = set(args.only)
    async with Sandbox() as sb:
        latency = await bench_latency(sb, args.n, args.interval) if "latency" in parts else None
        isolation = await bench_isolation(sb, args.storm) if "isolation" in parts else None
        storm = await bench_storm(sb, args.storm) if "storm" in parts else None
    if latency:
        profile = await profile_webhook(lambda t: webhook_body([alert(t, _ago(5))]))
        latency["diagnosis"] = {"notes": latency_notes(latency, profile), "webhook_process_profile": profile}
    if storm:
        storm["diagnosis"] = storm_notes(storm)
    return {
        "machine": host,
        "code_at_start": code,
        "code_at_end": code_version(),
        "world": "sandbox/worlds/default.yaml",
        "method": __doc__.split("\n\n", 2)[2].strip() if __doc__ else "",
        "latency": latency,
        "isolation_storm": isolation,
        "storm": storm,
        "summary": summarise(latency, isolation, storm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200, help="single-alert webhooks for the latency")
    parser.add_argument("--interval", type=float, default=3.2, help="seconds between them")
    parser.add_argument("--storm", type=int, default=300, help="alerts in one storm batch")
    parser.add_argument(
        "--only", nargs="+", choices=["latency", "isolation", "storm"], default=["latency", "isolation", "storm"]
    )
    parser.add_argument("--name", default="alerts", help="results file bench/results/<name>.json")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    path = write_results(args.name, report)
    print(f"alerts -> {path}")
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
