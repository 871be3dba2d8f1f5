"""Confirm click -> patch applied -> thread updated, on loopback (issue 6, "Speed": p99 <= 100 ms).

Run: ``python -m bench.bench_confirm [--iterations 50]`` (writes ``bench/results/confirm.json``).
A sandbox of the second test world (Slack emulator, Kubernetes fake, backend, real Prometheus)
and the bot run in this process, as the Slack tests run them: signed HTTP requests from the
Slack driver to the bot's listener, the bot's real Slack and Kubernetes clients over loopback,
a temp SQLite incident store, a real audit log file (fsync on), the per-channel post limiter of
``flk serve`` (1 message/s, burst 10). Each iteration plans a quota mitigation for the quota
scenario's tenant with a new rate (``/flk mitigate <t> quota <rate>``, rates rising by one, so
every plan is a real change and the world stays sane without undo), waits for the dry run in
the thread, then times from just before the Confirm click (U_ALICE, in the on-call group) to
(a) the configmap write carrying the new rate, as the Kubernetes fake's store reports it, and
(b) the ``chat.postMessage`` of the "Applied" message into the incident thread, as the Slack
emulator recorded it (``Call.at``, after the message was stored). One warm-up iteration (it
opens the incident thread) is not counted; iterations start at least ``PACE_S`` apart so that
the post limiter's bucket is never empty (an operator confirms far less often). Verification
checks are scheduled on apply as usual but due an hour later, so none runs during the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure, latency_ms, machine, print_summary, write_results
from bot.service.app import Bot
from bot.service.settings import load_settings
from sandbox.slack import SlackDriver
from sandbox.testing import sandbox_for, second_world_yaml
from sandbox.up import Sandbox

GOAL_MS = 100.0
PACE_S = 2.5
CONFIG = """\
mitigations:
  authorised_groups: [S_ONCALL]
  oncall_group: S_ONCALL
  verify_delays_s: [3600]
"""


async def _start_bot(sb: Sandbox, folder: Path) -> Bot:
    (folder / "runbook.yaml").write_text(CONFIG)
    settings, config = load_settings(
        {
            **sb.env,
            "FLK_LISTEN": "127.0.0.1:0",
            "FLK_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'incidents.sqlite'}",
            "FLK_CONFIG": str(folder / "runbook.yaml"),
            "FLK_AUDIT_LOG": str(folder / "audit.jsonl"),
        }
    )
    bot = Bot(settings, config)
    await bot.start()
    return bot


class Round:
    """One plan-and-confirm of ``token_rate`` -> ``rate`` for ``tenant``."""

    def __init__(self, sb: Sandbox, bot: Bot, driver: SlackDriver, tenant: str, channel: str) -> None:
        self.sb, self.bot, self.driver, self.tenant, self.channel = sb, bot, driver, tenant, channel
        self.thread_ts: str | None = None

    async def _thread(self) -> str:
        assert self.bot.rt is not None
        while self.thread_ts is None:
            incident = await self.bot.rt.store.find_open(self.tenant)
            if incident is not None and incident.thread_ts:
                self.thread_ts = incident.thread_ts
            else:
                await asyncio.sleep(0.02)
        return self.thread_ts

    async def plan(self, rate: int) -> str:
        """Ask for the plan; the ts of its dry-run message."""
        seen = {m.ts for m in self.sb.slack.thread(self.channel, self.thread_ts)} if self.thread_ts else set()
        delivery = await self.driver.slash(f"mitigate {self.tenant} quota {rate}", user="U_ALICE")
        if delivery.status != 200:
            raise RuntimeError(f"/flk mitigate answered {delivery.status}")
        thread = await asyncio.wait_for(self._thread(), 20)

        def dry_run() -> str | None:
            fresh = [m for m in self.sb.slack.thread(self.channel, thread) if m.ts not in seen]
            return next((m.ts for m in fresh if "dry run" in m.all_text() and f'→ "{rate}"' in m.all_text()), None)

        return await self.sb.slack.wait_for(dry_run, timeout=20)

    async def confirm(self, rate: int, plan_ts: str) -> dict[str, float]:
        """Seconds from the click to its ack, the configmap write and the "Applied" post."""
        name, patched = f"tenant-{self.tenant}", asyncio.Event()
        times: dict[str, float] = {}

        def on_change(plural: str, before: Any, after: Any) -> None:
            ours = plural == "configmaps" and after and after["metadata"]["name"] == name
            if ours and after.get("data", {}).get("token_rate") == str(rate) and "patch" not in times:
                times["patch"] = time.time()
                patched.set()

        unsubscribe = self.sb.kube_store.on_change(on_change)
        try:
            began = time.time()
            delivery = await self.driver.click("flk_confirm", user="U_ALICE", channel=self.channel, ts=plan_ts)
            times["ack"] = time.time()
            if delivery.status != 200:
                raise RuntimeError(f"the Confirm click answered {delivery.status}")

            def applied() -> float | None:
                return next(
                    (
                        c.at
                        for c in self.sb.slack.calls("chat.postMessage")
                        if c.at >= began
                        and c.ok
                        and c.args.get("thread_ts") == self.thread_ts
                        and c.args.get("text") == "quota applied"
                    ),
                    None,
                )

            times["post"] = await self.sb.slack.wait_for(applied, timeout=20)
            await asyncio.wait_for(patched.wait(), 5)
        finally:
            unsubscribe()
        return {k: v - began for k, v in times.items()}


async def _run(iterations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flk-bench-confirm-") as folder:
        async with sandbox_for(second_world_yaml(), incident_channel="C_SRE") as sb:
            tenant = next(t for t, s in sb.live.world.tenants.items() if s.scenario == "quota")
            base = int(float(sb.live.world.tenants[tenant].config["token_rate"]))
            bot = await _start_bot(sb, Path(folder))
            driver = SlackDriver(sb.slack, f"{bot.url}/slack/events")
            try:
                rounds = Round(sb, bot, driver, tenant, "C_SRE")
                samples = []
                for i in range(iterations + 1):
                    started = time.monotonic()
                    rate = base + 10 + i
                    took = await rounds.confirm(rate, await rounds.plan(rate))
                    if i:  # the first one opened the thread: a warm-up
                        samples.append(took)
                    await asyncio.sleep(max(0.0, PACE_S - (time.monotonic() - started)))
                final = sb.kube_store.get("configmaps", sb.live.world.namespace, f"tenant-{tenant}")
            finally:
                await driver.close()
                await bot.stop()
    assert final is not None
    return {
        "tenant_scenario": "quota",
        "final_token_rate": final["data"]["token_rate"],
        "expected_final_token_rate": str(base + 10 + iterations),
        "click_to_ack": latency_ms(s["ack"] for s in samples),
        "click_to_patch": latency_ms(s["patch"] for s in samples),
        "click_to_applied_post": latency_ms(s["post"] for s in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    at_start = machine()
    result = asyncio.run(_run(args.iterations))
    patch, post = result["click_to_patch"], result["click_to_applied_post"]
    summary = [
        figure(
            "Confirm click → configmap patched (p99)",
            f"{patch['p99_ms']} ms (p50 {patch['p50_ms']}, max {patch['max_ms']}; {patch['count']} confirms)",
            f"≤ {GOAL_MS:g} ms",
            patch["p99_ms"] <= GOAL_MS,
        ),
        figure(
            'Confirm click → "Applied" in the thread (p99)',
            f"{post['p99_ms']} ms (p50 {post['p50_ms']}, max {post['max_ms']}; {post['count']} confirms)",
            f"≤ {GOAL_MS:g} ms",
            post["p99_ms"] <= GOAL_MS and result["final_token_rate"] == result["expected_final_token_rate"],
        ),
    ]
    print_summary(summary)
    path = write_results(
        "confirm",
        {
            "machine": {**at_start, "load_average_at_end": machine()["load_average"]},
            "method": __doc__,
            "iterations": args.iterations,
            "pace_s": PACE_S,
            **result,
            "summary": summary,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
